"""`voicebatch synth`: one voice, one text or script, no Airflow.

``--out DIR`` writes ``<name>.wav/.srt/.vtt/.csv`` into DIR. ``--out s3://bucket/prefix``
publishes through the protocol instead (voice registry, content-addressed outputs,
manifest last), and skips the work when the same output is already published.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.outputs import render_outputs
from voicebatch.pipeline import RunSettings, assemble_chunks, plan_scripts, publish_script_outputs
from voicebatch.publish import publish_voice
from voicebatch.scripts import Script, ScriptPart, load_script_file, normalise_text
from voicebatch.storage import is_s3_uri, open_storage
from voicebatch.synthesis.devices import lease_device
from voicebatch.synthesis.engine import Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.models import ModelStore
from voicebatch.text.lexicon import read_lexicon
from voicebatch.vocab import Vocabulary, load_vocabulary
from voicebatch.voices import prepare_voice, voice_source

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
    lexicon: str | None = None,
) -> list[str]:
    """Synthesize and write or publish; return the URIs of what was written (or found)."""
    if not 8 <= nfe <= 64:
        raise InputError("--nfe", f"{nfe} steps is outside 8-64")
    vocab = load_vocabulary()
    lexicon_entries = read_lexicon(lexicon, open_storage) if lexicon else None  # a bad lexicon fails first
    voice = prepare_voice(voice_source(voice_dir), vocab=vocab)
    for warning in voice.warnings:
        log.warning("voice %s: %s", voice.name, warning)
    job = _script(voice.name, text, script, vocab)
    if speed is not None:
        job = Script(job.id, job.source, job.parts, speed)
    files = ModelStore().resolve(model)
    if files.random_weights:
        log.warning("model %s has random weights: the audio is noise, not a voice", files.name)
    settings = RunSettings(
        SynthesisParams(nfe_steps=nfe, cfg_strength=cfg),
        seed=seed,
        lexicon=lexicon_entries,
    )
    voices = {voice.name: voice}
    storage = open_storage(out)
    publishing = is_s3_uri(out)
    if publishing:
        publish_voice(storage, voice)
    (plan,) = plan_scripts([job], voices, files.checksum, settings, storage if publishing else None)
    if plan.published:
        log.info("%s is already published under %s: nothing to do", job.id, storage.uri_for(f"audio/{job.id}/"))
        return [storage.uri_for(f"audio/{job.id}/{plan.output_hash}/manifest.json")]
    lease = lease_device() if device is None else None
    try:
        engine = Engine(files, device=device or lease.device)
        started = time.perf_counter()
        audio = engine.synthesize(
            {voice.name: Reference(voice.name, voice.samples, voice.text)},
            list(plan.requests),
            settings.params,
            batch_frames=batch_frames,
            progress=log_progress,
        )
        elapsed = time.perf_counter() - started
    finally:
        if lease is not None:
            lease.release()
    if publishing:
        published = publish_script_outputs(
            storage, plan, [a.samples for a in audio], voices, files.lineage(), settings, synthesis_seconds=elapsed
        )
        return [storage.uri_for(k) for k in published.keys]
    assembly = assemble_chunks([a.samples for a in audio], plan.chunks, settings)
    written = []
    for name, data in render_outputs(assembly, job.id, settings.options, chunks=plan.chunks).files.items():
        storage.put_bytes(name, data)
        written.append(storage.uri_for(name))
    return written


def _script(voice: str, text: str | None, script: Path | None, vocab: Vocabulary) -> Script:
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
