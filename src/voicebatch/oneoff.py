"""`voicebatch synth`: one voice, one text or script, no Airflow (orchestration, so it lives
beside runs.py, not inside the synthesis package).

``--out DIR`` writes ``<name>.wav/.srt/.vtt/.csv`` (and ``<name>.qa.json`` when verified)
into DIR. ``--out s3://bucket/prefix`` publishes through the protocol instead (voice
registry, content-addressed outputs, manifest last), and skips the work when the same
output is already published. Every chunk is checked right after the engine call, while
the model is loaded, and failures are re-taken (``voicebatch.verify``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.outputs import render_outputs
from voicebatch.pipeline import RunSettings, assemble_chunks, plan_scripts, publish_script_outputs
from voicebatch.publish import point_latest, publish_voice
from voicebatch.scripts import Script, ScriptPart, load_script_file, normalise_text
from voicebatch.storage import is_s3_uri, open_storage
from voicebatch.synthesis.devices import lease_device
from voicebatch.synthesis.engine import Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.models import ModelStore
from voicebatch.text.lexicon import read_lexicon
from voicebatch.verify.settings import VerifySettings
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
    verify: VerifySettings | None = None,
    lexicon: str | None = None,
) -> list[str]:
    """Synthesize and write or publish; return the URIs of what was written (or found).
    Raises InputError when a chunk never passed and ``publish_unverified`` is off."""
    if not 4 <= nfe <= 64:
        raise InputError("--nfe", f"{nfe} steps is outside 4-64")
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
    verify = verify or VerifySettings()
    settings = RunSettings(
        SynthesisParams(nfe_steps=nfe, cfg_strength=cfg),
        seed=seed,
        verify=verify,
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
        point_latest(storage, job.id, plan.output_hash)  # latest.json names what the latest run asked for
        return [storage.uri_for(f"audio/{job.id}/{plan.output_hash}/manifest.json")]
    lease = lease_device() if device is None else None
    try:
        engine = Engine(files, device=device or lease.device)
        started = time.perf_counter()
        references = {voice.name: Reference(voice.name, voice.samples, voice.text)}
        requests = list(plan.requests)
        audio = engine.synthesize(
            references, requests, settings.params, batch_frames=batch_frames, progress=log_progress
        )
        verified, verification = _verify(engine, references, requests, settings, audio, batch_frames)
        elapsed = time.perf_counter() - started
    finally:
        if lease is not None:
            lease.release()
    samples = [v.audio.samples for v in verified] if verified else [a.samples for a in audio]
    qa = [v.qa_record() for v in verified] if verified else None
    quarantined = [v.request.key for v in verified if v.status == "quarantined"]
    if quarantined:
        log.warning("%d of %d chunks never passed verification: %s", len(quarantined), len(requests), job.id)
        if not verify.publish_unverified:
            raise InputError(job.source, f"{len(quarantined)} chunk(s) never passed verification: held back")
    if publishing:
        published = publish_script_outputs(
            storage,
            plan,
            samples,
            voices,
            files.lineage(),
            settings,
            synthesis_seconds=elapsed,
            qa=qa,
            verification=verification,
        )
        return [storage.uri_for(k) for k in published.keys]
    from voicebatch.verify.qa import script_qa

    assembly = assemble_chunks(samples, plan.chunks, settings, qa)
    rendered = render_outputs(assembly, job.id, settings.options, chunks=plan.chunks).files
    if qa is not None:
        document = {"qa": script_qa(qa, verify, verification), "chunks": qa}
        rendered[f"{job.id}.qa.json"] = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    written = []
    for name, data in rendered.items():
        storage.put_bytes(name, data)
        written.append(storage.uri_for(name))
    return written


def _verify(
    engine: Engine, references: dict, requests: list, settings: RunSettings, audio: list, batch_frames: int
) -> tuple[list, dict | None]:
    """Issue 14's hook, right after the engine call (as in the synthesize task): the
    verified chunks and what verified them (effective mode, models, notes)."""
    if settings.verify.mode == "off":
        return [], None
    from voicebatch.verify import build_verifier
    from voicebatch.verify.takes import verify_chunks

    verifier = build_verifier(settings.verify, device=engine.device)
    verified = verify_chunks(
        engine,
        references,
        requests,
        settings.params,
        audio,
        verifier,
        max_takes=settings.verify.max_takes,
        random_weights=engine.files.random_weights,
        batch_frames=batch_frames,
        progress=log_progress,
    )
    return verified, {"mode": verifier.mode, "models": verifier.lineage(), "notes": list(verifier.notes)}


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
