"""Takes: check every chunk, synthesize failures again with their next seed, keep the best.

Take 1 is the chunk's own request (its seed from the run's seed and its cache key).
Take k > 1 gets ``take_seed(key, k)``: derived from the cache key alone, so take k of a
chunk always gets the same seed and a re-run re-takes exactly as before. All failing
chunks of a round are synthesized together (the engine batches them). The kept take is
the first that passes, else the best-ranked failure (fewer signal problems, then lower
CER), marked ``quarantined``. A model with random weights gets no re-takes: a new seed
cannot make noise speak, and the demo must not slow down by ``max_takes``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE
from voicebatch.keys import take_seed
from voicebatch.verify.check import TakeCheck, Verifier, batch_transcripts
from voicebatch.verify.records import Alignment, WordTime
from voicebatch.verify.signal import to_16k

if TYPE_CHECKING:
    from voicebatch.synthesis.engine import ChunkAudio, ChunkRequest, Engine, Reference, SynthesisParams

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_NOTE = "re-takes skipped: the model has random weights (a new seed cannot make noise speak)"


@dataclass(frozen=True, slots=True)
class Take:
    number: int  # 1-based
    seed: int
    check: TakeCheck
    audio: ChunkAudio = field(repr=False)


@dataclass(frozen=True, slots=True)
class VerifiedChunk:
    request: ChunkRequest
    takes: tuple[Take, ...]
    kept: int  # index into takes
    status: str  # "passed" | "quarantined" | "not_checked"
    notes: tuple[str, ...] = ()

    @property
    def audio(self) -> ChunkAudio:
        return self.takes[self.kept].audio

    def qa_record(self) -> dict:
        """The chunk's QA record (manifest, staging): every take with its scores, which was kept."""
        kept = self.takes[self.kept].check
        return {
            "status": self.status,
            "kept_take": self.takes[self.kept].number,
            "language": kept.language,
            "notes": list(self.notes),
            "takes": [{"take": t.number, "seed": t.seed, **t.check.as_json()} for t in self.takes],
            "alignment": alignment_json(kept.alignment),
        }


def chunk_status(check: TakeCheck) -> str:
    return {"passed": "passed", "failed": "quarantined"}.get(check.status, "not_checked")


def verify_chunks(
    engine: Engine,
    references: Mapping[str, Reference],
    requests: Sequence[ChunkRequest],
    params: SynthesisParams,
    audio: Sequence[ChunkAudio],
    verifier: Verifier,
    *,
    max_takes: int,
    random_weights: bool,
    batch_frames: int | None = None,
    progress: Callable | None = None,
) -> list[VerifiedChunk]:
    """Check the first takes, re-take failures round by round, and pick each chunk's take.
    ``audio`` is the engine's output for ``requests``, in order."""
    rates = {v: _bytes_per_second(r) for v, r in references.items()}
    takes: dict[str, list[Take]] = {r.key: [] for r in requests}
    by_key = {r.key: r for r in requests}
    current = list(zip(requests, audio, strict=True))
    notes: list[str] = []
    for number in range(1, max_takes + 1):
        failing = []
        batched = batch_transcripts(verifier, [(r.key, a.samples, MODEL_SAMPLE_RATE, r.text) for r, a in current])
        for request, result in current:
            check = verifier.check(
                result.samples,
                MODEL_SAMPLE_RATE,
                request.text,
                bytes_per_second=rates.get(request.voice),
                speed=request.speed,
                transcript=batched.get(request.key),
            )
            takes[request.key].append(Take(number, request.seed, check, result))
            if check.status == "failed":
                failing.append(request)
        passed = sum(takes[r.key][-1].check.passed for r, _ in current)
        log.info("verify take %d: %d of %d chunks passed, %d failed", number, passed, len(current), len(failing))
        if not failing or number == max_takes or verifier.mode == "off":
            break
        if random_weights:
            notes.append(RANDOM_WEIGHTS_NOTE)
            log.warning("%s (%d chunks failed)", RANDOM_WEIGHTS_NOTE, len(failing))
            break
        retakes = [replace(r, seed=take_seed(r.key, number + 1, by_key[r.key].seed)) for r in failing]
        kwargs = {"progress": progress} if progress else {}
        if batch_frames:
            kwargs["batch_frames"] = batch_frames
        log.info("re-taking %d chunks (take %d)", len(retakes), number + 1)
        current = list(zip(retakes, engine.synthesize(references, retakes, params, **kwargs), strict=True))
    out = []
    for request in requests:
        chunk_takes = takes[request.key]
        kept = next((i for i, t in enumerate(chunk_takes) if t.check.passed), None)
        if kept is None:
            kept = min(range(len(chunk_takes)), key=lambda i: chunk_takes[i].check.rank)
        check = chunk_takes[kept].check
        if check.alignment is None and verifier.mode != "off":
            # A kept failure was not aligned while it was being checked: align it now for its timings.
            alignment = verifier.align(
                to_16k(chunk_takes[kept].audio.samples, MODEL_SAMPLE_RATE),
                request.text,
                check.language,
                check.transcript,
            )
            check = replace(check, alignment=alignment)
            chunk_takes[kept] = replace(chunk_takes[kept], check=check)
        out.append(VerifiedChunk(request, tuple(chunk_takes), kept, chunk_status(check), tuple(dict.fromkeys(notes))))
    return out


def alignment_json(alignment: Alignment | None) -> dict | None:
    if alignment is None:
        return None
    words = [[w.word, _r(w.start), _r(w.end), _r(w.score)] for w in alignment.words]
    return {"aligner": alignment.aligner, "words": words}


def alignment_from_json(document: Mapping | None) -> Alignment | None:
    if not document:
        return None
    return Alignment(document["aligner"], tuple(WordTime(*w) for w in document["words"]))


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _bytes_per_second(reference: Reference) -> float | None:
    seconds = reference.samples.shape[0] / MODEL_SAMPLE_RATE
    size = len(reference.text.encode("utf-8"))
    return size / seconds if seconds > 0 and size else None
