"""Content hashes, cache keys and seeds: every key a chunk or an output is found by.

A chunk's key (and from it, its noise seed) and a script output's key hash everything
that determines the audio: the reference clip (its hash covers samples and text), the
text, the speed, the synthesis parameters, the model's checksum and the output format
version. Same inputs, same key: a re-run, retry or backfill finds the work already done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

# Bump when a change in voicebatch alters the audio or the files it writes for the same inputs.
OUTPUT_FORMAT_VERSION = 2  # 2 (this release): QA records, pauses, spoken form, subtitle rules, CSV schema


def stable_hash(*parts: object) -> str:
    """sha256 over a canonical JSON encoding of ``parts``."""
    encoded = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def chunk_cache_key(
    *, clip_hash: str, text: str, speed: float, params: Mapping[str, object], model_checksum: str, seed: int
) -> str:
    return stable_hash(
        "chunk", OUTPUT_FORMAT_VERSION, clip_hash, text, round(speed, 4), dict(params), model_checksum, seed
    )


def output_hash(
    *,
    clip_hashes: Mapping[str, str],
    reference_texts: Mapping[str, str],
    script_text: str,
    params: Mapping[str, object],
    model_checksum: str,
) -> str:
    """The key of one script's published outputs (``audio/<script_id>/<output_hash>/``)."""
    return stable_hash(
        "output",
        OUTPUT_FORMAT_VERSION,
        dict(clip_hashes),
        dict(reference_texts),
        script_text,
        dict(params),
        model_checksum,
    )


def chunk_seed(base_seed: int, cache_key: str) -> int:
    """A chunk's noise seed: from the run's seed and the chunk's cache key, so its audio
    depends on neither its batch mates nor the order chunks run in."""
    digest = hashlib.sha256(f"{base_seed}:{cache_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def take_seed(key: str, take: int, first_seed: int) -> int:
    """The seed of take ``take`` (1-based) of the chunk with cache key ``key``."""
    if take == 1:
        return first_seed
    digest = hashlib.sha256(f"take:{take}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def retake_seed(key: str, seed: int) -> int:
    """The seed a "new seed" re-take gets without one given: from the chunk's key and old seed."""
    digest = hashlib.sha256(f"retake:{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
