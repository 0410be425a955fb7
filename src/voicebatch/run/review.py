"""Review of a run's quarantined chunks: what a reviewer is shown, and what their answer does.

After a run's report, every published script with a chunk that never passed verification is
listed for review (``review_items``, from the report: the chunk's text, what the recogniser
heard, the difference, the take's audio next to the report). The reviewer picks one action
(``ACTIONS``) for the chunks they name (all listed chunks when they name none; the others are
accepted); ``decide`` turns the answer into re-takes per output, ``apply_review`` runs them
(``voicebatch.run.retake``) and publishes each script's new output, which supersedes the old one.
Airflow's Human-in-the-loop task (plugins/voicebatch_review.py) asks; this module never
imports Airflow.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from voicebatch.errors import InputError
from voicebatch.run.retake import ChunkEdit, retake

log = logging.getLogger(__name__)

ACCEPT = "accept"
NEW_SEED = "re-take with a new seed"
EDIT_TEXT = "re-take with edited text"
DROP = "drop (silence of the same length)"
ACTIONS = (ACCEPT, NEW_SEED, EDIT_TEXT, DROP)
DEFAULT_ACTION = ACCEPT  # what a review that times out answers


def review_items(report: Mapping) -> list[dict]:
    """Each quarantined chunk of each published script of the run's report (``report.json``)."""
    items = []
    for row in report.get("scripts", []):
        if row.get("status") != "published" or not row.get("manifest_key"):
            continue
        for chunk in row.get("quarantined") or ():
            takes = {t["take"]: t for t in chunk.get("takes", [])}
            kept = takes.get(chunk.get("kept_take")) or next(iter(takes.values()), {})
            items.append(
                {
                    "name": f"{row['script_id']}#{chunk['index']}",
                    "script": row["script_id"],
                    "index": chunk["index"],
                    "manifest_key": row["manifest_key"],
                    "text": chunk.get("text", ""),
                    "transcript": kept.get("transcript"),
                    "diff": kept.get("diff") or [],
                    "cer": kept.get("cer"),
                    "audio_key": kept.get("audio_key"),
                }
            )
    return items


def review_body(items: Sequence[Mapping], file_url: Callable[[str], str]) -> str:
    """The review's text (Markdown): one section per chunk, with a link to hear its take."""
    lines = [
        f"{len(items)} chunk(s) never passed verification. Pick an action; name the chunks it is for in "
        "**Chunks** (`script#chunk`, separated by commas; empty: all of them). Chunks not named are accepted. "
        f"With no answer before the review times out, every chunk is accepted ({DEFAULT_ACTION}).",
        "",
    ]
    for item in items:
        heard = item["transcript"] if item["transcript"] is not None else "(not transcribed)"
        listen = f"[listen to the take]({file_url(item['audio_key'])})" if item.get("audio_key") else "(no audio)"
        cer = f", CER {item['cer']:.2f}" if item.get("cer") is not None else ""
        lines += [
            f"### `{item['name']}` {listen}",
            f"- text: {_plain(item['text'])}",
            f"- heard: {_plain(heard)}{cer}",
            f"- diff: {_diff(item['diff'])}",
            "",
        ]
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Text shown as text in Markdown (no links, emphasis or HTML from a script or a transcript)."""
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    return "".join(f"\\{c}" if c in "\\`*_[]()#!|<>" else c for c in escaped)


def _diff(diff: Iterable[Sequence[str]]) -> str:
    parts = [f"{op}: {_plain(expected or '')} → {_plain(heard or '')}" for op, expected, heard in diff]
    return "; ".join(parts) or "(none)"


def decide(items: Sequence[Mapping], chosen: Sequence[str], answer: Mapping[str, Any] | None) -> dict[str, list]:
    """manifest key -> the chunks to re-take (``ChunkEdit``), from the reviewer's answer: the
    chosen action, ``chunks`` (names; empty: all items), ``text`` (the edited text)."""
    action = chosen[0] if chosen else DEFAULT_ACTION
    if action not in ACTIONS:
        raise InputError("review", f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    answer = answer or {}
    by_name = {i["name"]: i for i in items}
    named = [n.strip() for n in str(answer.get("chunks") or "").split(",") if n.strip()]
    if unknown := [n for n in named if n not in by_name]:
        raise InputError("review", f"chunks {', '.join(unknown)} are not under review: use {', '.join(by_name)}")
    chosen_items = [by_name[n] for n in named] if named else list(items)
    text = str(answer.get("text") or "").strip()
    if action == EDIT_TEXT and (len(chosen_items) != 1 or not text):
        raise InputError("review", "re-take with edited text needs one chunk in Chunks and its new text in Text")
    edits: dict[str, list] = {}
    if action == ACCEPT:
        return edits
    for item in chosen_items:
        edit = ChunkEdit(item["index"], text=text if action == EDIT_TEXT else None, drop=action == DROP)
        edits.setdefault(item["manifest_key"], []).append(edit)
    return edits


def apply_review(output_uri: str, edits: Mapping[str, Sequence[ChunkEdit]], **options: Any) -> list[dict]:
    """Re-take and publish each output (``options``: ``retake``'s, e.g. engine, run, open_uri)."""
    results = []
    for manifest_key, chunks in edits.items():
        uri = f"{output_uri.rstrip('/')}/{manifest_key}"
        result = retake(uri, chunks, **options)
        log.info("%s: %s", manifest_key, result.as_json())
        results.append(result.as_json())
    return results
