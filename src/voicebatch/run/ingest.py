"""The voice stages: list the voices (keys only), then ingest each (check the recording, pick a
reference clip, register it under ``voices/<voice>/<clip_hash>/``). A bad voice fails alone.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from voicebatch.errors import InputError
from voicebatch.inputs.materialize import materialize
from voicebatch.inputs.vocab import load_vocabulary
from voicebatch.inputs.voices import PreparedVoice, discover_voices, prepare_voice, voice_source
from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import json_bytes, publish_voice, voice_prefix
from voicebatch.run.outcomes import error_line
from voicebatch.run.records import VoiceRecord

if TYPE_CHECKING:
    pass
from voicebatch.run.config import Opener, RunConfig
from voicebatch.run.layout import staged_json, voice_record_key, voice_record_prefix, voices_key

log = logging.getLogger(__name__)

T = TypeVar("T")


VOICE_DEPTH = 2  # <voice>/<file>, or <voice>.<suffix>: nothing deeper is a voice's


def list_voice_names(config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> list[str]:
    """The voices to ingest. The listing, with any input refused while listing, is staged
    for ``plan_run`` (which runs only after a listing) and the report. Only keys are listed:
    no recording or transcript is downloaded here (a prepared voice's small ``voice.json``
    is, as it names the voice)."""
    with materialize(config.voices_uri, open_uri, fetch=_names_a_voice, depth=VOICE_DEPTH) as found:
        names = [s.name for s in discover_voices(found.root)]
    refused = [str(e) for e in found.rejected]
    for line in refused:
        log.warning("%s", line)
    if config.voices:
        unknown = sorted(set(config.voices) - set(names))
        if unknown:
            raise InputError(config.voices_uri, f"voices not found: {', '.join(unknown)} (found: {', '.join(names)})")
        names = [n for n in names if n in config.voices]
    if not names:
        refusals = f" ({len(refused)} inputs refused)" if refused else ""
        raise InputError(config.voices_uri, f"no voices found{refusals}")
    out.put_bytes(voices_key(staging), json_bytes({"voices": names, "rejected": refused}), "application/json")
    return names


def ingest_voice(name: str, config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> dict:
    """Prepare one voice and register it; its outcome is staged either way. Raises InputError."""
    record = VoiceRecord(voice=name, status="error")

    def belongs(key: str) -> bool:  # the voice's own files only: a folder or a flat stem
        return key.startswith(f"{name}/") or key.rsplit(".", 1)[0] == name

    found = None
    try:
        # Only this voice's keys are listed and downloaded (a folder or a flat stem share the prefix).
        with materialize(config.voices_uri, open_uri, belongs, prefix=name, depth=VOICE_DEPTH) as found:
            voice = prepare_voice(voice_source(found.root / name), vocab=load_vocabulary())
        published = publish_voice(out, voice)
        window = voice.metadata["window"]
        record = VoiceRecord(
            voice=name,
            status="ok",
            clip_hash=voice.clip_hash,
            registry=published.prefix,
            start=window["start"],
            end=window["end"],
            text=voice.text,
            warnings=tuple(voice.warnings),
            reused=published.skipped,
        )
        log.info(
            "voice %s: clip %.2f–%.2f s of %s (%s), text %r%s",
            name,
            window["start"],
            window["end"],
            voice.metadata["sources"]["audio"]["name"],
            "already registered" if published.skipped else "registered",
            voice.text,
            "".join(f"; warning: {w}" for w in voice.warnings),
        )
        return record.summary()
    except InputError as e:
        error = found.relabel(e) if found else e  # name the input's own location, not a temporary copy
        record = replace(record, reason=str(error))
        raise error from None
    except Exception as e:  # unexpected: retried by Airflow, and the report still says why
        record = replace(record, reason=error_line(e))
        raise
    finally:
        out.put_bytes(voice_record_key(staging, name), json_bytes(record.to_json()), "application/json")


def _names_a_voice(key: str) -> bool:
    """A prepared voice folder's ``voice.json``: the one file whose bytes the listing reads."""
    return key.count("/") == 1 and key.endswith("/voice.json")


def ingest_voices(names: Sequence[str], config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> list[dict]:
    """Ingest one mapped task's group of voices. Every voice is tried whatever happens to the
    others, and each outcome is staged; then the task fails if any voice did: at once on bad
    input (``InputError`` naming every bad voice), or with the first unexpected error (retried;
    voices a previous try registered are not ingested again)."""
    results, bad, unexpected = [], [], []
    for name in names:
        staged = voice_record_key(staging, name)
        if out.exists(staged) and (done := VoiceRecord.from_json(json.loads(out.get_bytes(staged)))).ok:
            results.append(done.summary())
            continue
        try:
            results.append(ingest_voice(name, config, out, staging, open_uri))
        except InputError as e:
            bad.append(e)
        except Exception as e:  # the others are still tried; raised below (and retried)
            unexpected.append(e)
    if unexpected:
        raise unexpected[0]
    if len(bad) == 1 and len(names) == 1:
        raise bad[0]
    if bad:
        raise InputError(config.voices_uri, f"{len(bad)} of {len(names)} voices unusable: " + "; ".join(map(str, bad)))
    return results


def load_registered_voice(out: Storage, name: str, clip_hash: str) -> PreparedVoice:
    import soundfile as sf

    prefix = voice_prefix(name, clip_hash)
    samples, _ = sf.read(io.BytesIO(out.get_bytes(prefix + "reference.wav")), dtype="float32")
    metadata = json.loads(out.get_bytes(prefix + "voice.json"))
    return PreparedVoice(name, samples, metadata["reference_text"], clip_hash, metadata, tuple(metadata["warnings"]))


def voice_records(out: Storage, staging: str) -> dict[str, VoiceRecord]:
    keys = [k for k in out.list(voice_record_prefix(staging)) if k.endswith(".json")]
    records = [VoiceRecord.from_json(json.loads(out.get_bytes(k))) for k in keys]
    return {r.voice: r for r in records}


def voices_listed(out: Storage, staging: str) -> dict:
    """The staged voice listing; raises ``StageNotReady`` when list_voices did not finish."""
    return staged_json(out, voices_key(staging), "list_voices did not finish: no voices to plan with")


def task_groups(items: Sequence[T], max_tasks: int) -> list[list[T]]:
    """``items`` in order, in at most ``max_tasks`` groups of consecutive items: one item a
    group while they fit, else ``ceil(n / max_tasks)`` a group. Airflow fails a mapped task
    that would expand past ``[core] max_map_length`` (1024 by default); grouping keeps any
    number of voices under it."""
    size = max(1, math.ceil(len(items) / max(1, max_tasks)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def group_label(names: Sequence[str]) -> str:
    """A mapped task's label: the voice, or the first and last of its group."""
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)} voices)"
