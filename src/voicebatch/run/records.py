"""What the stages of a run hand each other through staging, as typed records.

The stages run as separate tasks (often on separate machines), so what passes between them is
JSON in the staging prefix: each voice's outcome (ingest -> plan, report), each script's plan
entry (plan -> publish, report), each script's publish outcome (publish -> report) and each
stage's own outcome (every stage -> report). These records are that JSON with a checked status:

- the fields are declared in the order their keys are written, so ``to_json`` gives the same
  document, byte for byte once ``json_bytes`` writes it, as the stages wrote before there were
  records (the report reads them, and tests and tools outside the run);
- a field that is ``None`` is left out of the document unless the record names it in
  ``_ALWAYS`` (readers of those keys expect them, null or not);
- lists are held as tuples (a frozen record's fields should not change under it), nested
  values as the JSON they are (chunk plans, QA takes: the stages that read them convert them);
- keys a record does not model are kept in ``extra`` and written back last, so a document
  written by a newer stage loses nothing when an older one rewrites it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, get_args

from voicebatch.publish.publishing import output_prefix

R = TypeVar("R", bound="Record")

StageStatus = Literal["ok", "failed", "skipped"]
VoiceStatus = Literal["ok", "error"]
PlanStatus = Literal["pending", "skipped", "failed"]
OutcomeStatus = Literal["published", "skipped", "failed", "held"]


class RecordError(ValueError):
    """A staged document that is not a record of its kind: one line naming the record and why."""


@dataclass(frozen=True, kw_only=True)
class Record:
    """The JSON conversion the records share; subclasses declare their fields in key order."""

    _STATUSES: ClassVar[tuple[str, ...]] = ()
    _ALWAYS: ClassVar[frozenset[str]] = frozenset()

    # Keys the record does not model (a stage outcome's: what the stage's body added).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        status = getattr(self, "status", None)
        if status not in self._STATUSES:
            known = ", ".join(self._STATUSES)
            raise RecordError(f"{type(self).__name__}: unknown status {status!r} (one of {known})")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is not None or f.name in self._ALWAYS:
                document[f.name] = list(value) if isinstance(value, tuple) else value
        for key, value in self.extra.items():
            document.setdefault(key, value)
        return document

    @classmethod
    def from_json(cls: type[R], document: Mapping[str, Any]) -> R:
        if not isinstance(document, Mapping):
            raise RecordError(f"{cls.__name__}: not a JSON object: {type(document).__name__}")
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing := [n for n in required if n not in document]:
            raise RecordError(f"{cls.__name__}: missing key(s) {', '.join(missing)}")
        known = {n: _held(document[n]) for n in names if n in document}
        extra = {k: v for k, v in document.items() if k not in known}
        return cls(**known, extra=extra)


def _held(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, kw_only=True)
class StageOutcome(Record):
    """How one stage task ended (``stages/<stage>[/<part>].json``): ``ok``; ``failed`` with a
    one-line error; ``skipped`` when an upstream stage did not finish."""

    _STATUSES: ClassVar[tuple[str, ...]] = get_args(StageStatus)
    _ALWAYS: ClassVar[frozenset[str]] = frozenset({"part", "error"})

    stage: str
    part: str | None = None  # a mapped stage's part (a synthesize task's batch), else None
    status: StageStatus
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class VoiceRecord(Record):
    """One voice's ingest outcome (``voices/<voice>.json``): ``ok`` with its registered clip,
    or ``error`` with the reason (none when the task was interrupted before it knew one)."""

    _STATUSES: ClassVar[tuple[str, ...]] = get_args(VoiceStatus)

    voice: str
    status: VoiceStatus
    clip_hash: str | None = None
    registry: str | None = None  # the registered clip's prefix (voices/<voice>/<clip_hash>/)
    start: float | None = None  # the reference clip's window in the recording, in seconds
    end: float | None = None
    text: str | None = None  # the reference clip's text
    warnings: tuple[str, ...] | None = None
    reused: bool | None = None  # already registered by an earlier run
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> dict[str, Any]:
        """What the ingest task returns (its XCom): the voice, its status and clip."""
        return {"voice": self.voice, "status": self.status, "clip_hash": self.clip_hash}


@dataclass(frozen=True, kw_only=True)
class PlanEntry(Record):
    """One script's (or book's) entry in ``plan.json``: ``pending`` with what synthesize and
    publish need, ``skipped`` when its output is already published, ``failed`` with why. A
    book (``kind="book"``) carries its sections, each a section and its own plan entry."""

    _STATUSES: ClassVar[tuple[str, ...]] = get_args(PlanStatus)

    id: str
    kind: Literal["book"] | None = None  # None: a script
    status: PlanStatus
    output_hash: str | None = None
    source: str | None = None
    speed: float | None = None
    voice: str | None = None  # a book's narrator
    options: Mapping[str, Any] | None = None  # a book's options (BookOptions)
    book: Mapping[str, Any] | None = None  # a book's contents, as books.records writes them
    parts: tuple[dict[str, Any], ...] | None = None  # a script's ScriptParts
    cues: tuple[list[Any], ...] | None = None  # a timed script's cues: [start, end, text, speaker]
    chunks: tuple[dict[str, Any], ...] | None = None
    requests: tuple[dict[str, Any], ...] | None = None  # its ChunkRequests
    sections: tuple[dict[str, Any], ...] | None = None  # a book's: {"section": ..., "plan": ...}
    error: str | None = None

    @property
    def is_book(self) -> bool:
        return self.kind == "book"

    def section_entries(self) -> list[PlanEntry]:
        """A book's sections' own plan entries, in order."""
        return [PlanEntry.from_json(s["plan"]) for s in self.sections or ()]

    def chunk_count(self) -> int:
        if self.requests is not None:
            return len(self.requests)
        return sum(len(s.requests or ()) for s in self.section_entries())


@dataclass(frozen=True, kw_only=True)
class PublishOutcome(Record):
    """What publish did with one planned script or book (``outcomes.json``): ``published``
    with its keys, ``skipped`` (already published), ``failed`` with why, or ``held`` back with
    the chunks that never passed verification (``qa``, also on a published one: to review)."""

    _STATUSES: ClassVar[tuple[str, ...]] = get_args(OutcomeStatus)
    _ALWAYS: ClassVar[frozenset[str]] = frozenset({"output_hash", "error"})

    id: str
    kind: Literal["book"] | None = None
    status: OutcomeStatus
    output_hash: str | None = None
    error: str | None = None
    keys: tuple[str, ...] | None = None  # what was published, the manifest last
    qa: tuple[dict[str, Any], ...] | None = None  # quarantined chunks, each with its takes
    acx: Mapping[str, Any] | None = None  # a book's ACX summary: required, passed, failed

    @property
    def manifest_key(self) -> str | None:
        """The published manifest, for an output this run published or found published."""
        if self.status not in ("published", "skipped"):
            return None
        return output_prefix(self.id, str(self.output_hash)) + "manifest.json"


def unpublished(entry: PlanEntry, error: str | None = None) -> PublishOutcome:
    """The outcome of a planned script that publish did not publish: skipped (already
    published) or failed as planned, or failed when it was pending (``error``, unless the
    entry says why)."""
    status: OutcomeStatus = "failed" if entry.status == "pending" else entry.status
    return PublishOutcome(id=entry.id, status=status, output_hash=entry.output_hash, error=entry.error or error)


def count(records: Iterable[Record], *statuses: str) -> dict[str, int]:
    """How many of ``records`` have each status, in the order asked."""
    listed = list(records)
    return {s: sum(getattr(r, "status", None) == s for r in listed) for s in statuses}
