"""A script's files: audio (WAV, FLAC or MP3), subtitles (SRT, WebVTT), timing table (CSV).

The audio goes to the encoder block by block (``encode_blocks``): ``render_outputs`` renders
an assembly held in memory to bytes, ``render_files`` a joined signal on disk
(``longform.JoinedAudio``, a book) to a file, reading it once, with its loudness measured as
it was joined. Both give the same bytes for the same signal.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from voicebatch.audio import to_pcm16
from voicebatch.inputs.transcripts.writers import to_srt, to_timing_csv, to_vtt, write_timing_csv
from voicebatch.render.join import Assembly, Timeline
from voicebatch.render.loudness import (
    DEFAULT_TARGET_LUFS,
    DEFAULT_TRUE_PEAK_DBTP,
    LoudnessResult,
    apply_gain,
    blocks_of,
    gain_db,
    loudness_result,
    normalize,
)
from voicebatch.render.subtitles import DEFAULT_RULES, SubtitleProblem, SubtitleRules, build_subtitles
from voicebatch.render.timetable import COLUMNS, timing_table, whole_sentences
from voicebatch.settings import DEFAULTS

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.inputs.chunking import Chunk
    from voicebatch.render.join_file import JoinedAudio

# format name -> (libsndfile format, subtype, content type). libsndfile writes MP3 itself
# (LAME inside the soundfile wheel): no FFmpeg anywhere.
AUDIO_FORMATS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
}
CONTENT_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt", "csv": "text/csv", "json": "application/json"}
# A WAV file's sizes are 32-bit: past 4 GiB (24.8 hours of 24 kHz PCM16) it is written as
# RF64, the same WAV with 64-bit sizes (EBU Tech 3306), which libsndfile reads and writes.
WAV_MAX_DATA_BYTES = 2**32 - 1 - 44


@dataclass(frozen=True, slots=True)
class OutputOptions:
    audio_format: str = DEFAULTS["audio_format"]
    loudness_lufs: float | None = DEFAULT_TARGET_LUFS  # None: no normalisation
    true_peak_dbtp: float = DEFAULT_TRUE_PEAK_DBTP
    subtitles: SubtitleRules = DEFAULT_RULES

    def __post_init__(self) -> None:
        if self.audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio format {self.audio_format!r}: use one of {', '.join(AUDIO_FORMATS)}")


DEFAULT_OUTPUT_OPTIONS = OutputOptions()


@dataclass(frozen=True, slots=True)
class RenderedOutputs:
    files: dict[str, bytes | Path]  # file name -> bytes, or the file holding them (long audio)
    content_types: dict[str, str]
    samples: np.ndarray | None = field(repr=False)  # the published audio (after loudness); None: on disk
    loudness: LoudnessResult | None
    subtitle_problems: tuple[SubtitleProblem, ...] = ()  # rules the speech timing did not allow


def encode_blocks(
    blocks: Iterable[np.ndarray], sample_rate: int, audio_format: str, target: str | Path | BinaryIO, frames: int
) -> None:
    """Encode ``frames`` samples, given block by block, into ``target`` (a path or a binary file)."""
    import soundfile as sf

    fmt, subtype, _ = AUDIO_FORMATS[audio_format]
    if fmt == "WAV" and frames * 2 > WAV_MAX_DATA_BYTES:
        fmt = "RF64"
    with sf.SoundFile(target, "w", sample_rate, 1, subtype, format=fmt) as out:
        for block in blocks:
            out.write(to_pcm16(block) if subtype == "PCM_16" else block)


def encode_audio(samples: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
    buffer = io.BytesIO()
    encode_blocks(blocks_of(samples), sample_rate, audio_format, buffer, samples.shape[0])
    return buffer.getvalue()


def timing_csv(assembly: Assembly | Timeline, chunks: Sequence[Chunk], script_id: str) -> str:
    """The timing table, written row by row: a book's cues never become one dict each at once."""
    return to_timing_csv(timing_table(assembly, chunks, script_id), COLUMNS)


def render_outputs(
    assembly: Assembly, name: str, options: OutputOptions = DEFAULT_OUTPUT_OPTIONS, *, chunks: Sequence[Chunk]
) -> RenderedOutputs:
    """File name -> bytes for the four outputs of one script (``chunks``: what was assembled)."""
    samples, loudness = assembly.samples, None
    if options.loudness_lufs is not None:
        samples, loudness = normalize(samples, assembly.sample_rate, options.loudness_lufs, options.true_peak_dbtp)
    audio_name = f"{name}.{options.audio_format}"
    files: dict[str, bytes | Path] = {audio_name: encode_audio(samples, assembly.sample_rate, options.audio_format)}
    text_files, problems = _text_files(assembly, chunks, name, options)
    files.update(text_files)
    return RenderedOutputs(files, _content_types(files, audio_name, options), samples, loudness, problems)


def render_files(
    joined: JoinedAudio,
    name: str,
    directory: str | Path,
    options: OutputOptions = DEFAULT_OUTPUT_OPTIONS,
    *,
    chunks: Sequence[Chunk],
) -> RenderedOutputs:
    """The four outputs of one script whose joined audio is on disk: the audio encoded, block
    by block, into a file in ``directory`` (the gain from the loudness measured while it was
    joined), the text files as bytes."""
    from voicebatch.render.join_file import read_blocks

    gain, loudness = None, None
    if options.loudness_lufs is not None:
        gain = gain_db(joined.measured, options.loudness_lufs, options.true_peak_dbtp)
        output_lufs = joined.measured.lufs_after(gain) if gain is not None else None
        loudness = loudness_result(joined.measured, gain, output_lufs)

    def blocks() -> Iterator[np.ndarray]:
        for block in read_blocks(joined.path):
            yield apply_gain(block, gain) if gain is not None else block

    audio_name = f"{name}.{options.audio_format}"
    audio = Path(directory) / audio_name
    encode_blocks(blocks(), joined.sample_rate, options.audio_format, audio, joined.frames)
    text_files, problems = _text_files(joined.timeline, chunks, name, options, directory=Path(directory))
    files: dict[str, bytes | Path] = {audio_name: audio, **text_files}
    return RenderedOutputs(files, _content_types(files, audio_name, options), None, loudness, problems)


def _text_files(
    timed: Assembly | Timeline,
    chunks: Sequence[Chunk],
    name: str,
    options: OutputOptions,
    *,
    directory: Path | None = None,
) -> tuple[dict[str, bytes | Path], tuple[SubtitleProblem, ...]]:
    """SRT, VTT and CSV; with ``directory``, the CSV (a book's largest text, one row a word)
    is written there row by row and named by its path, like the long audio."""
    subtitles = build_subtitles((s.timed for s in whole_sentences(timed, chunks)), options.subtitles)
    files: dict[str, bytes | Path] = {
        f"{name}.srt": to_srt(subtitles.segments).encode("utf-8"),
        f"{name}.vtt": to_vtt(subtitles.segments).encode("utf-8"),
    }
    if directory is None:
        files[f"{name}.csv"] = timing_csv(timed, chunks, name).encode("utf-8")
    else:
        table = directory / f"{name}.csv"
        with table.open("w", encoding="utf-8", newline="") as out:
            write_timing_csv(timing_table(timed, chunks, name), COLUMNS, out)
        files[f"{name}.csv"] = table
    return files, subtitles.problems


def _content_types(files: dict[str, bytes | Path], audio_name: str, options: OutputOptions) -> dict[str, str]:
    types = {audio_name: AUDIO_FORMATS[options.audio_format][2]}
    types.update({n: CONTENT_TYPES[n.rsplit(".", 1)[1]] for n in files if n != audio_name})
    return types
