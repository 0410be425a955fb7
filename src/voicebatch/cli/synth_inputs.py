"""``voicebatch synth``'s inputs: the voices (a voice folder, or F5-style a recording and its text,
transcribed when the text is empty) and the scripts (files, folders, or ``--text`` with voice
tags), checked exactly as the pipeline checks them.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebatch.errors import InputError, ScriptError
from voicebatch.inputs.scripts import SCRIPT_SUFFIXES, Script, load_script_file, load_scripts
from voicebatch.inputs.vocab import Vocabulary
from voicebatch.inputs.voices import PreparedVoice, prepare_voice, voice_source
from voicebatch.run.pipeline import (
    RunSettings,
    ScriptPlan,
    plan_scripts,
)
from voicebatch.verify.settings import VerifySettings

if TYPE_CHECKING:
    pass
from voicebatch.cli.synth_records import ScriptResult, SynthRequest, VoiceInput

log = logging.getLogger(__name__)


def prepare_inputs(
    inputs: Sequence[VoiceInput], vocab: Vocabulary, verify: VerifySettings, *, recognizer: Any = None
) -> tuple[dict[str, PreparedVoice], dict[str, float]]:
    """(prepared voices by name, the voices' own speeds). The first voice is the default one."""
    voices: dict[str, PreparedVoice] = {}
    speeds: dict[str, float] = {}
    for given in inputs:
        if given.ref_audio is not None:
            voice = _voice_from_reference(given, vocab, verify, recognizer)
        else:
            voice = prepare_voice(voice_source(given.path), vocab=vocab)
            if given.name:
                voice = replace(voice, name=given.name, metadata={**voice.metadata, "voice": given.name})
        if voice.name in voices:
            raise InputError(given.where, f"voice {voice.name!r} given twice: name them (--voice NAME=PATH)")
        for warning in voice.warnings:
            log.warning("voice %s: %s", voice.name, warning)
        window = voice.metadata.get("window", {})
        log.info(
            "voice %s: clip %.2f–%.2f s, text %r", voice.name, window.get("start", 0), window.get("end", 0), voice.text
        )
        voices[voice.name] = voice
        if given.speed is not None:
            speeds[voice.name] = given.speed
    return voices, speeds


def _voice_from_reference(
    given: VoiceInput, vocab: Vocabulary, verify: VerifySettings, recognizer: Any
) -> PreparedVoice:
    """F5's ref_audio + ref_text as a voice. An empty ref_text is transcribed by the ASR backend
    the verification stage is configured with, as timed segments, so the clip is still cut at
    segment boundaries and its text matches its audio."""
    audio = given.ref_audio
    if not audio.is_file():
        raise InputError(given.where, f"ref_audio {audio}: no such file")
    with tempfile.TemporaryDirectory(prefix="voicebatch-ref-") as tmp:
        folder = Path(tmp) / (given.name or audio.stem)
        folder.mkdir()
        (folder / f"reference{audio.suffix.lower()}").symlink_to(audio.resolve())
        if (given.ref_text or "").strip():
            (folder / "reference.txt").write_text(given.ref_text.strip() + "\n", encoding="utf-8")
        else:
            (folder / "reference.srt").write_text(_transcribe(given, verify, recognizer), encoding="utf-8")
        try:
            voice = prepare_voice(voice_source(folder), vocab=vocab)
        except InputError as e:
            raise InputError(given.where, e.message.replace(str(folder), str(audio))) from None
    metadata = {**voice.metadata, "sources": {**voice.metadata["sources"]}}
    metadata["sources"]["audio"] = {**metadata["sources"]["audio"], "name": audio.name}
    return replace(voice, metadata=metadata)


def _transcribe(given: VoiceInput, verify: VerifySettings, recognizer: Any) -> str:
    """An SRT of the recording from the configured ASR backend (one cue per sentence or pause)."""
    if recognizer is None:
        if verify.mode == "off" or verify.backend != "whisper":
            raise InputError(
                given.where,
                "ref_text is empty and no ASR backend that can transcribe is configured (pocketsphinx needs "
                "the text): write ref_text, or use --asr-model whisper:<size> with its weights in the model store",
            )
        from voicebatch.verify import build_verifier

        recognizer = build_verifier(verify).recognizer
        if recognizer is None:
            raise InputError(given.where, f"ref_text is empty and {verify.asr_model} is not available to transcribe it")
    import soundfile as sf
    import soxr

    samples, rate = sf.read(str(given.ref_audio), dtype="float32", always_2d=True)
    audio16k = soxr.resample(samples.mean(axis=1), rate, 16_000)
    heard = recognizer.transcribe(audio16k, text="", language="und")
    if not heard.words:
        raise InputError(given.where, f"ref_text is empty and {heard.backend} heard no words in {given.ref_audio.name}")
    log.info("%s: ref_text transcribed by %s: %r", given.where, heard.backend, heard.text)
    return _srt(_segments(heard.words))


def _segments(words: Sequence[tuple[str, float, float, float]]) -> list[tuple[float, float, str]]:
    """Words grouped into cues: a new cue after sentence punctuation or a pause over 0.4 s."""
    cues: list[list] = []
    for word, start, end, _ in words:
        if not cues or re.search(r"[.!?。！？]$", cues[-1][2]) or start - cues[-1][1] > 0.4:
            cues.append([start, end, word])
        else:
            cues[-1][1] = end
            cues[-1][2] += ("" if re.match(r"^[\u3000-\u9fff]", word) else " ") + word
    return [(a, b, t.strip()) for a, b, t in cues]


def _srt(cues: Sequence[tuple[float, float, str]]) -> str:
    def stamp(seconds: float) -> str:
        millis = round(seconds * 1000)
        return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"

    return "".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{t}\n\n" for i, (a, b, t) in enumerate(cues, start=1))


def request_scripts(
    request: SynthRequest, voices: Mapping[str, PreparedVoice], vocab: Vocabulary
) -> tuple[list[Script], list[ScriptResult]]:
    """The scripts to speak, and a failed row for each one that cannot be (the others go on)."""
    known = set(voices)
    default = next(iter(voices))
    if request.text is not None:
        return [_tagged(request.text_name, request.text_source, request.text, default, known, vocab)], []
    scripts: list[Script] = []
    failed: list[ScriptResult] = []
    for path in request.scripts:
        if path.is_dir():
            found, problems = load_scripts(path, known, vocab)
            scripts += found
            failed += [_failed(p) for p in problems]
        elif path.suffix.lower() in SCRIPT_SUFFIXES:
            try:
                scripts += load_script_file(path, known, vocab)
            except ScriptError as e:
                failed.append(_failed(e))
        else:
            raise InputError(path, f"not a script file ({', '.join(SCRIPT_SUFFIXES)}) or a folder of them")
    seen: dict[str, str] = {}
    unique = []
    for script in scripts:
        if script.id in seen:
            failed.append(
                ScriptResult(script.id, "failed", script.source, reason=f"id already used by {seen[script.id]}")
            )
            continue
        seen[script.id] = script.source
        unique.append(script)
    return unique, failed


def _failed(problem: ScriptError) -> ScriptResult:
    from voicebatch.inputs.scripts import script_label

    return ScriptResult(script_label(problem), "failed", problem.path, reason=str(problem))


def _tagged(name: str, source: str, text: str, default: str, known: set[str], vocab: Vocabulary) -> Script:
    """A text with [voice] tags (F5's and voicebatch's syntax), untagged text in the default
    voice, checked exactly as a script file is (tags, vocabulary, length)."""
    if not text.strip():
        raise InputError(source, "no text to speak")
    with tempfile.TemporaryDirectory(prefix="voicebatch-text-") as tmp:
        path = Path(tmp) / f"{name}.txt"
        path.write_text(f"---\nvoice: {default}\n---\n{text}", encoding="utf-8")
        try:
            (script,) = load_script_file(path, known, vocab)
        except ScriptError as e:
            where = e.where
            if where and where.startswith("line "):  # the three front-matter lines are ours, not the user's
                where = f"line {int(where.split()[1]) - 3}"
            raise ScriptError(source, e.message, where=where) from None
    return replace(script, source=source)


def plan_with_voice_speeds(
    scripts: Sequence[Script],
    voices: Mapping[str, PreparedVoice],
    speeds: Mapping[str, float],
    model_checksum: str,
    settings: RunSettings,
) -> list[ScriptPlan]:
    """``plan_scripts``, with F5's per-voice speeds: a voice's own speed replaces the script's for
    its parts (a part's speed multiplies the script's, so it is the ratio; a voice tag's own
    ``speed=`` still multiplies it). Part speeds are in the script text, so in the output hash."""

    def with_speeds(script: Script) -> Script:
        parts = tuple(
            replace(p, speed=round(p.speed * speeds[p.voice] / script.speed, 6)) if p.voice in speeds else p
            for p in script.parts
        )
        return replace(script, parts=parts)

    return plan_scripts([with_speeds(s) for s in scripts], voices, model_checksum, settings)
