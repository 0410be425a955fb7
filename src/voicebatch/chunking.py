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
from dataclasses import dataclass

# A sentence ends at . ! ? … (and the closing quotes or brackets after it) before a space
# or the end, or at a CJK full stop, exclamation or question mark.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]»”’]*(?=\s|$)|[。！？]+[”’」』）]*")
_INITIAL = re.compile(r"(?:^|\s)[A-Z]$")  # "J. R. R. Tolkien": a capital before '.' is no end
_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+|(?<=[，；：、])")
F5_MAX_SECONDS = 22.0


@dataclass(frozen=True, slots=True)
class Chunk:
    script_id: str
    index: int  # position in the script, from 0
    voice: str
    text: str
    speed: float
    sentences: tuple[str, ...]  # the sentences (or pieces of one) the chunk holds, in order

    @property
    def key(self) -> str:
        return f"{self.script_id}#{self.index:04d}"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def max_chunk_bytes(ref_text: str, ref_seconds: float, speed: float = 1.0) -> int:
    """F5-TTS's chunk size rule (bytes of UTF-8)."""
    if ref_seconds <= 0 or ref_seconds >= F5_MAX_SECONDS:
        raise ValueError(f"reference length {ref_seconds:.2f} s is outside (0, {F5_MAX_SECONDS:g}) s")
    return max(1, int(utf8_len(ref_text) / ref_seconds * (F5_MAX_SECONDS - ref_seconds) * speed))


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if end.group().startswith(".") and _INITIAL.search(text[start : end.start()]):
            continue
        if piece := text[start : end.end()].strip():
            sentences.append(piece)
        start = end.end()
    if rest := text[start:].strip():
        sentences.append(rest)
    return sentences


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


def _fit(sentence: str, limit: int) -> list[str]:
    """A sentence that fits, or its clauses, or runs of whole words that fit."""
    if utf8_len(sentence) <= limit:
        return [sentence]
    parts: list[str] = []
    for clause in (c for c in _CLAUSE_SPLIT.split(sentence) if c.strip()):
        if utf8_len(clause) <= limit:
            parts.append(clause.strip())
        else:
            parts.extend(_words(clause, limit))
    # Re-pack neighbouring clauses that fit together.
    merged: list[str] = []
    for part in parts:
        if merged and utf8_len(merged[-1]) + 1 + utf8_len(part) <= limit:
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def _words(text: str, limit: int) -> list[str]:
    runs: list[str] = []
    for word in text.split():
        if runs and utf8_len(runs[-1]) + 1 + utf8_len(word) <= limit:
            runs[-1] = f"{runs[-1]} {word}"
        else:
            runs.append(word)  # a single word longer than the limit stays whole
    return runs


def _is_cjk(c: str) -> bool:
    return "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef"
