"""QA records as publishing and the report read them (plain JSON, no models loaded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicebatch.verify.settings import VerifySettings


def word_times(sentences: Sequence[str], record: Mapping | None) -> list | None:
    """The chunk's measured word times (per written word) from its QA record, or None."""
    if not record or not record.get("alignment"):
        return None
    from voicebatch.verify.check import written_word_times
    from voicebatch.verify.takes import alignment_from_json

    return written_word_times(sentences, alignment_from_json(record["alignment"]), record.get("language") or "en")


def script_qa(
    records: Sequence[Mapping | None], settings: VerifySettings, verification: Mapping[str, object] | None
) -> dict:
    """The manifest's ``qa`` section: per-script counts, needs_review, settings and models."""
    checked = [r for r in records if r]
    statuses = [r["status"] for r in checked]
    quarantined = [i for i, r in enumerate(records) if r and r["status"] == "quarantined"]
    retakes = sum(len(r["takes"]) - 1 for r in checked)
    if not checked:
        status = "unverified"
    elif quarantined:
        status = "needs_review"
    elif all(s == "passed" for s in statuses):
        status = "verified"
    else:
        status = "partly_checked"  # some chunks not checked (language, mode), none failed
    return {
        "status": status,
        "needs_review": bool(quarantined),
        "chunks": len(records),
        "passed": statuses.count("passed"),
        "quarantined": len(quarantined),
        "not_checked": len(records) - statuses.count("passed") - len(quarantined),
        "quarantined_chunks": quarantined,
        "retakes": retakes,
        "aligned_chunks": sum(bool(r.get("alignment")) for r in checked),
        "settings": {**asdict(settings), **({"effective_mode": verification.get("mode")} if verification else {})},
        "models": dict(verification.get("models", {})) if verification else {},
        "notes": sorted({n for r in checked for n in r.get("notes", [])} | set((verification or {}).get("notes", []))),
    }
