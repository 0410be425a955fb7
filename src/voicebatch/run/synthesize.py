"""The synthesize stage: speak one batch spec. Each synthesis batch is verified beside the next
one's synthesis and its chunk audio staged as soon as it is done, so a killed try loses only the
batch it was running.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE, wav_bytes
from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import json_bytes
from voicebatch.synthesis.batching import estimate_frames, plan_batches
from voicebatch.synthesis.buckets import FrameBuckets, plan_bucketed_batches
from voicebatch.synthesis.engine import ChunkAudio, ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import format_eta, log_progress
from voicebatch.verify.overlap import SharedEngine, overlap_enabled, synthesize_then_verify

if TYPE_CHECKING:
    import numpy as np
from voicebatch.run.ingest import load_registered_voice
from voicebatch.run.layout import chunk_audio_key, chunk_record_key, take_key, verification_prefix

log = logging.getLogger(__name__)


def synthesize_batch(
    spec_key: str, out: Storage, staging: str, engine: Engine, *, speech_models: object = None
) -> dict:
    """Speak one batch spec. Each synthesis batch is checked (verification, re-takes) and its
    chunk audio staged as soon as it is done, and chunks staged by an earlier (killed or
    failed) try are not spoken again."""
    spec = json.loads(out.get_bytes(spec_key))
    requests = [ChunkRequest(**r) for r in spec["requests"]]
    todo = [r for r in requests if not out.exists(chunk_record_key(staging, r.key))]
    if len(todo) < len(requests):
        log.info("%d of %d chunks already staged by an earlier try", len(requests) - len(todo), len(requests))
    references = {}
    for voice, clip_hash in spec["voices"].items():
        prepared = load_registered_voice(out, voice, clip_hash)
        references[voice] = Reference(voice, prepared.samples, prepared.text)
    params = SynthesisParams(**spec["params"])
    batch_frames = int(spec["batch_frames"])
    started, seconds, done = time.perf_counter(), 0.0, 0
    # Batch N is verified while batch N+1 synthesizes (verify/overlap.py); re-takes share the engine.
    overlap = spec.get("verify", {}).get("mode", "off") != "off" and overlap_enabled()
    engine = SharedEngine(engine) if overlap else engine
    verification = BatchVerification(spec, spec_key, engine, out, staging, speech_models, batch_frames)
    groups = synthesis_batches(todo, references, batch_frames, getattr(engine, "buckets", None))
    for checked in synthesize_then_verify(
        groups,
        lambda group: synthesize_chunks(engine, references, group, params, batch_frames),
        lambda group, audio: verification.check(references, group, params, audio),
        deliver=lambda checked: _stage_chunks(out, staging, *checked.result, checked.synthesis_s + checked.verify_s),
        overlap=overlap,
    ):
        audio = checked.result[0]
        done += len(checked.group)
        seconds += sum(a.samples.shape[0] for a in audio) / MODEL_SAMPLE_RATE
        elapsed = time.perf_counter() - started
        eta = format_eta(elapsed / done * (len(todo) - done)) if done < len(todo) else "done"
        rtf = elapsed / seconds if seconds else 0.0
        log.info(
            "chunks %d/%d staged: %.1f s of audio in %.1f s (RTF %.2f), ETA %s",
            done,
            len(todo),
            seconds,
            elapsed,
            rtf,
            eta,
        )
    wall = time.perf_counter() - started
    return {
        "chunks": len(todo),
        "reused": len(requests) - len(todo),
        "audio_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "rtf": round(wall / seconds, 4) if seconds else None,
        "device": engine.device,
        "verify_overlapped": overlap,
    }


def synthesis_batches(
    requests: Sequence[ChunkRequest],
    references: Mapping[str, Reference],
    batch_frames: int,
    buckets: FrameBuckets | None = None,
) -> list[list[ChunkRequest]]:
    """The chunks of one forward pass each, as the engine would pack them (same frame
    estimate, same packing, its frame buckets if it has any): the unit that is staged as soon
    as it is done."""
    frames = [
        estimate_frames(references[r.voice].samples.shape[0], references[r.voice].text, r.text, r.speed)
        for r in requests
    ]
    if buckets is not None:
        return [[requests[i] for i in batch.items] for batch in plan_bucketed_batches(frames, buckets, batch_frames)]
    return [[requests[i] for i in batch.items] for batch in plan_batches(frames, batch_frames)]


def synthesize_chunks(
    engine: Engine,
    references: Mapping[str, Reference],
    requests: Sequence[ChunkRequest],
    params: SynthesisParams,
    batch_frames: int,
) -> list[ChunkAudio]:
    """The one call into the engine for a synthesis batch."""
    return engine.synthesize(references, list(requests), params, batch_frames=batch_frames)


def _stage_chunks(out: Storage, staging: str, audio: Sequence[ChunkAudio], qa: Mapping[str, dict], wall: float) -> None:
    total_frames = sum(a.frames for a in audio) or 1
    for result in audio:
        out.put_bytes(chunk_audio_key(staging, result.key), _float_wav(result.samples), "audio/wav")
        share = {"frames": result.frames, "seconds": round(wall * result.frames / total_frames, 4)}
        share["qa"] = (qa or {}).get(result.key)
        out.put_bytes(chunk_record_key(staging, result.key), json_bytes(share), "application/json")  # written last


class BatchVerification:
    """The verification hook, right after each engine call of a synthesize task: check every chunk,
    re-take failures with the engine still loaded, keep the best take. Stages every take of a
    quarantined chunk for the report, and the verification's settings, models and notes
    (``verification/<batch>.json``, rewritten after each synthesis batch so a killed try
    leaves what it checked)."""

    def __init__(
        self,
        spec: Mapping,
        spec_key: str,
        engine: Engine,
        out: Storage,
        staging: str,
        speech_models: object = None,
        batch_frames: int | None = None,
    ) -> None:
        from voicebatch.verify.settings import VerifySettings

        self.settings = VerifySettings(**spec.get("verify", {"mode": "off"}))
        self.engine, self.out, self.staging, self.batch_frames = engine, out, staging, batch_frames
        self.speech_models = speech_models
        self.name = spec_key.rsplit("/", 1)[-1]
        self.verifier = None
        self.seconds = 0.0

    def check(
        self,
        references: Mapping[str, Reference],
        requests: Sequence[ChunkRequest],
        params: SynthesisParams,
        audio: list[ChunkAudio],
    ) -> tuple[list[ChunkAudio], dict[str, dict]]:
        """The kept audio (same order) and each chunk's QA record."""
        from voicebatch.verify.takes import verify_chunks

        if self.settings.mode == "off" or not requests:
            return audio, {}
        verifier = self._verifier()
        started = time.perf_counter()
        verified = verify_chunks(
            self.engine,
            references,
            requests,
            params,
            audio,
            verifier,
            max_takes=self.settings.max_takes,
            random_weights=self.engine.files.random_weights,
            batch_frames=self.batch_frames,
            progress=log_progress,
        )
        for chunk in verified:
            if chunk.status == "quarantined":
                for take in chunk.takes:
                    key = take_key(self.staging, chunk.request.key, take.number)
                    audio = wav_bytes(take.audio.samples, MODEL_SAMPLE_RATE)  # PCM16: to listen
                    self.out.put_bytes(key, audio, "audio/wav")
        self.seconds += time.perf_counter() - started
        document = {
            "mode": verifier.mode,
            "models": verifier.lineage(),
            "notes": list(verifier.notes),
            "seconds": round(self.seconds, 2),
        }
        self.out.put_bytes(f"{verification_prefix(self.staging)}{self.name}", json_bytes(document), "application/json")
        counts = {s: sum(c.status == s for c in verified) for s in ("passed", "quarantined", "not_checked")}
        retakes = sum(len(c.takes) - 1 for c in verified)
        log.info("verification: %s, %d re-takes, %.1f s", counts, retakes, time.perf_counter() - started)
        return [c.audio for c in verified], {c.request.key: c.qa_record() for c in verified}

    def _verifier(self):
        if self.verifier is None:
            from voicebatch.verify import build_verifier
            from voicebatch.verify.store import SpeechModelStore

            store = self.speech_models if isinstance(self.speech_models, SpeechModelStore) else SpeechModelStore()
            self.verifier = build_verifier(self.settings, models=store, device=self.engine.device)
        return self.verifier


def _float_wav(samples: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, MODEL_SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()
