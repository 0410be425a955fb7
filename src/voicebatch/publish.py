"""The publish protocol: complete or absent, never redone when nothing changed.

Per script, under ``audio/<script_id>/<output_hash>/``: the audio, subtitles and CSV first,
then ``manifest.json`` (listing every output with its size and sha256), then
``audio/<script_id>/latest.json`` naming the current hash. Readers trust only outputs that
have a manifest: a crash between steps leaves none, so the next attempt redoes that
script, and a manifest never points at a missing or different object. If the manifest
already exists the script is skipped.

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

from voicebatch.audio import MODEL_SAMPLE_RATE, wav_bytes
from voicebatch.storage import Storage, retrying
from voicebatch.voices import PreparedVoice

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
    files: Mapping[str, bytes],
    content_types: Mapping[str, str],
    manifest: dict,
    *,
    latest: Mapping[str, object] | None = None,
) -> Published:
    """``latest``: extra fields for ``latest.json`` (``needs_review`` from the QA)."""
    prefix = output_prefix(script_id, output_hash)
    manifest_key = prefix + "manifest.json"
    if storage.exists(manifest_key):
        log.info("%s: already published at %s, skipped", script_id, prefix)
        return Published(prefix, manifest_key, _listed(manifest_key, storage), True)
    outputs = []
    for name, data in files.items():
        key = prefix + name
        retrying(lambda k=key, d=data, n=name: storage.put_bytes(k, d, content_types.get(n)), what=f"upload {key}")
        outputs.append(
            {
                "key": key,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "content_type": content_types.get(name),
            }
        )
    document = {**manifest, "outputs": outputs}
    retrying(lambda: storage.put_bytes(manifest_key, json_bytes(document), "application/json"), what="manifest")
    pointer = {
        "script_id": script_id,
        "output_hash": output_hash,
        "manifest": manifest_key,
        "published_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **(latest or {}),
    }
    latest_key = f"audio/{script_id}/latest.json"
    retrying(lambda: storage.put_bytes(latest_key, json_bytes(pointer), "application/json"), what="latest.json")
    log.info("%s: published %d files and the manifest under %s", script_id, len(outputs), prefix)
    return Published(prefix, manifest_key, (*(o["key"] for o in outputs), manifest_key), False)


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
