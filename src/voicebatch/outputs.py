"""A script's files: audio (WAV, FLAC or MP3), subtitles (SRT, WebVTT), timing table (CSV)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.audio import to_pcm16
from voicebatch.loudness import DEFAULT_TARGET_LUFS, DEFAULT_TRUE_PEAK_DBTP, LoudnessResult, normalize
from voicebatch.subtitles import MAX_LINE_CHARS, MAX_LINES, subtitle_segments
from voicebatch.timings import Assembly, timing_rows
from voicebatch.transcripts.writers import to_srt, to_vtt

if TYPE_CHECKING:
    import numpy as np

# format name -> (libsndfile format, subtype, content type). libsndfile writes MP3 itself
# (LAME inside the soundfile wheel): no FFmpeg anywhere.
AUDIO_FORMATS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
}
CONTENT_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt", "csv": "text/csv", "json": "application/json"}


@dataclass(frozen=True, slots=True)
class OutputOptions:
    audio_format: str = "wav"
    loudness_lufs: float | None = DEFAULT_TARGET_LUFS  # None: no normalisation
    true_peak_dbtp: float = DEFAULT_TRUE_PEAK_DBTP
    max_line_chars: int = MAX_LINE_CHARS
    max_lines: int = MAX_LINES

    def __post_init__(self) -> None:
        if self.audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio format {self.audio_format!r}: use one of {', '.join(AUDIO_FORMATS)}")


DEFAULT_OUTPUT_OPTIONS = OutputOptions()


@dataclass(frozen=True, slots=True)
class RenderedOutputs:
    files: dict[str, bytes]  # file name -> bytes
    content_types: dict[str, str]
    samples: np.ndarray = field(repr=False)  # the published audio (after loudness)
    loudness: LoudnessResult | None


def encode_audio(samples: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    import soundfile as sf

    fmt, subtype, _ = AUDIO_FORMATS[audio_format]
    buffer = io.BytesIO()
    data = to_pcm16(samples) if subtype == "PCM_16" else samples
    sf.write(buffer, data, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def timing_csv(assembly: Assembly) -> str:
    import pandas as pd

    columns = ["level", "index", "start", "end", "text", "estimated", "source"]
    frame = pd.DataFrame(timing_rows(assembly), columns=columns)
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.3f")


def render_outputs(assembly: Assembly, name: str, options: OutputOptions = DEFAULT_OUTPUT_OPTIONS) -> RenderedOutputs:
    """File name -> bytes for the four outputs of one script."""
    samples, loudness = assembly.samples, None
    if options.loudness_lufs is not None:
        samples, loudness = normalize(samples, assembly.sample_rate, options.loudness_lufs, options.true_peak_dbtp)
    segments = subtitle_segments(assembly.sentences, options.max_line_chars, options.max_lines)
    audio_name = f"{name}.{options.audio_format}"
    files = {
        audio_name: encode_audio(samples, assembly.sample_rate, options.audio_format),
        f"{name}.srt": to_srt(segments).encode("utf-8"),
        f"{name}.vtt": to_vtt(segments).encode("utf-8"),
        f"{name}.csv": timing_csv(assembly).encode("utf-8"),
    }
    types = {audio_name: AUDIO_FORMATS[options.audio_format][2]}
    types.update({n: CONTENT_TYPES[n.rsplit(".", 1)[1]] for n in files if n != audio_name})
    return RenderedOutputs(files, types, samples, loudness)
