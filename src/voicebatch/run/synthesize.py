"""The synthesize stage: speak one batch spec. Each synthesis batch is verified beside the next
one's synthesis and its chunk audio staged as soon as it is done, so a killed try loses only the
batch it was running.
"""

from __future__ import annotations

import io
import json
import logging
import time
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE, wav_bytes
from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import json_bytes
from voicebatch.synthesis.engine import ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import format_eta
from voicebatch.verify.overlap import overlap_enabled

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.verify.takes import VerifiedChunk
from voicebatch.run.ingest import load_registered_voice
from voicebatch.run.layout import chunk_audio_key, chunk_record_key, take_key, verification_prefix
from voicebatch.run.speak import Spoken, speak

log = logging.getLogger(__name__)


def synthesize_batch(
    spec_key: str, out: Storage, staging: str, engine: Engine, *, speech_models: object = None
) -> dict:
    """Speak one batch spec. Each synthesis batch is checked (verification, re-takes) and its
    chunk audio staged as soon as it is done, and chunks staged by an earlier (killed or
    failed) try are not spoken again."""
    from voicebatch.verify.settings import VerifySettings

    spec = json.loads(out.get_bytes(spec_key))
    requests = [ChunkRequest(**r) for r in spec["requests"]]
    todo = [r for r in requests if not out.exists(chunk_record_key(staging, r.key))]
    if len(todo) < len(requests):
        log.info("%d of %d chunks already staged by an earlier try", len(requests) - len(todo), len(requests))
    references = {}
    for voice, clip_hash in spec["voices"].items():
        prepared = load_registered_voice(out, voice, clip_hash)
        references[voice] = Reference(voice, prepared.samples, prepared.text)
    verify = VerifySettings(**spec.get("verify", {"mode": "off"}))
    name = spec_key.rsplit("/", 1)[-1]

    def stage(spoken: Spoken) -> None:
        _stage_chunks(out, staging, spoken)
        if spoken.verification is not None:  # rewritten per batch: a killed try leaves what it checked
            document = json_bytes(spoken.verification)
            out.put_bytes(f"{verification_prefix(staging)}{name}", document, "application/json")

    def keep_takes(chunk: VerifiedChunk) -> None:  # every take of a quarantined chunk, to listen to
        for take in chunk.takes:
            audio = wav_bytes(take.audio.samples, MODEL_SAMPLE_RATE)
            out.put_bytes(take_key(staging, chunk.request.key, take.number), audio, "audio/wav")

    started, seconds, done = time.perf_counter(), 0.0, 0
    overlap = verify.mode != "off" and overlap_enabled()
    for spoken in speak(
        engine,
        references,
        todo,
        SynthesisParams(**spec["params"]),
        int(spec["batch_frames"]),
        verify,
        speech_models=speech_models,
        keep_takes=keep_takes,
        deliver=stage,
        overlap=overlap,
    ):
        done += len(spoken.requests)
        seconds += sum(a.samples.shape[0] for a in spoken.audio) / MODEL_SAMPLE_RATE
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


def _stage_chunks(out: Storage, staging: str, spoken: Spoken) -> None:
    total_frames = sum(a.frames for a in spoken.audio) or 1
    for result in spoken.audio:
        out.put_bytes(chunk_audio_key(staging, result.key), _float_wav(result.samples), "audio/wav")
        share = {"frames": result.frames, "seconds": round(spoken.seconds * result.frames / total_frames, 4)}
        share["qa"] = spoken.qa.get(result.key)
        out.put_bytes(chunk_record_key(staging, result.key), json_bytes(share), "application/json")  # written last


def _float_wav(samples: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, MODEL_SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()
