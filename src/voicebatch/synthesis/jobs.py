"""Scripts -> chunk requests (cache keys and seeds) for the engine; progress logging."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from voicebatch.inputs.chunking import Chunk
from voicebatch.inputs.scripts import Script, chunk_script
from voicebatch.inputs.voices import PreparedVoice
from voicebatch.keys import chunk_cache_key, chunk_seed
from voicebatch.synthesis.engine import (
    ChunkRequest,
    Progress,
    SynthesisParams,
)
from voicebatch.text.markup import DEFAULT_PAUSES, PauseRules
from voicebatch.text.spoken import DEFAULT_SPOKEN_FORM, SpokenForm

log = logging.getLogger(__name__)


def plan_requests(
    scripts: Sequence[Script],
    voices: Mapping[str, PreparedVoice],
    params: SynthesisParams,
    model_checksum: str,
    seed: int,
    *,
    spoken: SpokenForm = DEFAULT_SPOKEN_FORM,
    pauses: PauseRules = DEFAULT_PAUSES,
) -> list[tuple[Script, list[Chunk], list[ChunkRequest]]]:
    references = {name: (voice.text, voice.duration) for name, voice in voices.items()}
    planned = []
    for script in scripts:
        # The chunk's text (its cache key, and what F5 speaks) is the spoken form.
        chunks = chunk_script(script, references, spoken=spoken, pauses=pauses)
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


def log_progress(p: Progress) -> None:
    # ETA from the pace so far (chunks are similar in length: the planner packs them by size).
    left = p.elapsed / p.done * (p.total - p.done) if p.done else 0.0
    log.info(
        "chunks %d/%d, %.1f s of audio in %.1f s (RTF %.2f), ETA %s",
        p.done,
        p.total,
        p.audio_seconds,
        p.elapsed,
        p.rtf,
        format_eta(left) if p.done < p.total else "done",
    )


def format_eta(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
