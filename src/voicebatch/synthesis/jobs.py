"""Scripts -> chunk requests -> one engine pass for all of them -> one assembly per script."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from voicebatch.chunking import Chunk
from voicebatch.manifest import chunk_cache_key
from voicebatch.scripts import Script, chunk_script
from voicebatch.synthesis.batching import chunk_seed
from voicebatch.synthesis.engine import (
    DEFAULT_BATCH_FRAMES,
    DEFAULT_PARAMS,
    ChunkAudio,
    ChunkRequest,
    Engine,
    Progress,
    Reference,
    SynthesisParams,
)
from voicebatch.timings import CROSS_FADE_SECONDS, Assembly, assemble
from voicebatch.voices import PreparedVoice

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScriptResult:
    script: Script
    chunks: tuple[Chunk, ...]
    requests: tuple[ChunkRequest, ...]
    audio: tuple[ChunkAudio, ...]
    assembly: Assembly


def plan_requests(
    scripts: Sequence[Script],
    voices: Mapping[str, PreparedVoice],
    params: SynthesisParams,
    model_checksum: str,
    seed: int,
) -> list[tuple[Script, list[Chunk], list[ChunkRequest]]]:
    references = {name: (voice.text, voice.duration) for name, voice in voices.items()}
    planned = []
    for script in scripts:
        chunks = chunk_script(script, references)
        requests = []
        for chunk in chunks:
            key = chunk_cache_key(
                clip_hash=voices[chunk.voice].clip_hash,
                text=chunk.text,
                speed=chunk.speed,
                params=asdict(params),
                model_checksum=model_checksum,
                seed=seed,
            )
            requests.append(ChunkRequest(key, chunk.voice, chunk.text, chunk.speed, chunk_seed(seed, key)))
        planned.append((script, chunks, requests))
    return planned


def synthesize_scripts(
    engine: Engine,
    voices: Mapping[str, PreparedVoice],
    scripts: Sequence[Script],
    params: SynthesisParams = DEFAULT_PARAMS,
    *,
    seed: int = 0,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    cross_fade: float = CROSS_FADE_SECONDS,
    progress: Callable[[Progress], None] | None = None,
) -> list[ScriptResult]:
    """Synthesize every chunk of every script in shared batches, then assemble per script."""
    planned = plan_requests(scripts, voices, params, engine.files.checksum, seed)
    references = {name: Reference(name, v.samples, v.text) for name, v in voices.items()}
    every_request = [r for _, _, requests in planned for r in requests]
    audio = iter(engine.synthesize(references, every_request, params, batch_frames=batch_frames, progress=progress))
    results = []
    for script, chunks, requests in planned:
        pieces = [next(audio) for _ in requests]
        assembly = assemble([p.samples for p in pieces], [c.sentences for c in chunks], cross_fade=cross_fade)
        results.append(ScriptResult(script, tuple(chunks), tuple(requests), tuple(pieces), assembly))
    return results


def log_progress(p: Progress) -> None:
    log.info("chunks %d/%d, %.1f s of audio in %.1f s (RTF %.3f)", p.done, p.total, p.audio_seconds, p.elapsed, p.rtf)
