"""Content hashes and cache keys.

A chunk's key (and from it, its noise seed) and a script output's key hash everything
that determines the audio: the reference clip (its hash covers samples and text), the
text, the speed, the synthesis parameters, the model's checksum and the output format
version. Same inputs, same key: a re-run, retry or backfill finds the work already done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

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


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("voicebatch", "f5-tts", "torch", "numpy", "soundfile"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_manifest(
    *,
    script_id: str,
    output_hash: str,
    script: Mapping[str, object],
    voices: Mapping[str, Mapping[str, object]],
    model: Mapping[str, object],
    parameters: Mapping[str, object],
    chunks: list[Mapping[str, object]],
    durations: Mapping[str, object],
    loudness: Mapping[str, object] | None,
    run: Mapping[str, object] | None = None,
    lexicon: Mapping[str, object] | None = None,
    subtitle_problems: Sequence[Mapping[str, object]] = (),
) -> dict:
    """The lineage manifest of one script's outputs (schema in the README); ``outputs`` is
    filled in by the publisher, which writes the manifest last."""
    import datetime

    return {
        "schema": "voicebatch.manifest/1",
        "script_id": script_id,
        "output_hash": output_hash,
        "output_format_version": OUTPUT_FORMAT_VERSION,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "inputs": {
            "script": dict(script),
            "voices": {k: dict(v) for k, v in voices.items()},
            "lexicon": dict(lexicon) if lexicon else None,
        },
        "model": dict(model),
        "parameters": dict(parameters),
        "seeds": [c["seed"] for c in chunks],
        "chunks": chunks,
        "versions": package_versions(),
        "durations": dict(durations),
        "loudness": dict(loudness) if loudness else None,
        "run": dict(run) if run else None,
        "subtitle_problems": [dict(p) for p in subtitle_problems],
        "chunk_audio": None,  # each chunk's own audio (chunk_store), filled in by the publisher
        "supersedes": None,  # a re-take: the output it replaces (voicebatch.retake)
        "outputs": [],
    }
