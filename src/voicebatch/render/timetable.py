"""The timing table (CSV) and the whole sentences subtitles are built from.

Chunks hold sentences or pieces of one (a long sentence split to fit F5, or cut by a
``[pause]``); the assembly places each piece. Here pieces of one sentence become one row,
so a "sentence" row is a whole sentence as written, with its voice and script.

Columns (the documented schema): ``script, voice, level (sentence|word), index (from 1,
per level, as SRT numbers cues), sentence (the sentence a word belongs to), start_s,
end_s, text (as written), estimated (true|false), source``. ``source`` says where a time
comes from: ``aligned`` (measured by forced alignment of the chunk's audio with its text),
``chunk_boundary`` (both ends are chunk edges in the joined audio, exact to the
sample) or ``estimated`` (inside a chunk, in proportion to UTF-8 bytes); ``estimated`` is
true exactly when ``source`` is ``estimated``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from voicebatch.inputs.chunking import Chunk, join_sentences
from voicebatch.render.cues import Cue
from voicebatch.render.join import Assembly, Timeline
from voicebatch.render.subtitles import TimedSentence, TimedWord

COLUMNS = ("script", "voice", "level", "index", "sentence", "start_s", "end_s", "text", "estimated", "source")


@dataclass(frozen=True, slots=True)
class _Piece:
    chunk: int
    first: bool  # first piece of its chunk: its start is a chunk edge
    last: bool
    sentence: int
    voice: str
    cue: Cue
    words: tuple[Cue, ...]


def _pieces(assembly: Assembly | Timeline, chunks: Sequence[Chunk]) -> Iterator[_Piece]:
    words = iter(assembly.words)
    cues = iter(assembly.sentences)
    for k, chunk in enumerate(chunks):
        ids = chunk.sentence_ids or tuple(range(len(chunk.sentences)))
        for j, (text, sentence) in enumerate(zip(chunk.sentences, ids, strict=True)):
            count = len(re.findall(r"\S+", text))
            cue = next(cues)
            own = tuple(next(words) for _ in range(count))
            yield _Piece(k, j == 0, j == len(chunk.sentences) - 1, sentence, chunk.voice, cue, own)


@dataclass(frozen=True, slots=True)
class WholeSentence:
    timed: TimedSentence
    source: str  # of the sentence's two ends: aligned | chunk_boundary | estimated
    word_sources: tuple[str, ...]


def _combined(sources: Sequence[str]) -> str:
    """The least exact of the sources that make up a time."""
    return "estimated" if "estimated" in sources else "aligned" if "aligned" in sources else "chunk_boundary"


def whole_sentences(assembly: Assembly | Timeline, chunks: Sequence[Chunk]) -> Iterator[WholeSentence]:
    """Each sentence of the script, whole, with its words and where their times come from.
    Yielded one at a time (the pieces of a sentence are consecutive chunks' pieces): a book's
    100,000 words are never copied all at once."""
    import itertools

    pieces = _pieces(assembly, chunks) if chunks else iter(())
    for _, group in itertools.groupby(pieces, key=lambda p: (p.sentence, p.voice)):
        parts = list(group)
        words = tuple(TimedWord(w.start, w.end, w.text) for p in parts for w in p.words)
        text = join_sentences(tuple(p.cue.text for p in parts))
        timed = TimedSentence(parts[0].cue.start, parts[-1].cue.end, text, parts[0].voice, words)
        source = _combined([parts[0].cue.source, parts[-1].cue.source])
        yield WholeSentence(timed, source, tuple(w.source for p in parts for w in p.words))


def timing_table(assembly: Assembly | Timeline, chunks: Sequence[Chunk], script_id: str) -> Iterator[dict]:
    """The rows of the timing table: every whole sentence, then every word. Yielded one at a
    time, so a book's table is written row by row; the sentences are gone through
    twice rather than held."""
    for n, whole in enumerate(whole_sentences(assembly, chunks), start=1):
        s = whole.timed
        yield _row(script_id, s.voice, "sentence", n, n, s.start, s.end, s.text, whole.source)
    index = 0
    for n, whole in enumerate(whole_sentences(assembly, chunks), start=1):
        for word, source in zip(whole.timed.words, whole.word_sources, strict=True):
            index += 1
            yield _row(script_id, whole.timed.voice, "word", index, n, word.start, word.end, word.text, source)


def _row(
    script: str,
    voice: str | None,
    level: str,
    index: int,
    sentence: int,
    start: float,
    end: float,
    text: str,
    source: str,
) -> dict:
    return {
        "script": script,
        "voice": voice or "",
        "level": level,
        "index": index,
        "sentence": sentence,
        "start_s": round(start, 3),
        "end_s": round(end, 3),
        "text": text,
        "estimated": source == "estimated",
        "source": source,
    }
