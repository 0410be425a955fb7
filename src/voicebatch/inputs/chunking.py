"""Script text -> chunks that F5-TTS can speak in one pass.

F5-TTS sizes a chunk from its reference: it speaks ``ref_text_bytes / ref_seconds`` bytes
a second and generates at most about 22 s of audio including the reference, so a chunk
holds at most ``ref_text_bytes / ref_seconds * (22 - ref_seconds) * speed`` bytes of UTF-8
(``f5_tts.infer.utils_infer.infer_process``). We use the same rule, but split at sentence
boundaries first (clauses, then words, only for a sentence longer than a chunk), never
inside a word, and remember which sentences each chunk holds so timings can place them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from voicebatch.text.english import NON_FINAL_ABBREVIATIONS
from voicebatch.text.markup import ParagraphBreak, Pause, PauseRules, Speed, parse_markup

# A sentence ends at . ! ? … (and the closing quotes or brackets after it) before a space
# or the end, or at a CJK full stop, exclamation or question mark.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]»”’]*(?=\s|$)|[。！？]+[”’」』）]*")
_INITIAL = re.compile(r"(?:^|\s)[A-Z]$")  # "J. R. R. Tolkien": a capital before '.' is no end
_LAST_WORD = re.compile(r"(?:^|\s)(\S+)$")
_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+|(?<=[，；：、])")
F5_MAX_SECONDS = 22.0


@dataclass(frozen=True, slots=True)
class Chunk:
    script_id: str
    index: int  # position in the script, from 0
    voice: str
    text: str  # what F5-TTS speaks: the spoken form (numbers spelled, lexicon applied)
    speed: float
    sentences: tuple[str, ...]  # the written sentences (or pieces of one) it holds: subtitles, CSV
    spoken: tuple[str, ...] = ()  # the spoken form of each of them ("" -> as written)
    sentence_ids: tuple[int, ...] = ()  # the script's sentence (from 0) each piece belongs to
    pause_after: float = 0.0  # seconds of silence inserted after it (0: cross-faded into the next)

    def __post_init__(self) -> None:
        # Chunks travel through JSON (plan files): lists come back, records stay tuples.
        for name in ("sentences", "spoken", "sentence_ids"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.spoken:
            object.__setattr__(self, "spoken", self.sentences)

    @property
    def key(self) -> str:
        return f"{self.script_id}#{self.index:04d}"


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of one sentence between markup, with what follows it."""

    written: str
    spoken: str
    speed: float  # the passage's factor ([speed ...]), before the script's own speed
    after: str  # "none" (the sentence goes on), "sentence", "paragraph" or "end" (of the part)
    pauses: tuple[Pause, ...] = ()  # explicit pauses written after it

    def pause_after(self, rules: PauseRules) -> float:
        """Silence after this piece: explicit markup wins, else the rule for what follows."""
        if self.pauses:
            return round(sum(p.resolve(rules) for p in self.pauses), 3)
        return {"none": 0.0, "sentence": rules.sentence, "paragraph": rules.paragraph, "end": 0.0}[self.after]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def max_chunk_bytes(ref_text: str, ref_seconds: float, speed: float = 1.0) -> int:
    """F5-TTS's chunk size rule (bytes of UTF-8)."""
    if ref_seconds <= 0 or ref_seconds >= F5_MAX_SECONDS:
        raise ValueError(f"reference length {ref_seconds:.2f} s is outside (0, {F5_MAX_SECONDS:g}) s")
    return max(1, int(utf8_len(ref_text) / ref_seconds * (F5_MAX_SECONDS - ref_seconds) * speed))


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, stripped of surrounding spaces."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if end.group().startswith(".") and _no_end(text[start : end.start()] + ".", text[end.end() :]):
            continue
        _add_span(text, start, end.end(), spans)
        start = end.end()
    _add_span(text, start, len(text), spans)
    return spans


def _no_end(before: str, after: str) -> bool:
    # "J. R. R. Tolkien", "Dr. Smith", "e.g. this", "No. 5": the period is no sentence end.
    word = _LAST_WORD.search(before)
    abbreviation = word.group(1).lstrip("(\"'") if word else ""
    if abbreviation == "No.":
        return after.lstrip()[:1].isdigit()  # "No. 5" is a number; "He said No." ends
    return bool(_INITIAL.search(before[:-1])) or abbreviation in NON_FINAL_ABBREVIATIONS


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + len(piece.rstrip())))


def pack_sentences(text: str, limit: int) -> list[tuple[str, ...]]:
    """Group the sentences of ``text`` into chunks of at most ``limit`` UTF-8 bytes."""
    pieces: list[str] = []
    for sentence in split_sentences(text):
        pieces.extend(_fit(sentence, limit))
    chunks: list[list[str]] = []
    size = 0
    for piece in pieces:
        joined = utf8_len(piece) + (1 if chunks and chunks[-1] else 0)
        if chunks and size + joined <= limit:
            chunks[-1].append(piece)
            size += joined
        else:
            chunks.append([piece])
            size = utf8_len(piece)
    return [tuple(c) for c in chunks]


def join_sentences(sentences: tuple[str, ...]) -> str:
    # CJK text has no spaces between sentences; everything else does.
    out = ""
    for s in sentences:
        if out and not (_is_cjk(out[-1]) or _is_cjk(s[0])):
            out += " "
        out += s
    return out


def _fit(sentence: str, limit: int, size: Callable[[str], int] = utf8_len) -> list[str]:
    """A sentence that fits, or its clauses, or runs of whole words that fit (``size`` measures)."""
    if size(sentence) <= limit:
        return [sentence]
    parts: list[str] = []
    for clause in (c for c in _CLAUSE_SPLIT.split(sentence) if c.strip()):
        if size(clause) <= limit:
            parts.append(clause.strip())
        else:
            parts.extend(_words(clause, limit, size))
    # Re-pack neighbouring clauses that fit together.
    merged: list[str] = []
    for part in parts:
        if merged and size(f"{merged[-1]} {part}") <= limit:
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def _words(text: str, limit: int, size: Callable[[str], int] = utf8_len) -> list[str]:
    runs: list[str] = []
    for word in text.split():
        if runs and size(f"{runs[-1]} {word}") <= limit:
            runs[-1] = f"{runs[-1]} {word}"
        else:
            runs.append(word)  # a single word longer than the limit stays whole
    return runs


def _is_cjk(c: str) -> bool:
    return "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef"


def part_pieces(text: str, spoken: Callable[[str], str]) -> tuple[tuple[Pause, ...], list[Piece]]:
    """One voice's text as pieces: sentences, cut where markup stands, with their spoken form.

    Returns the pauses written before its first words (they follow what came before) and
    the pieces; the last piece's ``after`` is "end"."""
    pieces: list[Piece] = []
    leading: list[Pause] = []
    speed = 1.0
    paragraph: list[str | Pause | Speed] = []
    for token in [*parse_markup(text), ParagraphBreak()]:
        if not isinstance(token, ParagraphBreak):
            paragraph.append(token)
            continue
        speed = _paragraph_pieces(paragraph, speed, spoken, pieces, leading)
        if pieces and pieces[-1].after != "none":
            pieces[-1] = replace(pieces[-1], after="paragraph")
        paragraph = []
    if pieces:
        pieces[-1] = replace(pieces[-1], after="end")
    return tuple(leading), pieces


def _paragraph_pieces(
    tokens: Sequence[str | Pause | Speed],
    speed: float,
    spoken: Callable[[str], str],
    pieces: list[Piece],
    leading: list[Pause],
) -> float:
    clean = ""
    marks: dict[int, list[Pause | Speed]] = {}
    for token in tokens:
        if isinstance(token, str):
            text = " ".join(token.split())
            if text:
                clean += (" " if clean and not (_is_cjk(clean[-1]) or _is_cjk(text[0])) else "") + text
        else:
            marks.setdefault(len(clean), []).append(token)
    ends = {b for _, b in sentence_spans(clean)}
    cuts = sorted({0, len(clean), *ends, *marks})
    for a, b in zip(cuts, [*cuts[1:], None], strict=True):
        for mark in marks.get(a, ()):
            if isinstance(mark, Speed):
                speed = mark.factor
            elif pieces:
                pieces[-1] = replace(pieces[-1], pauses=(*pieces[-1].pauses, mark))
            else:
                leading.append(mark)
        if b is None:
            break
        written = clean[a:b].strip()
        if written:
            pieces.append(Piece(written, spoken(written), speed, "sentence" if b in ends else "none"))
    return speed


def split_long_pieces(
    pieces: Sequence[Piece], limit_for: Callable[[float], int], spoken: Callable[[str], str]
) -> list[Piece]:
    """A piece whose spoken form is over the chunk limit, split at clauses, then between words."""
    out: list[Piece] = []
    for piece in pieces:
        limit = limit_for(piece.speed)
        if utf8_len(piece.spoken) <= limit:
            out.append(piece)
            continue
        memo: dict[str, str] = {}

        def spell(text: str, memo: dict[str, str] = memo) -> str:
            if text not in memo:
                memo[text] = spoken(text)
            return memo[text]

        parts = _fit(piece.written, limit, lambda text: utf8_len(spell(text)))
        for n, written in enumerate(parts):
            last = n == len(parts) - 1
            out.append(
                replace(
                    piece,
                    written=written,
                    spoken=spell(written),
                    after=piece.after if last else "none",
                    pauses=piece.pauses if last else (),
                )
            )
    return out


def pack_pieces(pieces: Sequence[Piece], limit_for: Callable[[float], int], *, per_sentence: bool) -> list[list[Piece]]:
    """Pieces -> chunks. Never across a paragraph, a pause or a speed change; with
    ``per_sentence`` never across a sentence either (so each sentence gets its pause)."""
    groups: list[list[Piece]] = []
    size = 0
    for piece in pieces:
        previous = groups[-1][-1] if groups else None
        joinable = (
            previous is not None
            and not per_sentence
            and previous.after == "sentence"
            and not previous.pauses
            and previous.speed == piece.speed
            and size + 1 + utf8_len(piece.spoken) <= limit_for(piece.speed)
        )
        if joinable:
            groups[-1].append(piece)
            size += 1 + utf8_len(piece.spoken)
        else:
            groups.append([piece])
            size = utf8_len(piece.spoken)
    return groups


def f5_reference_text(text: str) -> str:
    """The reference text as F5-TTS speaks it: a space appended after a one-byte final
    character, so the chunk's text does not run into it."""
    return text + " " if len(text[-1].encode("utf-8")) == 1 else text
