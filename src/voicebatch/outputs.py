"""A script's files: audio (WAV, FLAC or MP3), subtitles (SRT, WebVTT), timing table (CSV)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.audio import to_pcm16
from voicebatch.loudness import DEFAULT_TARGET_LUFS, DEFAULT_TRUE_PEAK_DBTP, LoudnessResult, normalize
from voicebatch.subtitles import DEFAULT_RULES, SubtitleProblem, SubtitleRules, build_subtitles
from voicebatch.timetable import COLUMNS, timing_table, whole_sentences
from voicebatch.timings import Assembly
from voicebatch.transcripts.writers import to_srt, to_timing_csv, to_vtt

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.chunking import Chunk

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
    subtitles: SubtitleRules = DEFAULT_RULES

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
    subtitle_problems: tuple[SubtitleProblem, ...] = ()  # rules the speech timing did not allow


def encode_audio(samples: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    import soundfile as sf

    fmt, subtype, _ = AUDIO_FORMATS[audio_format]
    buffer = io.BytesIO()
    data = to_pcm16(samples) if subtype == "PCM_16" else samples
    sf.write(buffer, data, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def timing_csv(assembly: Assembly, chunks: Sequence[Chunk], script_id: str) -> str:
    return to_timing_csv(timing_table(assembly, chunks, script_id), COLUMNS)


def render_outputs(
    assembly: Assembly, name: str, options: OutputOptions = DEFAULT_OUTPUT_OPTIONS, *, chunks: Sequence[Chunk]
) -> RenderedOutputs:
    """File name -> bytes for the four outputs of one script (``chunks``: what was assembled)."""
    samples, loudness = assembly.samples, None
    if options.loudness_lufs is not None:
        samples, loudness = normalize(samples, assembly.sample_rate, options.loudness_lufs, options.true_peak_dbtp)
    subtitles = build_subtitles([s.timed for s in whole_sentences(assembly, chunks)], options.subtitles)
    audio_name = f"{name}.{options.audio_format}"
    files = {
        audio_name: encode_audio(samples, assembly.sample_rate, options.audio_format),
        f"{name}.srt": to_srt(subtitles.segments).encode("utf-8"),
        f"{name}.vtt": to_vtt(subtitles.segments).encode("utf-8"),
        f"{name}.csv": timing_csv(assembly, chunks, name).encode("utf-8"),
    }
    types = {audio_name: AUDIO_FORMATS[options.audio_format][2]}
    types.update({n: CONTENT_TYPES[n.rsplit(".", 1)[1]] for n in files if n != audio_name})
    return RenderedOutputs(files, types, samples, loudness, subtitles.problems)
