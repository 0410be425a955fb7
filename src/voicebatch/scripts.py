"""Scripts (the text to speak) from a directory, validated, then split into chunks.

- ``.txt`` / ``.md``: one script per file, id = file stem, optional YAML front matter
  (``voice:``, ``speed:``) between ``---`` lines;
- ``.jsonl``: one script per line: ``{"id", "voice", "text", "speed"?}``;
- ``.csv``: one script per row, columns ``id, voice, text[, speed]``.

``[voice]`` tags switch voice mid-script, as F5-TTS's own CLI does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.chunking import Chunk, join_sentences, max_chunk_bytes, pack_sentences
from voicebatch.errors import ScriptError
from voicebatch.names import key_name_problem

if TYPE_CHECKING:
    from voicebatch.vocab import Vocabulary

_Fail = Callable[..., ScriptError]  # builds the one-line error for the script at hand

SCRIPT_SUFFIXES = (".txt", ".md", ".jsonl", ".csv")
# A whole book is one script (issue 11): about 90 hours of narration. The cap only stops a
# runaway input (a mis-saved binary, a concatenated corpus) before it is chunked.
MAX_SCRIPT_CHARS = 5_000_000
MIN_SPEED, MAX_SPEED = 0.5, 2.0
_TAG = re.compile(r"\[([A-Za-z0-9][A-Za-z0-9._-]*)\]")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'"})


@dataclass(frozen=True, slots=True)
class ScriptPart:
    voice: str
    text: str


@dataclass(frozen=True, slots=True)
class Script:
    id: str
    source: str  # file it came from (and item / row)
    parts: tuple[ScriptPart, ...]
    speed: float = 1.0

    @property
    def voices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.voice for p in self.parts))

    @property
    def text(self) -> str:
        """The script as written, voice tags included: what the cache key hashes."""
        return " ".join(f"[{p.voice}] {p.text}" for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Raw:
    id: str
    source: str
    where: str | None
    text: str
    voice: str | None
    speed: object
    line_offset: int = 0  # line of the file where ``text`` starts, minus one


def load_scripts(
    directory: str | Path,
    voices: Iterable[str] | None = None,
    vocab: Vocabulary | None = None,
    max_chars: int = MAX_SCRIPT_CHARS,
) -> tuple[list[Script], list[ScriptError]]:
    """Every script of a directory; a bad script is reported and never stops the others."""
    root = Path(directory)
    if not root.is_dir():
        raise ScriptError(root, "not a directory of scripts")
    known = set(voices) if voices is not None else None
    scripts: list[Script] = []
    problems: list[ScriptError] = []
    seen: dict[str, str] = {}
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SCRIPT_SUFFIXES):
        try:
            raws = list(_read_file(path))
        except ScriptError as e:
            problems.append(e)
            continue
        for raw in raws:
            if isinstance(raw, ScriptError):  # one bad line or row of a .jsonl / .csv: the others go on
                problems.append(raw)
                continue
            try:
                script = _validate(raw, known, vocab, max_chars)
                if script.id in seen:
                    raise ScriptError(
                        raw.source, f"script id {script.id!r} already used by {seen[script.id]}", where=raw.where
                    )
            except ScriptError as e:
                problems.append(e)
                continue
            seen[script.id] = raw.source
            scripts.append(script)
    return scripts, problems


def load_script_file(
    path: str | Path, voices: Iterable[str] | None = None, vocab: Vocabulary | None = None
) -> list[Script]:
    """The scripts of one file; raises ``ScriptError`` on the first problem."""
    known = set(voices) if voices is not None else None
    scripts = []
    for raw in _read_file(Path(path)):
        if isinstance(raw, ScriptError):
            raise raw
        scripts.append(_validate(raw, known, vocab, MAX_SCRIPT_CHARS))
    return scripts


def script_label(problem: ScriptError) -> str:
    """What a problem is about, as a name for tables and reports: the file, and the item or
    row when the file holds many scripts (``lines.jsonl item 3``)."""
    name = Path(problem.path).name
    return f"{name} {problem.where}" if problem.where and problem.where.startswith(("item", "row")) else name


def chunk_script(script: Script, references: Mapping[str, tuple[str, float]]) -> list[Chunk]:
    """Chunks of a script; ``references`` maps voice -> (reference text, reference seconds)."""
    chunks: list[Chunk] = []
    for part in script.parts:
        ref_text, ref_seconds = references[part.voice]
        limit = max_chunk_bytes(ref_text, ref_seconds, script.speed)
        for sentences in pack_sentences(part.text, limit):
            chunks.append(Chunk(script.id, len(chunks), part.voice, join_sentences(sentences), script.speed, sentences))
    return chunks


def normalise_text(text: str) -> str:
    """Straight quotes, single spaces; punctuation kept (it shapes F5's prosody)."""
    return " ".join(text.translate(_QUOTES).split())


def _read_file(path: Path) -> list[_Raw | ScriptError]:
    """The raw scripts of a file; a bad line or row is its own ``ScriptError`` in the list,
    a problem with the whole file (encoding, header) raises."""
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


def _text_script(path: Path, data: str) -> _Raw:
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
    return _Raw(path.stem, str(path), None, data, meta.get("voice"), meta.get("speed", 1.0), offset)


def _front_matter(path: Path, block: str) -> dict:
    import yaml

    try:
        meta = yaml.safe_load(block) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", 0) + 2
        raise ScriptError(
            path, f"front matter is not valid YAML: {getattr(e, 'problem', e)}", where=f"line {line}"
        ) from None
    if not isinstance(meta, dict):
        raise ScriptError(path, "front matter must be 'key: value' lines", where="line 2")
    unknown = sorted(set(meta) - {"voice", "speed", "title"})
    if unknown:
        raise ScriptError(
            path, f"unknown front matter key(s) {', '.join(unknown)}; use voice, speed, title", where="line 2"
        )
    return meta


def _markdown_to_text(data: str) -> str:
    lines = []
    for line in data.split("\n"):
        stripped = line.strip()
        heading = re.match(r"^#{1,6}\s+(.*)$", stripped)
        stripped = re.sub(r"^(?:>\s*|[-*+]\s+|\d+[.)]\s+)", "", heading.group(1) if heading else stripped)
        stripped = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", stripped)  # links and images: their text
        stripped = re.sub(r"(\*\*|__|\*|`)", "", stripped)
        if heading and stripped and stripped[-1] not in ".!?:":
            stripped += "."  # a heading is a sentence of its own
        lines.append(stripped)
    return "\n".join(lines)


def _jsonl_scripts(path: Path, data: str) -> list[_Raw | ScriptError]:
    rows: list[_Raw | ScriptError] = []
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


def _csv_scripts(path: Path, data: str) -> list[_Raw | ScriptError]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(data))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as e:
        raise ScriptError(path, f"not a readable CSV: {e}", where="row 1") from None
    if "text" not in header or "id" not in header:
        raise ScriptError(
            path, f"a scripts CSV needs columns id, voice, text[, speed]; found {', '.join(header)}", where="row 1"
        )
    rows: list[_Raw | ScriptError] = []
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


def _row_raw(path: Path, row: dict, where: str) -> _Raw:
    for key in ("id", "text"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ScriptError(path, f"missing {key!r}", where=where)
    voice = row.get("voice") or None
    return _Raw(row["id"].strip(), str(path), where, row["text"], voice, row.get("speed") or 1.0)


def _validate(raw: _Raw, known: set[str] | None, vocab: Vocabulary | None, max_chars: int) -> Script:
    def fail(message: str, line: int | None = None) -> ScriptError:
        where = raw.where or (f"line {line + raw.line_offset}" if line else None)
        return ScriptError(raw.source, message, where=where)

    if problem := key_name_problem(raw.id):
        raise fail(f"script id {raw.id!r} {problem}")
    if len(raw.text) > max_chars:
        raise fail(f"{len(raw.text):,} characters, over the limit of {max_chars:,}; split the script")
    speed = _speed(raw.speed)
    if speed is None:
        raise fail(f"speed {raw.speed!r} must be a number from {MIN_SPEED} to {MAX_SPEED}")
    if vocab is not None:
        for number, line in enumerate(raw.text.split("\n"), start=1):
            if missing := vocab.unsupported_characters(normalise_text(_TAG.sub(" ", line))):
                raise fail(f"characters the model cannot speak: {' '.join(missing)}", number)
    parts = _parts(raw, known, fail)
    if not parts:
        raise fail("no text to speak")
    return Script(raw.id, raw.source + (f" {raw.where}" if raw.where else ""), tuple(parts), speed)


def _parts(raw: _Raw, known: set[str] | None, fail: _Fail) -> list[ScriptPart]:
    voice = raw.voice
    if voice is not None and known is not None and voice not in known:
        raise fail(f"unknown voice {voice!r} (known: {', '.join(sorted(known)) or 'none'})")
    parts: list[ScriptPart] = []
    position = 0
    for tag in [*_TAG.finditer(raw.text), None]:
        end = tag.start() if tag else len(raw.text)
        text = normalise_text(raw.text[position:end])
        if text:
            if voice is None:
                voice = _only_voice(known, fail)
            parts.append(ScriptPart(voice, text))
        if tag is None:
            break
        voice, position = tag.group(1), tag.end()
        if known is not None and voice not in known:
            raise fail(
                f"unknown voice {voice!r} in tag [{voice}] (known: {', '.join(sorted(known)) or 'none'})",
                raw.text.count("\n", 0, tag.start()) + 1,
            )
    return parts


def _only_voice(known: set[str] | None, fail: _Fail) -> str:
    if known is not None and len(known) == 1:
        return next(iter(known))
    raise fail("no voice: set 'voice:' in front matter (or the voice column), or start with a [voice] tag")


def _speed(value: object) -> float | None:
    try:
        speed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return speed if MIN_SPEED <= speed <= MAX_SPEED else None
