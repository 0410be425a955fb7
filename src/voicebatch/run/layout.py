"""Where a run keeps its intermediate bytes: every staging key, named once.

    ingest_voice (one per voice) -> plan_run -> synthesize_batch (one per batch spec)
        -> publish_run -> report_run

Every stage reads and writes the output storage; what passes between stages (and so
through XCom) is keys, names and counts. Intermediate bytes live under
``_staging/<run_id>/`` and are removed by ``report_run``:

    voices.json            the voices listed (and inputs refused while listing them)
    voices/<voice>.json    each voice's outcome (ok with its clip, or the reason it failed)
    plan.json              scripts with their output hashes, chunks and status; batch spec keys
    batches/<n>.json       the chunks one synthesize task speaks (and the scripts they belong to)
    chunks/<key>.wav       synthesized chunk audio (float WAV: exact), <key>.json its timing;
                           staged per synthesis batch as it finishes, so a killed try loses
                           at most the batch it was running
    takes/<key>/<n>.wav    every take of a quarantined chunk (PCM16: to listen)
    verification/<batch>   each batch spec's verification record
    outcomes.json          what publish_run did per script
    stages/                each stage's outcome (``voicebatch.run.outcomes``)

A stage whose upstream stage did not finish raises ``StageNotReady`` (skip it, it is not a
failure of its own); bad input and bad configuration raise ``InputError`` (permanent).
"""

from __future__ import annotations

import json

from voicebatch.locations.names import key_segment
from voicebatch.locations.storage import Storage
from voicebatch.run.outcomes import StageNotReady


def staging_prefix(run_id: str) -> str:
    return f"_staging/{key_segment(run_id)}/"


def voices_key(staging: str) -> str:
    return f"{staging}voices.json"


def voice_record_prefix(staging: str) -> str:
    return f"{staging}voices/"


def voice_record_key(staging: str, voice: str) -> str:
    return f"{voice_record_prefix(staging)}{voice}.json"


def plan_key(staging: str) -> str:
    return f"{staging}plan.json"


def batch_key(staging: str, number: int) -> str:
    return f"{staging}batches/{number:04d}.json"


def chunk_audio_key(staging: str, chunk_key: str) -> str:
    return f"{staging}chunks/{chunk_key}.wav"


def chunk_record_key(staging: str, chunk_key: str) -> str:
    """Written after the chunk's audio: its presence means the chunk is staged."""
    return f"{staging}chunks/{chunk_key}.json"


def take_key(staging: str, chunk_key: str, take: int) -> str:
    return f"{staging}takes/{chunk_key}/{take}.wav"


def verification_prefix(staging: str) -> str:
    return f"{staging}verification/"


def outcomes_key(staging: str) -> str:
    return f"{staging}outcomes.json"


def staged_json(out: Storage, key: str, missing: str) -> dict:
    """A document an upstream stage writes last; its absence means that stage did not finish."""
    if not out.exists(key):
        raise StageNotReady(missing)
    return json.loads(out.get_bytes(key))
