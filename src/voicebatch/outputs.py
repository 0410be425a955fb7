"""A script's files: audio (WAV), subtitles (SRT, WebVTT) and the timing table (CSV)."""

from __future__ import annotations

from voicebatch.audio import wav_bytes
from voicebatch.timings import Assembly, timing_rows
from voicebatch.transcripts import Segment
from voicebatch.transcripts.writers import to_srt, to_vtt


def sentence_segments(assembly: Assembly) -> list[Segment]:
    return [Segment(round(c.start, 3), round(c.end, 3), c.text) for c in assembly.sentences]


def timing_csv(assembly: Assembly) -> str:
    import pandas as pd

    columns = ["level", "index", "start", "end", "text", "estimated"]
    frame = pd.DataFrame(timing_rows(assembly), columns=columns)
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.3f")


def render_outputs(assembly: Assembly, name: str) -> dict[str, bytes]:
    """File name -> bytes for the four outputs of one script."""
    segments = sentence_segments(assembly)
    return {
        f"{name}.wav": wav_bytes(assembly.samples, assembly.sample_rate),
        f"{name}.srt": to_srt(segments).encode("utf-8"),
        f"{name}.vtt": to_vtt(segments).encode("utf-8"),
        f"{name}.csv": timing_csv(assembly).encode("utf-8"),
    }
