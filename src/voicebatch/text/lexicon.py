"""Pronunciation lexicon: word -> respelling, applied to the spoken form only.

Two formats:

- CSV (UTF-8): columns ``word, respelling[, voice]`` (also ``grapheme``/``alias``); a
  ``voice`` value limits the entry to that voice and overrides a project entry for it;
- PLS, the W3C Pronunciation Lexicon (what Polly accepts): ``<lexeme>`` with one or more
  ``<grapheme>`` and an ``<alias>``. ``<phoneme>`` entries cannot be used (F5-TTS reads
  letters, not phonemes) and are reported.

A location is a file, or a folder holding ``lexicon.csv``/``lexicon.pls`` (every voice)
and ``<voice>.csv``/``<voice>.pls`` (overrides for one voice).

Matching: whole words only (never inside a longer word); an entry written in lower case
matches any case ("sql" matches "SQL" and "Sql"), one with capitals matches only that
case ("US" leaves "us" alone); the longest entry wins where entries overlap. Text in
Chinese or Japanese script has no spaces, so such entries match anywhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicebatch.errors import InputError

PLS_NAMESPACE = "http://www.w3.org/2005/01/pronunciation-lexicon"
_WORD_COLUMNS = ("word", "grapheme", "term", "text")
_SPOKEN_COLUMNS = ("respelling", "alias", "say", "spoken", "pronunciation")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


class LexiconError(InputError):
    """A lexicon file that cannot be used."""


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    word: str
    respelling: str
    voice: str | None = None  # None: every voice

    @property
    def case_sensitive(self) -> bool:
        return self.word != self.word.lower()


@dataclass(frozen=True, slots=True)
class Lexicon:
    entries: tuple[LexiconEntry, ...]
    sha256: str  # of the file bytes (all files, in name order, for a folder)
    source: str = ""
    _patterns: dict = field(default_factory=dict, compare=False, repr=False)

    def for_voice(self, voice: str | None) -> tuple[LexiconEntry, ...]:
        """The entries that apply to ``voice``: its own, then the project's it does not override."""
        own = [e for e in self.entries if e.voice is not None and e.voice == voice]
        overridden = {e.word.lower() for e in own}
        return (*own, *(e for e in self.entries if e.voice is None and e.word.lower() not in overridden))

    def apply(self, text: str, voice: str | None = None) -> tuple[str, tuple[LexiconEntry, ...]]:
        """``text`` with every entry's word replaced by its respelling, and the entries used."""
        entries = self.for_voice(voice)
        if not entries:
            return text, ()
        pattern = self._compiled(voice, entries)
        used: dict[LexiconEntry, None] = {}

        def replace(match: re.Match[str]) -> str:
            entry = entries[int(match.lastgroup[1:])]  # type: ignore[index]
            used[entry] = None
            return entry.respelling

        return pattern.sub(replace, text), tuple(used)

    def _compiled(self, voice: str | None, entries: tuple[LexiconEntry, ...]) -> re.Pattern[str]:
        if voice not in self._patterns:
            alternatives = []
            # Longest first, so "New York City" wins over "New York"; one named group per entry.
            for index in sorted(range(len(entries)), key=lambda i: -len(entries[i].word)):
                entry = entries[index]
                body = r"\s+".join(re.escape(part) for part in entry.word.split())
                if not entry.case_sensitive:
                    body = f"(?i:{body})"
                if not _CJK.search(entry.word):
                    body = rf"(?<![\w']){body}(?!\w)"
                alternatives.append(f"(?P<e{index}>{body})")
            self._patterns[voice] = re.compile("|".join(alternatives))
        return self._patterns[voice]

    def as_json(self) -> dict:
        return {"uri": self.source, "sha256": self.sha256, "entries": len(self.entries)}


def _key(entry: LexiconEntry) -> str:
    return entry.word if entry.case_sensitive else entry.word.lower()


EMPTY_LEXICON = Lexicon((), hashlib.sha256(b"").hexdigest())


def load_lexicon(location: str | Path) -> Lexicon:
    """A lexicon file (``.csv`` or ``.pls``/``.xml``) or a folder of them."""
    path = Path(location)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".pls", ".xml"))
        if not files:
            raise LexiconError(path, "no lexicon files (.csv or .pls) in this folder")
        entries: list[LexiconEntry] = []
        digest = hashlib.sha256()
        for file in files:
            voice = None if file.stem.lower() == "lexicon" else file.stem
            data = file.read_bytes()
            digest.update(file.name.encode() + b"\0" + data)
            entries += [e if e.voice else LexiconEntry(e.word, e.respelling, voice) for e in _parse(file, data)]
        return Lexicon(tuple(entries), digest.hexdigest(), str(path))
    if not path.is_file():
        raise LexiconError(path, "no such lexicon file")
    data = path.read_bytes()
    return Lexicon(tuple(_parse(path, data)), hashlib.sha256(data).hexdigest(), str(path))


def read_lexicon(uri: str, open_uri: Callable[[str], Any]) -> Lexicon:
    """A lexicon from a local path or an ``s3://`` URI (a file, or a folder of them);
    ``open_uri`` turns a URI into a Storage (the Airflow layer builds S3 from a connection)."""
    if not uri.startswith("s3://"):
        return load_lexicon(uri[len("file://") :] if uri.startswith("file://") else uri)
    storage = open_uri(uri)
    keys = [k for k in storage.list("") if k.lower().endswith((".csv", ".pls", ".xml")) and "/" not in k]
    if keys:  # a folder: lexicon.* for every voice, <voice>.* for one
        entries: list[LexiconEntry] = []
        digest = hashlib.sha256()
        for key in sorted(keys):
            data = storage.get_bytes(key)
            digest.update(key.encode() + b"\0" + data)
            voice = None if Path(key).stem.lower() == "lexicon" else Path(key).stem
            entries += [e if e.voice else LexiconEntry(e.word, e.respelling, voice) for e in _parse(Path(key), data)]
        return Lexicon(tuple(entries), digest.hexdigest(), uri)
    parent, _, name = uri.rstrip("/").rpartition("/")
    try:
        data = open_uri(parent).get_bytes(name)
    except Exception as e:  # a missing object: one line naming it
        raise LexiconError(uri, f"cannot read the lexicon: {type(e).__name__}: {e}") from e
    return Lexicon(tuple(_parse(Path(name), data)), hashlib.sha256(data).hexdigest(), uri)


def parse_lexicon(name: str, data: bytes) -> Lexicon:
    """A lexicon from bytes (``name`` decides the format by its suffix)."""
    return Lexicon(tuple(_parse(Path(name), data)), hashlib.sha256(data).hexdigest(), name)


def _parse(path: Path, data: bytes) -> list[LexiconEntry]:
    if path.suffix.lower() == ".csv":
        entries = _csv(path, data)
    elif path.suffix.lower() in (".pls", ".xml"):
        entries = _pls(path, data)
    else:
        raise LexiconError(path, "a lexicon is a .csv or a .pls (W3C pronunciation lexicon) file")
    if not entries:
        raise LexiconError(path, "no entries")
    return entries


def _csv(path: Path, data: bytes) -> list[LexiconEntry]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LexiconError(path, f"not UTF-8 text (byte {e.start})") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    word = _column(header, _WORD_COLUMNS)
    spoken = _column(header, _SPOKEN_COLUMNS)
    if word is None or spoken is None:
        # The header's own cells are not quoted: a message never carries a file's content.
        raise LexiconError(
            path,
            f"needs columns word, respelling[, voice] in a header row; its {len(header)} columns do not name both",
            where="row 1",
        )
    voice = header.index("voice") if "voice" in header else None
    entries: list[LexiconEntry] = []
    seen: dict[tuple[str, str | None], int] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [*row, *[""] * len(header)]
        grapheme, respelling = " ".join(cells[word].split()), " ".join(cells[spoken].split())
        if not grapheme or not respelling:
            raise LexiconError(path, "empty word or respelling", where=f"row {number}")
        entry = LexiconEntry(grapheme, respelling, (cells[voice].strip() or None) if voice is not None else None)
        _no_duplicate(path, entry, seen, f"row {number}")
        seen[(_key(entry), entry.voice)] = number
        entries.append(entry)
    return entries


def _column(header: list[str], names: Iterable[str]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def _no_duplicate(path: Path, entry: LexiconEntry, seen: Mapping[tuple[str, str | None], int], where: str) -> None:
    if (_key(entry), entry.voice) in seen:
        first = seen[(_key(entry), entry.voice)]
        unit = where.split(" ", 1)[0]  # row (CSV) or lexeme (PLS)
        raise LexiconError(path, f"the same word as {unit} {first}: keep one", where=where)


def _pls(path: Path, data: bytes) -> list[LexiconEntry]:
    from xml.etree import ElementTree

    try:
        # expat resolves no external entities and limits entity expansion (billion laughs).
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise LexiconError(path, f"not valid XML: {e}", where=f"line {e.position[0]}") from None
    ns = {"pls": PLS_NAMESPACE}
    if root.tag not in (f"{{{PLS_NAMESPACE}}}lexicon", "lexicon"):
        raise LexiconError(path, "not a pronunciation lexicon (the root element must be <lexicon>)")
    prefix = "pls:" if root.tag.startswith("{") else ""
    entries: list[LexiconEntry] = []
    seen: dict[tuple[str, str | None], int] = {}
    for number, lexeme in enumerate(root.findall(f"{prefix}lexeme", ns), start=1):
        graphemes = [" ".join((g.text or "").split()) for g in lexeme.findall(f"{prefix}grapheme", ns)]
        aliases = [" ".join((a.text or "").split()) for a in lexeme.findall(f"{prefix}alias", ns)]
        where = f"lexeme {number}"
        if not any(graphemes):
            raise LexiconError(path, "a lexeme without a <grapheme>", where=where)
        if not any(aliases):
            kind = "only a <phoneme>" if lexeme.find(f"{prefix}phoneme", ns) is not None else "no <alias>"
            raise LexiconError(
                path, f"the lexeme has {kind}: F5-TTS reads letters, so give an <alias> respelling", where=where
            )
        for grapheme in filter(None, graphemes):
            entry = LexiconEntry(grapheme, aliases[0])
            _no_duplicate(path, entry, seen, where)
            seen[(_key(entry), None)] = number
            entries.append(entry)
    return entries
