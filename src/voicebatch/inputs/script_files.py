"""Reading script files: text and Markdown (front matter, Markdown reduced to its text), JSON Lines
and CSV (one script per line or row, each failing alone, named by file and line), and documents
(Word, HTML, SSML), into raw scripts for checking.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import ScriptError
from voicebatch.inputs.documents import DOCUMENT_SUFFIXES
from voicebatch.inputs.timed_scripts import TIMED_SUFFIXES

if TYPE_CHECKING:
    from voicebatch.inputs.transcripts import Segment

# A Markdown link or image: [text](url "title"); a URL may hold balanced parentheses
# (https://en.wikipedia.org/wiki/Mercury_(planet)) and may sit in angle brackets.
_LINK = re.compile(r"!?\[([^\]]*)\]\((?:<[^>]*>|[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")


QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'"})


@dataclass(frozen=True, slots=True)
class RawScript:
    id: str
    source: str
    where: str | None
    text: str
    voice: str | None
    speed: object
    line_offset: int = 0  # line of the file where ``text`` starts, minus one
    paragraphs: bool = False  # a document's text (one line per paragraph): errors name the paragraph
    warnings: tuple[str, ...] = ()
    cues: tuple[Segment, ...] = ()  # a timed script (one line a cue): errors name the cue


def read_script_file(path: Path) -> list[RawScript | ScriptError]:
    """The raw scripts of a file; a bad line or row is its own ``ScriptError`` in the list,
    a problem with the whole file (encoding, header) raises."""
    if path.suffix.lower() in DOCUMENT_SUFFIXES:
        return [_document_raw(path)]
    if path.suffix.lower() in TIMED_SUFFIXES:  # read by the transcript readers (their encodings too)
        from voicebatch.inputs.timed_scripts import cue_lines, read_cues

        cues = read_cues(path)
        return [RawScript(path.stem, str(path), None, cue_lines(cues), None, 1.0, cues=cues)]
    try:
        data = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ScriptError(path, f"not UTF-8 text (byte {e.start}): save the script as UTF-8") from None
    data = data.replace("\r\n", "\n").replace("\r", "\n")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_scripts(path, data)
    if suffix == ".csv":
        return _csv_scripts(path, data)
    return [_text_script(path, data)]


def _document_raw(path: Path) -> RawScript:
    from voicebatch.inputs.documents import read_document

    document = read_document(path)
    return RawScript(
        path.stem,
        str(path),
        None,
        document.text,
        document.voice,
        document.speed,
        paragraphs=True,
        warnings=document.warnings,
    )


def _text_script(path: Path, data: str) -> RawScript:
    meta: dict = {}
    offset = 0
    if data.startswith("---\n"):
        close = data.find("\n---", 4)
        if close < 0:
            raise ScriptError(path, "front matter opened with '---' is never closed", where="line 1")
        meta, offset = _front_matter(path, data[4:close]), data[: close + 4].count("\n") + 1
        data = data[close + 4 :].split("\n", 1)[1] if "\n" in data[close + 4 :] else ""
    if path.suffix.lower() == ".md":
        data = _markdown_to_text(data)
    return RawScript(path.stem, str(path), None, data, meta.get("voice"), meta.get("speed", 1.0), offset)


def _front_matter(path: Path, block: str) -> dict:
    import yaml

    try:
        meta = yaml.safe_load(block) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", 0) + 2
        # PyYAML's own message quotes the line; its short "problem" does not.
        problem = getattr(e, "problem", None) or "unreadable"
        raise ScriptError(path, f"front matter is not valid YAML: {problem}", where=f"line {line}") from None
    if not isinstance(meta, dict):
        raise ScriptError(path, "front matter must be 'key: value' lines", where="line 2")
    unknown = set(meta) - {"voice", "speed", "title"}
    if unknown:
        lines = block.split("\n")
        line = next((n for n, text in enumerate(lines, start=2) if text.split(":", 1)[0].strip() in unknown), 2)
        raise ScriptError(path, "unknown front matter key: use voice, speed, title", where=f"line {line}")
    return meta


def _markdown_to_text(data: str) -> str:
    lines = []
    for line in data.split("\n"):
        stripped = line.strip()
        heading = re.match(r"^#{1,6}\s+(.*)$", stripped)
        stripped = re.sub(r"^(?:>\s*|[-*+]\s+|\d+[.)]\s+)", "", heading.group(1) if heading else stripped)
        stripped = _LINK.sub(r"\1", stripped)  # links and images: their text
        stripped = re.sub(r"(\*\*|__|\*|`)", "", stripped)
        if heading and stripped and stripped[-1] not in ".!?:":
            stripped += "."  # a heading is a sentence of its own
        lines.append(stripped)
    return "\n".join(lines)


def _jsonl_scripts(path: Path, data: str) -> list[RawScript | ScriptError]:
    rows: list[RawScript | ScriptError] = []
    for number, line in enumerate(data.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"item {number}"
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ScriptError(path, "expected an object with id, voice, text", where=where)
            rows.append(_row_raw(path, row, where))
        except json.JSONDecodeError as e:
            rows.append(ScriptError(path, f"not valid JSON: {e.msg} (column {e.colno})", where=where))
        except ScriptError as e:
            rows.append(e)
    return rows


def _csv_scripts(path: Path, data: str) -> list[RawScript | ScriptError]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(data))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as e:
        raise ScriptError(path, f"not a readable CSV: {e}", where="row 1") from None
    if "text" not in header or "id" not in header:
        # The header's own cells are not quoted: a message never carries a file's content.
        raise ScriptError(
            path,
            f"a scripts CSV needs a header row naming id, voice, text[, speed]; its {len(header)} columns do not",
            where="row 1",
        )
    rows: list[RawScript | ScriptError] = []
    number = 1
    try:
        for number, row in enumerate(reader, start=2):
            try:
                rows.append(_row_raw(path, {k.strip().lower(): v for k, v in row.items() if k}, f"row {number}"))
            except ScriptError as e:
                rows.append(e)
    except csv.Error as e:  # the reader cannot go on past this row; the rows before it stand
        rows.append(ScriptError(path, f"not readable as CSV: {e}", where=f"row {number + 1}"))
    return rows


def _row_raw(path: Path, row: dict, where: str) -> RawScript:
    for key in ("id", "text"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ScriptError(path, f"missing {key!r}", where=where)
    voice = row.get("voice") or None
    return RawScript(row["id"].strip(), str(path), where, row["text"], voice, row.get("speed") or 1.0)
