"""The publish protocol: complete or absent, never redone when nothing changed.

Per script, under ``audio/<script_id>/<output_hash>/``: the audio, subtitles and CSV first,
then ``manifest.json`` (listing every output with its size and sha256), then
``audio/<script_id>/latest.json`` naming the current hash. Readers trust only outputs that
have a manifest: a crash between steps leaves none, so the next attempt redoes that
script, and a manifest never points at a missing or different object. If the manifest
already exists the script is skipped.

``latest.json`` names the output the most recent run asked for, whether that run published
it or found it already published: it is rewritten whenever a run asks for another output
than the one it names (so "seed 1, seed 2, seed 1 again" ends on seed 1), with that run's
id and the time; a run asking for the output it already names writes nothing.

Prepared voices go to the voice registry ``voices/<voice>/<clip_hash>/`` the same way
(``voice.json`` last) and are reused by hash across runs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from voicebatch.audio import MODEL_SAMPLE_RATE, file_sha256, wav_bytes
from voicebatch.inputs.voices import PreparedVoice
from voicebatch.locations.retry import retrying
from voicebatch.locations.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    prefix: str
    manifest_key: str
    keys: tuple[str, ...]  # every object of the output, the manifest last
    skipped: bool  # True: it was already published, nothing was written


def output_prefix(script_id: str, output_hash: str) -> str:
    return f"audio/{script_id}/{output_hash}/"


def voice_prefix(voice: str, clip_hash: str) -> str:
    return f"voices/{voice}/{clip_hash}/"


def is_published(storage: Storage, script_id: str, output_hash: str) -> bool:
    return storage.exists(output_prefix(script_id, output_hash) + "manifest.json")


def json_bytes(document: object) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


def publish_script(
    storage: Storage,
    script_id: str,
    output_hash: str,
    files: Mapping[str, bytes | Path],
    content_types: Mapping[str, str],
    manifest: dict,
    *,
    latest: Mapping[str, object] | None = None,
) -> Published:
    """``files``: name -> bytes, or the path of a file (a long output, never read into memory).
    ``latest``: extra fields for ``latest.json`` (``needs_review`` from the QA)."""
    prefix = output_prefix(script_id, output_hash)
    manifest_key = prefix + "manifest.json"
    if storage.exists(manifest_key):
        log.info("%s: already published at %s, skipped", script_id, prefix)
        point_latest(storage, script_id, output_hash, manifest.get("run"))
        return Published(prefix, manifest_key, _listed(manifest_key, storage), True)
    outputs = []
    for name, data in files.items():
        key = prefix + name
        if isinstance(data, Path):  # a long output on disk: streamed up, hashed from the file
            retrying(lambda k=key, d=data, n=name: storage.put_file(k, d, content_types.get(n)), what=f"upload {key}")
            size, digest = data.stat().st_size, file_sha256(data)
        else:
            retrying(lambda k=key, d=data, n=name: storage.put_bytes(k, d, content_types.get(n)), what=f"upload {key}")
            size, digest = len(data), hashlib.sha256(data).hexdigest()
        outputs.append({"key": key, "size": size, "sha256": digest, "content_type": content_types.get(name)})
    document = {**manifest, "outputs": outputs}
    retrying(lambda: storage.put_bytes(manifest_key, json_bytes(document), "application/json"), what="manifest")
    point_latest(storage, script_id, output_hash, manifest.get("run"), latest)
    log.info("%s: published %d files and the manifest under %s", script_id, len(outputs), prefix)
    return Published(prefix, manifest_key, (*(o["key"] for o in outputs), manifest_key), False)


def latest_key(script_id: str) -> str:
    return f"audio/{script_id}/latest.json"


def point_latest(
    storage: Storage,
    script_id: str,
    output_hash: str,
    run: Mapping[str, object] | None = None,
    extra: Mapping[str, object] | None = None,
) -> bool:
    """Make ``latest.json`` name ``output_hash`` (published) for the run that asked for it.
    Writes only when it names another output (or none). Returns True when it wrote.
    ``extra``: more fields (``needs_review`` from the QA); when None, an already published
    output's ``needs_review`` is read from its manifest."""
    key = latest_key(script_id)
    if storage.exists(key) and json.loads(storage.get_bytes(key)).get("output_hash") == output_hash:
        return False
    manifest_key = output_prefix(script_id, output_hash) + "manifest.json"
    if extra is None and storage.exists(manifest_key):
        qa = json.loads(storage.get_bytes(manifest_key)).get("qa") or {}
        extra = {"needs_review": qa["needs_review"]} if "needs_review" in qa else {}
    latest = {
        "script_id": script_id,
        "output_hash": output_hash,
        "manifest": manifest_key,
        "run": {k: (run or {}).get(k) for k in ("dag_id", "run_id")},
        "updated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    retrying(lambda: storage.put_bytes(key, json_bytes(latest), "application/json"), what="latest.json")
    log.info("%s: latest.json now names %s", script_id, output_hash[:12])
    return True


def _listed(manifest_key: str, storage: Storage) -> tuple[str, ...]:
    document = json.loads(storage.get_bytes(manifest_key))
    return (*(o["key"] for o in document["outputs"]), manifest_key)


def publish_voice(storage: Storage, voice: PreparedVoice) -> Published:
    prefix = voice_prefix(voice.name, voice.clip_hash)
    marker = prefix + "voice.json"
    keys = (prefix + "reference.wav", prefix + "reference.txt", marker)
    if storage.exists(marker):
        return Published(prefix, marker, keys, True)
    retrying(lambda: storage.put_bytes(keys[0], wav_bytes(voice.samples, MODEL_SAMPLE_RATE), "audio/wav"))
    retrying(lambda: storage.put_bytes(keys[1], (voice.text + "\n").encode("utf-8"), "text/plain; charset=utf-8"))
    retrying(lambda: storage.put_bytes(marker, json_bytes(voice.metadata), "application/json"))
    log.info("voice %s: registered at %s", voice.name, prefix)
    return Published(prefix, marker, keys, False)
