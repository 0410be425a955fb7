"""What each stage of a run did, recorded in staging so the report can say which stage failed
and why, without asking the orchestrator.

Every stage task records its outcome under ``_staging/<run_id>/stages/`` as it ends: ``ok``,
``failed`` with a one-line error, or ``skipped`` when an upstream stage did not finish (then
it has nothing to work on, and the report names the upstream stage only, once). A stage with
no record did not finish at all: its process was killed, timed out or lost its storage.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence

from voicebatch.errors import InputError
from voicebatch.locations.retry import describe_error, is_permanent, is_transient
from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import json_bytes
from voicebatch.run.records import StageOutcome

log = logging.getLogger(__name__)

NO_RECORD = "did not finish: no outcome recorded (the task was killed, timed out or lost its storage)"


class StageNotReady(RuntimeError):
    """An upstream stage did not finish, so this one has nothing to work on. Not a failure of
    its own: the orchestrator should skip the stage, and the report names the upstream one."""


def stage_key(staging: str, stage: str, part: str | None = None) -> str:
    return f"{staging}stages/{stage}/{part}.json" if part else f"{staging}stages/{stage}.json"


def error_line(error: BaseException) -> str:
    """One line naming what went wrong: an input's own message, or the storage error and its
    cause, or the exception type and the first line of its message."""
    from voicebatch.synthesis.models import ModelError

    if isinstance(error, (InputError, ModelError, StageNotReady)):
        return " ".join(str(error).split())
    if is_transient(error) or is_permanent(error):
        return describe_error(error)
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


@contextlib.contextmanager
def record_stage(out: Storage, staging: str, stage: str, part: str | None = None) -> Iterator[dict]:
    """Record the stage's outcome however it ends. The body may add fields to the record: it
    gets a dict of them, written after the record's own (``StageOutcome.extra``)."""
    key = stage_key(staging, stage, part)
    added: dict = {}
    try:
        yield added
    except StageNotReady as e:
        _write_quietly(out, key, StageOutcome(stage=stage, part=part, status="skipped", error=str(e), extra=added))
        raise
    except BaseException as e:
        failed = StageOutcome(stage=stage, part=part, status="failed", error=error_line(e), extra=added)
        _write_quietly(out, key, failed)
        raise
    done = StageOutcome(stage=stage, part=part, status="ok", extra=added)
    out.put_bytes(key, json_bytes(done.to_json()), "application/json")  # a stage is done only once this is written


def _write_quietly(out: Storage, key: str, record: StageOutcome) -> None:
    try:
        out.put_bytes(key, json_bytes(record.to_json()), "application/json")
    except Exception as e:  # the stage's own error matters more than this one
        log.warning("could not record the outcome of %s: %s", key, error_line(e))


def stage_outcomes(out: Storage, staging: str, batches: Sequence[str]) -> list[StageOutcome]:
    """The outcome of every stage the run should have had, in order: list_voices, plan, one
    synthesize per batch spec, publish. A stage without a record did not finish."""
    records = {}
    for key in out.list(f"{staging}stages/"):
        if key.endswith(".json"):
            record = StageOutcome.from_json(json.loads(out.get_bytes(key)))
            records[(record.stage, record.part)] = record
    expected = [("list_voices", None), ("plan", None), *(("synthesize", batch_part(b)) for b in batches)]
    expected.append(("publish", None))
    return [
        records.get((stage, part)) or StageOutcome(stage=stage, part=part, status="failed", error=NO_RECORD)
        for stage, part in expected
    ]


def batch_part(batch_key: str) -> str:
    """The part name of a synthesize stage: its batch spec's file stem (``0003``)."""
    return batch_key.rsplit("/", 1)[-1].removesuffix(".json")
