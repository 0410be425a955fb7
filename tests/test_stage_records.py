"""The records the run's stages hand each other (voicebatch.run.records): a record survives its
JSON, the JSON the stages wrote as plain dicts reads back to the same document (same keys, same
order: the same bytes once written), and a status no stage writes is refused in one line.

The sample documents here are written out by hand, in the shapes (and key order) the stages
wrote before there were records, not made by the code under test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebatch.run.records import PlanEntry, PublishOutcome, Record, RecordError, StageOutcome, VoiceRecord

HASH = "ab" * 32
text = st.text(max_size=12)
maybe_text = st.none() | text
number = st.floats(allow_nan=False, allow_infinity=False, width=32)
json_leaf = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | number | text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_object = st.dictionaries(text, json_value, max_size=3)
objects = st.none() | st.lists(json_object, max_size=3).map(tuple)


def extra_for(record: type[Record]) -> st.SearchStrategy[dict[str, Any]]:
    """Keys the record does not model (a newer stage's), with any JSON value."""
    names = set(record.__dataclass_fields__)
    return st.dictionaries(text.filter(lambda k: k not in names), json_value, max_size=2)


def shaped(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict[str, Any]]:
    """A document with these keys in this order (the order a stage wrote them in)."""
    return st.fixed_dictionaries(fields).map(lambda d: {k: d[k] for k in fields})


stage_outcomes = st.builds(
    StageOutcome,
    stage=text,
    part=maybe_text,
    status=st.sampled_from(["ok", "failed", "skipped"]),
    error=maybe_text,
    extra=extra_for(StageOutcome),
)
voice_records = st.builds(
    VoiceRecord,
    voice=text,
    status=st.sampled_from(["ok", "error"]),
    clip_hash=maybe_text,
    registry=maybe_text,
    start=st.none() | number,
    end=st.none() | number,
    text=maybe_text,
    warnings=st.none() | st.lists(text, max_size=2).map(tuple),
    reused=st.none() | st.booleans(),
    reason=maybe_text,
    extra=extra_for(VoiceRecord),
)
plan_entries = st.builds(
    PlanEntry,
    id=text,
    kind=st.sampled_from([None, "book"]),
    status=st.sampled_from(["pending", "skipped", "failed"]),
    output_hash=maybe_text,
    source=maybe_text,
    speed=st.none() | number,
    voice=maybe_text,
    options=st.none() | json_object,
    book=st.none() | json_object,
    parts=objects,
    cues=st.none() | st.lists(st.lists(json_leaf, max_size=4), max_size=2).map(tuple),
    chunks=objects,
    requests=objects,
    sections=objects,
    error=maybe_text,
    extra=extra_for(PlanEntry),
)
publish_outcomes = st.builds(
    PublishOutcome,
    id=text,
    kind=st.sampled_from([None, "book"]),
    status=st.sampled_from(["published", "skipped", "failed", "held"]),
    output_hash=maybe_text,
    error=maybe_text,
    keys=st.none() | st.lists(text, max_size=3).map(tuple),
    qa=objects,
    acx=st.none() | json_object,
    extra=extra_for(PublishOutcome),
)


@given(st.one_of(stage_outcomes, voice_records, plan_entries, publish_outcomes))
def test_a_record_survives_its_json(record: Record) -> None:
    written = json.loads(json.dumps(record.to_json()))  # through the bytes, as staging holds it
    assert type(record).from_json(written) == record


# The documents as the stages wrote them: keys in the order they were written.
@given(
    st.one_of(
        shaped(
            {"stage": text, "part": maybe_text, "status": st.sampled_from(["ok", "failed"]), "error": maybe_text}
        ).map(lambda d: (StageOutcome, d)),
        shaped(
            {"voice": text, "status": st.just("error"), "reason": text}  # a voice that failed
        ).map(lambda d: (VoiceRecord, d)),
        shaped(
            {"id": text, "status": st.just("failed"), "error": text}  # a script refused at planning
        ).map(lambda d: (PlanEntry, d)),
        shaped({"id": text, "kind": st.just("book"), "status": st.just("failed"), "error": text}).map(
            lambda d: (PlanEntry, d)
        ),
        shaped(
            {  # what publish wrote for an entry it had nothing to do for: nulls and all
                "id": text,
                "status": st.sampled_from(["skipped", "failed"]),
                "output_hash": maybe_text,
                "error": maybe_text,
            }
        ).map(lambda d: (PublishOutcome, d)),
        shaped(
            {
                "id": text,
                "status": st.sampled_from(["published", "skipped"]),
                "output_hash": text,
                "error": st.none(),
                "keys": st.lists(text, max_size=3),
                "qa": st.lists(json_object, max_size=2),
            }
        ).map(lambda d: (PublishOutcome, d)),
    )
)
def test_what_the_stages_wrote_reads_back_to_the_same_document(sample: tuple[type[Record], dict]) -> None:
    kind, document = sample
    assert json.dumps(kind.from_json(document).to_json()) == json.dumps(document)  # same keys, same order


VOICE_OK = {
    "voice": "anna",
    "status": "ok",
    "clip_hash": HASH,
    "registry": f"voices/anna/{HASH}/",
    "start": 0.5,
    "end": 6.5,
    "text": "The first sentence. The second one, longer.",
    "warnings": [],
    "reused": False,
}
PLAN_PENDING = {
    "id": "hello",
    "status": "pending",
    "output_hash": HASH,
    "source": "/in/scripts/hello.txt",
    "speed": 1.0,
    "parts": [{"voice": "anna", "text": "Hello there."}],
    "cues": [],
    "chunks": [{"index": 0, "voice": "anna", "text": "Hello there.", "sentences": ["Hello there."]}],
    "requests": [{"key": "k0", "voice": "anna", "text": "Hello there.", "speed": 1.0, "seed": 7}],
}
PLAN_BOOK = {
    "id": "book",
    "kind": "book",
    "status": "skipped",
    "output_hash": HASH,
    "source": "/in/scripts/book.epub",
    "voice": "anna",
    "options": {"master": "acx", "formats": ["mp3"], "narrator": ""},
    "book": {"title": "A Book", "source": "/in/scripts/book.epub"},
    "sections": [{"section": {"name": "chapter-001"}, "plan": PLAN_PENDING}],
}
HELD = {
    "id": "hello",
    "status": "held",
    "output_hash": HASH,
    "error": "held back: 1 chunk(s) never passed verification (publish_unverified is off)",
    "qa": [{"index": 0, "key": "k0", "text": "Hello there.", "kept_take": 1, "takes": [{"take": 1}]}],
}
BOOK_PUBLISHED = {
    "id": "book",
    "kind": "book",
    "status": "published",
    "output_hash": HASH,
    "error": None,
    "keys": [f"audio/book/{HASH}/chapter-001.mp3", f"audio/book/{HASH}/manifest.json"],
    "qa": [],
    "acx": {"required": True, "passed": 1, "failed": 0},
}
STAGE_SKIPPED = {
    "stage": "publish",
    "part": None,
    "status": "skipped",
    "error": "plan did not finish: nothing to publish",
}


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        (VoiceRecord, VOICE_OK),
        (VoiceRecord, {"voice": "ben", "status": "error"}),  # interrupted before it knew why
        (PlanEntry, PLAN_PENDING),
        (PlanEntry, PLAN_BOOK),
        (PublishOutcome, HELD),
        (PublishOutcome, BOOK_PUBLISHED),
        (StageOutcome, STAGE_SKIPPED),
        (StageOutcome, {**STAGE_SKIPPED, "status": "ok", "error": None, "batches": 3}),  # a body's own field
    ],
)
def test_each_staged_shape_is_written_back_byte_for_byte(kind: type[Record], document: dict) -> None:
    assert json.dumps(kind.from_json(document).to_json(), indent=2) == json.dumps(document, indent=2)


def test_records_are_read_by_attribute() -> None:
    entry = PlanEntry.from_json(PLAN_BOOK)
    assert entry.is_book and entry.status == "skipped" and entry.section_entries()[0].requests[0]["key"] == "k0"
    assert entry.chunk_count() == 1 and PlanEntry.from_json(PLAN_PENDING).chunk_count() == 1
    held = PublishOutcome.from_json(HELD)
    assert held.qa[0]["kept_take"] == 1 and held.manifest_key is None
    assert PublishOutcome.from_json(BOOK_PUBLISHED).manifest_key == f"audio/book/{HASH}/manifest.json"
    voice = VoiceRecord.from_json(VOICE_OK)
    assert voice.ok and voice.warnings == () and voice.summary() == {"voice": "anna", "status": "ok", "clip_hash": HASH}


def test_a_key_a_record_does_not_model_is_kept() -> None:
    document = {**PLAN_PENDING, "priority": "high"}
    entry = PlanEntry.from_json(document)
    assert entry.extra == {"priority": "high"} and entry.to_json() == document


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        (StageOutcome, {"stage": "plan", "part": None, "status": "done", "error": None}),
        (VoiceRecord, {"voice": "anna", "status": "done"}),
        (PlanEntry, {"id": "hello", "status": "done"}),
        (PublishOutcome, {"id": "hello", "status": "done", "output_hash": None, "error": None}),
    ],
)
def test_an_unknown_status_is_refused_in_one_line(kind: type[Record], document: dict) -> None:
    with pytest.raises(RecordError) as refused:
        kind.from_json(document)
    message = str(refused.value)
    assert message.startswith(f"{kind.__name__}: unknown status 'done'") and "\n" not in message


def test_a_record_is_refused_on_construction_too() -> None:
    with pytest.raises(
        RecordError, match=r"^PlanEntry: unknown status 'published' \(one of pending, skipped, failed\)$"
    ):
        PlanEntry(id="hello", status="published")  # type: ignore[arg-type]


def test_a_document_without_a_required_key_is_refused_in_one_line() -> None:
    with pytest.raises(RecordError, match=r"^VoiceRecord: missing key\(s\) status$"):
        VoiceRecord.from_json({"voice": "anna"})
