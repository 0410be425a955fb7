"""Speaking chunks: the one path from chunk requests to checked audio, for the synthesize stage
and for ``voicebatch synth`` alike.

The requests are packed into synthesis batches as the engine packs them (same frame estimate,
same frame buckets); each batch is one engine call, then verified (re-takes with the engine still
loaded, the best take kept). With verification on, batch N is checked on a worker thread while
batch N+1 synthesizes (``verify/overlap.py``). Each checked batch is handed to ``deliver`` as soon
as it is checked (the synthesize stage stages it there, so a killed try keeps it) and yielded in
order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicebatch.synthesis.batching import estimate_frames, plan_batches
from voicebatch.synthesis.buckets import FrameBuckets, plan_bucketed_batches
from voicebatch.synthesis.engine import ChunkAudio, ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import log_progress
from voicebatch.verify.overlap import Checked, SharedEngine, overlap_enabled, synthesize_then_verify
from voicebatch.verify.settings import VerifySettings

if TYPE_CHECKING:
    from voicebatch.synthesis.models import ModelFiles

log = logging.getLogger(__name__)

OFF = VerifySettings(mode="off")


@dataclass(frozen=True, slots=True)
class Spoken:
    """One synthesis batch, spoken and checked."""

    requests: tuple[ChunkRequest, ...]
    audio: tuple[ChunkAudio, ...]  # the kept take of each request, in order
    qa: Mapping[str, dict]  # chunk key -> its QA record; empty when not verified
    seconds: float  # wall time: synthesis and verification of this batch
    verification: dict | None  # what verified it so far (mode, models, notes, seconds); None when off


class ChunkVerification:
    """Verification right after each engine call: check every chunk, re-take failures with the
    engine still loaded, keep the best take. ``keep_takes`` receives every chunk that never
    passed (with all its takes), for listening."""

    def __init__(
        self,
        settings: VerifySettings,
        engine: Engine,
        batch_frames: int | None = None,
        *,
        speech_models: object = None,
        keep_takes: Callable[[object], None] | None = None,
    ) -> None:
        self.settings, self.engine, self.batch_frames = settings, engine, batch_frames
        self.speech_models, self.keep_takes = speech_models, keep_takes
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
        if self.keep_takes is not None:
            for chunk in verified:
                if chunk.status == "quarantined":
                    self.keep_takes(chunk)
        self.seconds += time.perf_counter() - started
        counts = {s: sum(c.status == s for c in verified) for s in ("passed", "quarantined", "not_checked")}
        retakes = sum(len(c.takes) - 1 for c in verified)
        log.info("verification: %s, %d re-takes, %.1f s", counts, retakes, time.perf_counter() - started)
        return [c.audio for c in verified], {c.request.key: c.qa_record() for c in verified}

    def record(self) -> dict | None:
        """What verified the chunks: the effective mode, the models, the notes and the time spent."""
        if self.verifier is None:
            return None
        verifier = self.verifier
        return {
            "mode": verifier.mode,
            "models": verifier.lineage(),
            "notes": list(verifier.notes),
            "seconds": round(self.seconds, 2),
        }

    def _verifier(self):
        if self.verifier is None:
            from voicebatch.verify import build_verifier
            from voicebatch.verify.store import SpeechModelStore

            store = self.speech_models if isinstance(self.speech_models, SpeechModelStore) else SpeechModelStore()
            self.verifier = build_verifier(self.settings, models=store, device=self.engine.device)
        return self.verifier


@contextmanager
def engine_for(files: ModelFiles, device: str | None, engine: Engine | None = None) -> Iterator[Engine]:
    """``engine`` when one is given (tests), else an engine on ``device``, or on a leased GPU
    (else the CPU), the lease released on the way out."""
    if engine is not None:
        yield engine
        return
    from voicebatch.synthesis.devices import lease_device

    lease = lease_device() if device is None else None
    try:
        yield Engine(files, device=device or lease.device)
    finally:
        if lease is not None:
            lease.release()


def speak(
    engine: Engine,
    references: Mapping[str, Reference],
    requests: Sequence[ChunkRequest],
    params: SynthesisParams,
    batch_frames: int,
    verify: VerifySettings = OFF,
    *,
    speech_models: object = None,
    keep_takes: Callable[[object], None] | None = None,
    deliver: Callable[[Spoken], None] | None = None,
    overlap: bool | None = None,
) -> Iterator[Spoken]:
    """Every request spoken and checked, one synthesis batch at a time, in order."""
    if overlap is None:
        overlap = verify.mode != "off" and overlap_enabled()
    engine = SharedEngine(engine) if overlap else engine  # re-takes share it with the synthesis loop
    verification = ChunkVerification(verify, engine, batch_frames, speech_models=speech_models, keep_takes=keep_takes)

    def spoken(checked: Checked) -> Spoken:
        audio, qa = checked.result
        seconds = checked.synthesis_s + checked.verify_s
        return Spoken(tuple(checked.group), tuple(audio), qa, seconds, verification.record())

    groups = synthesis_batches(requests, references, batch_frames, getattr(engine, "buckets", None))
    for checked in synthesize_then_verify(
        groups,
        lambda group: engine.synthesize(references, list(group), params, batch_frames=batch_frames),
        lambda group, audio: verification.check(references, group, params, audio),
        deliver=None if deliver is None else (lambda checked: deliver(spoken(checked))),
        overlap=overlap,
    ):
        yield spoken(checked)


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
