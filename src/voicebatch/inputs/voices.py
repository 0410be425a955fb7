"""Voice folders -> prepared voices (reference clip, its exact text, its provenance).

Two layouts are discovered in a voices directory:

- a folder per voice: ``<voice>/`` holding one recording and one transcript;
- flat: ``<voice>.wav`` beside ``<voice>.srt`` (or .vtt, .csv, .tsv, .txt).

A folder holding ``voice.json`` is a voice voicebatch already prepared: its
``reference.wav`` and ``reference.txt`` are used as they are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch import __version__
from voicebatch.audio import (
    AUDIO_SUFFIXES,
    MODEL_SAMPLE_RATE,
    Recording,
    as_pcm16,
    file_sha256,
    integrated_loudness,
    measure_level,
    pcm16_sha256,
    read_recording,
    to_model_audio,
    wav_bytes,
)
from voicebatch.errors import AudioError, InputError
from voicebatch.inputs.reference import DEFAULT_RULES, ClipRules, ClipWindow, choose_reference_window
from voicebatch.inputs.transcripts import TRANSCRIPT_SUFFIXES, Transcript, read_transcript
from voicebatch.locations.names import key_name_problem

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.inputs.vocab import Vocabulary

log = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 8_000
LOW_SAMPLE_RATE = 16_000
SILENT_PEAK_DBFS = -50.0


@dataclass(frozen=True, slots=True)
class VoiceSource:
    name: str
    audio: Path | None
    transcript: Path | None
    problem: str | None = None  # a discovery problem (no transcript, two recordings)


@dataclass(frozen=True, slots=True)
class PreparedVoice:
    name: str
    samples: np.ndarray = field(repr=False)  # the reference clip: mono float32, 24 kHz
    text: str  # exactly the text spoken in ``samples``
    clip_hash: str
    metadata: dict = field(repr=False)  # what voice.json records
    warnings: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / MODEL_SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class VoiceReport:
    name: str
    status: str  # "ok" | "error"
    start: float | None = None
    end: float | None = None
    text: str | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "voice": self.name,
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "reason": self.reason,
            "warnings": list(self.warnings),
        }


def discover_voices(directory: str | Path) -> list[VoiceSource]:
    root = Path(directory)
    if not root.is_dir():
        raise InputError(root, "not a directory of voices")
    sources = [*_folder_voices(root), *_flat_voices(root)]
    return sorted(sources, key=lambda s: s.name)


def _folder_voices(root: Path) -> Iterator[VoiceSource]:
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        yield folder_voice(folder)


def voice_source(path: str | Path) -> VoiceSource:
    """One voice named by a path: a voice folder, a prepared voice, a recording beside its
    transcript (flat layout), or a flat voice's path without the extension."""
    path = Path(path)
    if path.is_dir():
        return folder_voice(path)
    stem = path.stem if path.suffix.lower() in AUDIO_SUFFIXES else path.name
    if path.parent.is_dir():
        for source in _flat_voices(path.parent):
            if source.name == stem:
                return source
    raise InputError(path, "no voice folder, and no recording with a transcript beside it, at this path")


def folder_voice(folder: Path) -> VoiceSource:
    """The voice a single folder holds (a voice folder or a prepared voice)."""
    if (folder / "voice.json").is_file():
        meta_name = json.loads((folder / "voice.json").read_text(encoding="utf-8")).get("voice") or folder.name
        return VoiceSource(meta_name, folder / "reference.wav", folder / "reference.txt")
    audio = _files(folder, AUDIO_SUFFIXES)
    texts = _files(folder, TRANSCRIPT_SUFFIXES)
    problem = None
    if len(audio) != 1:
        problem = _count_problem(folder, audio, "recording", AUDIO_SUFFIXES)
    elif len(texts) != 1:
        problem = _count_problem(folder, texts, "transcript", TRANSCRIPT_SUFFIXES)
    return VoiceSource(
        folder.name, audio[0] if len(audio) == 1 else None, texts[0] if len(texts) == 1 else None, problem
    )


def _flat_voices(root: Path) -> Iterator[VoiceSource]:
    audio = {p.stem: p for p in _files(root, AUDIO_SUFFIXES)}
    texts: dict[str, list[Path]] = {}
    for p in _files(root, TRANSCRIPT_SUFFIXES):
        texts.setdefault(p.stem, []).append(p)
    for stem in sorted(set(audio) | set(texts)):
        found = texts.get(stem, [])
        if stem not in audio:
            yield VoiceSource(stem, None, found[0], f"{found[0].name}: transcript without a recording beside it")
        elif not found:
            wanted = "|".join(TRANSCRIPT_SUFFIXES)
            yield VoiceSource(stem, audio[stem], None, f"{audio[stem].name}: no transcript beside it ({stem}{wanted})")
        elif len(found) > 1:
            names = ", ".join(p.name for p in found)
            yield VoiceSource(stem, audio[stem], None, f"{names}: several transcripts for one recording; keep one")
        else:
            yield VoiceSource(stem, audio[stem], found[0])


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _count_problem(folder: Path, found: list[Path], what: str, suffixes: tuple[str, ...]) -> str:
    if not found:
        return f"{folder.name}/: no {what} ({', '.join(suffixes)})"
    return f"{folder.name}/: {len(found)} {what}s ({', '.join(p.name for p in found)}); keep one"


def prepare_voice(
    source: VoiceSource, rules: ClipRules = DEFAULT_RULES, vocab: Vocabulary | None = None
) -> PreparedVoice:
    """Validate a voice and cut its reference clip. Raises ``InputError`` (one line)."""
    if source.problem or source.audio is None or source.transcript is None:
        raise InputError(source.audio or source.transcript or source.name, source.problem or "incomplete voice")
    if problem := key_name_problem(source.name):
        raise InputError(source.audio, f"voice name {source.name!r} {problem}")
    recording = read_recording(source.audio)
    warnings = _check_recording(recording)
    transcript = read_transcript(source.transcript)
    window, more = _choose_window(recording, transcript, rules)
    warnings += more
    start_frame = round(window.start * recording.sample_rate)
    end_frame = round(window.end * recording.sample_rate)
    clip = as_pcm16(to_model_audio(recording.samples[start_frame:end_frame], recording.sample_rate))
    if vocab is not None and (missing := vocab.unsupported_characters(window.text)):
        warnings.append(f"reference text has characters the model cannot speak: {' '.join(missing)}")
    clip_hash = pcm16_sha256(clip, window.text.encode("utf-8"))
    level = measure_level(clip)
    metadata = {
        "voice": source.name,
        "clip_hash": clip_hash,
        "reference_text": window.text,
        "window": {
            "start": window.start,
            "end": window.end,
            "first_segment": window.first,
            "last_segment": window.last,
            "ends_sentence": window.ends_sentence,
        },
        "duration": round(clip.shape[0] / MODEL_SAMPLE_RATE, 3),
        "sample_rate": MODEL_SAMPLE_RATE,
        "loudness_lufs": integrated_loudness(clip, MODEL_SAMPLE_RATE),
        "peak_dbfs": level.peak_dbfs,
        "sources": {
            "audio": {
                "name": source.audio.name,
                "sha256": file_sha256(source.audio),
                "format": recording.format,
                "sample_rate": recording.sample_rate,
                "channels": recording.channels,
                "duration": round(recording.duration, 3),
            },
            "transcript": {
                "name": source.transcript.name,
                "sha256": file_sha256(source.transcript),
                "format": transcript.format,
                "encoding": transcript.encoding,
                "segments": len(transcript.segments),
            },
        },
        "warnings": warnings,
        "voicebatch_version": __version__,
    }
    return PreparedVoice(source.name, clip, window.text, clip_hash, metadata, tuple(warnings))


def _check_recording(recording: Recording) -> list[str]:
    path = recording.path
    if recording.sample_rate < MIN_SAMPLE_RATE:
        raise AudioError(path, f"sample rate {recording.sample_rate} Hz is below {MIN_SAMPLE_RATE} Hz")
    if recording.duration < 1.0:
        raise AudioError(path, f"the recording lasts {recording.duration:.2f} s; a voice needs at least 1 s")
    level = measure_level(recording.samples)
    if level.peak_dbfs < SILENT_PEAK_DBFS:
        raise AudioError(path, f"the recording is silent (peak {level.peak_dbfs} dBFS)")
    warnings = []
    if recording.sample_rate < LOW_SAMPLE_RATE:
        warnings.append(f"{recording.sample_rate} Hz recording: the cloned voice will sound band-limited")
    if recording.channels > 2:
        warnings.append(f"{recording.channels} channels mixed down to mono")
    if level.clipped_fraction > 0.001:
        warnings.append(f"clipped: {level.clipped_fraction:.2%} of samples at full scale")
    return warnings


def _choose_window(recording: Recording, transcript: Transcript, rules: ClipRules) -> tuple[ClipWindow, list[str]]:
    path = transcript.path
    if not transcript.timed:
        if recording.duration > rules.max_seconds:
            raise InputError(
                path,
                f"a plain-text transcript has no timings, and the recording lasts "
                f"{recording.duration:.1f} s (over {rules.max_seconds:g} s): provide a timed "
                "transcript (SRT, VTT or CSV) so a clip can be cut with its exact text",
            )
        if recording.duration < rules.min_seconds:
            raise InputError(
                path,
                f"the recording lasts {recording.duration:.2f} s; a reference needs at least {rules.min_seconds:g} s",
            )
        text = transcript.text
        # The whole recording, to the last sample (a re-read prepared voice keeps its clip hash).
        return ClipWindow(0, 0, 0.0, recording.duration, text, True, True), []
    warnings = _timing_warnings(transcript, recording.duration)
    segments = sorted(transcript.segments, key=lambda s: (s.start, s.end))

    def level(start: float, end: float) -> tuple[float, float]:
        part = recording.samples[round(start * recording.sample_rate) : round(end * recording.sample_rate)]
        measured = measure_level(part)
        return measured.rms_dbfs, measured.clipped_fraction

    try:
        return choose_reference_window(segments, recording.duration, rules, level), warnings
    except ValueError as e:
        raise InputError(path, f"no reference clip: {e}") from None


def _timing_warnings(transcript: Transcript, audio_seconds: float) -> list[str]:
    warnings = []
    segments = transcript.segments
    late = [i for i, s in enumerate(segments, 1) if s.end > audio_seconds + 0.05]
    if late:
        warnings.append(
            f"{len(late)} segment(s) end after the recording ({audio_seconds:.2f} s), "
            f"first is segment {late[0]}: not used"
        )
    overlaps = [i for i in range(1, len(segments)) if segments[i].start < segments[i - 1].end - 0.01]
    if overlaps:
        warnings.append(f"{len(overlaps)} segment(s) overlap the one before, first is segment {overlaps[0] + 1}")
    return warnings


def write_prepared_voice(voice: PreparedVoice, directory: str | Path) -> Path:
    """Write reference.wav, reference.txt and voice.json into ``directory``; return it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference.wav").write_bytes(wav_bytes(voice.samples, MODEL_SAMPLE_RATE))
    (out / "reference.txt").write_text(voice.text + "\n", encoding="utf-8")
    (out / "voice.json").write_text(json.dumps(voice.metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def prepare_voices(
    directory: str | Path, rules: ClipRules = DEFAULT_RULES, vocab: Vocabulary | None = None
) -> tuple[dict[str, PreparedVoice], list[VoiceReport]]:
    """Prepare every voice of a directory; one bad voice never stops the others."""
    prepared: dict[str, PreparedVoice] = {}
    reports: list[VoiceReport] = []
    for source in discover_voices(directory):
        try:
            voice = prepare_voice(source, rules, vocab)
        except InputError as e:
            log.warning("voice %s unusable: %s", source.name, e)
            reports.append(VoiceReport(source.name, "error", reason=str(e)))
            continue
        window = voice.metadata["window"]
        log.info("voice %s: clip %.2f–%.2f s, %r", source.name, window["start"], window["end"], voice.text)
        prepared[source.name] = voice
        reports.append(
            VoiceReport(source.name, "ok", window["start"], window["end"], voice.text, warnings=voice.warnings)
        )
    return prepared, reports
