"""`voicebatch synth`: one voice, one text or script, four files, no Airflow."""

from __future__ import annotations

import logging
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.outputs import render_outputs
from voicebatch.scripts import Script, ScriptPart, load_script_file, normalise_text
from voicebatch.storage import open_storage
from voicebatch.synthesis.devices import lease_device
from voicebatch.synthesis.engine import Engine, SynthesisParams
from voicebatch.synthesis.jobs import log_progress, synthesize_scripts
from voicebatch.synthesis.models import ModelStore
from voicebatch.vocab import load_vocabulary
from voicebatch.voices import folder_voice, prepare_voice

log = logging.getLogger(__name__)


def synthesize_to_directory(
    *,
    voice_dir: Path,
    text: str | None,
    script: Path | None,
    out: str,
    model: str = "F5TTS_v1_Base",
    nfe: int = 32,
    cfg: float = 2.0,
    speed: float | None = None,
    seed: int = 0,
    batch_frames: int = 16_384,
    device: str | None = None,
) -> list[str]:
    """Write ``<name>.wav/.srt/.vtt/.csv`` to ``out`` (a directory or s3:// prefix); return their URIs."""
    if not 8 <= nfe <= 64:
        raise InputError("--nfe", f"{nfe} steps is outside 8-64")
    vocab = load_vocabulary()
    voice = prepare_voice(folder_voice(Path(voice_dir)), vocab=vocab)
    for warning in voice.warnings:
        log.warning("voice %s: %s", voice.name, warning)
    job = _script(voice.name, text, script, vocab)
    if speed is not None:
        job = Script(job.id, job.source, job.parts, speed)
    files = ModelStore().resolve(model)
    if files.random_weights:
        log.warning("model %s has random weights: the audio is noise, not a voice", files.name)
    lease = lease_device() if device is None else None
    try:
        engine = Engine(files, device=device or lease.device)
        (result,) = synthesize_scripts(
            engine,
            {voice.name: voice},
            [job],
            SynthesisParams(nfe_steps=nfe, cfg_strength=cfg),
            seed=seed,
            batch_frames=batch_frames,
            progress=log_progress,
        )
    finally:
        if lease is not None:
            lease.release()
    storage = open_storage(out)
    written = []
    for name, data in render_outputs(result.assembly, job.id).items():
        storage.put_bytes(name, data)
        written.append(storage.uri_for(name))
    return written


def _script(voice: str, text: str | None, script: Path | None, vocab) -> Script:
    if script is not None:
        (only, *more) = load_script_file(script, {voice}, vocab) or [None]
        if only is None or more:
            raise InputError(script, "--script takes a file holding one script (.txt or .md)")
        return only
    assert text is not None
    if missing := vocab.unsupported_characters(normalise_text(text)):
        raise InputError("--text", f"characters the model cannot speak: {' '.join(missing)}")
    if not normalise_text(text):
        raise InputError("--text", "no text to speak")
    return Script("synth", "--text", (ScriptPart(voice, normalise_text(text)),))
