"""The manifest: what an output holds and how it was made (written last, so its presence means
the output is complete)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voicebatch.keys import OUTPUT_FORMAT_VERSION


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
        "schema": "voicebatch.publish.manifest/1",
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
