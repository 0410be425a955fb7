"""Where every sentence and word lies in a joined signal: the cue records, and their placement.

The boundary between two chunks' cues is the middle of their cross-fade, so sentence cues
that come from chunk boundaries are exact to the sample (``chunk_boundary``). Inside a chunk,
sentence and word times come from a forced alignment of the chunk's audio with its text when
one is given (``aligned``); otherwise, and for a word the aligner could not place, they are
estimated in proportion to UTF-8 bytes, the rule F5 uses for duration (``estimated``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE

if TYPE_CHECKING:
    pass

SOURCES = ("aligned", "chunk_boundary", "estimated")


WordTimes = Sequence[tuple[float, float] | None]  # per written word of a chunk: (start, end) s in its own audio


@dataclass(frozen=True, slots=True)
class Cue:
    level: str  # "sentence" | "word"
    index: int
    start_sample: int
    end_sample: int
    text: str
    source: str  # "aligned" | "chunk_boundary" | "estimated"
    sample_rate: int = MODEL_SAMPLE_RATE

    @property
    def estimated(self) -> bool:
        return self.source == "estimated"

    @property
    def start(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return self.end_sample / self.sample_rate


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    index: int
    start_sample: int  # where the (trimmed) chunk starts in the joined audio
    end_sample: int
    trimmed_lead: int  # samples of silence removed before and after
    trimmed_trail: int
    cross_fade: int  # samples overlapping the previous chunk
    silence_before: int = 0  # samples of silence inserted before it (a pause; then no cross-fade)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def chunk_ranges(spans: Sequence[ChunkSpan], total: int) -> list[tuple[int, int]]:
    """(start, end) sample of each chunk's cues: two cross-faded chunks meet in the middle of
    their cross-fade; a chunk after a pause starts where its audio does, and the cue
    before it ends where that chunk's audio ends (the silence belongs to neither)."""
    ranges = []
    for k, span in enumerate(spans):
        start = 0 if k == 0 else span.start_sample + span.cross_fade // 2
        if k + 1 == len(spans):
            end = total
        elif spans[k + 1].cross_fade > 0:
            end = spans[k + 1].start_sample + spans[k + 1].cross_fade // 2
        else:
            end = span.end_sample
        ranges.append((start, end))
    return ranges


def chunk_boundaries(spans: Sequence[ChunkSpan], total: int) -> list[int]:
    """Sample positions where each chunk's cues start, plus the end: the middle of each cross-fade."""
    return [0] + [span.start_sample + span.cross_fade // 2 for span in spans[1:]] + [total]


def place_cues(
    spans: Sequence[ChunkSpan],
    sentences: Sequence[tuple[str, ...]],
    total: int,
    rate: int,
    word_times: Sequence[WordTimes | None] | None = None,
) -> tuple[list[Cue], list[Cue]]:
    sentence_cues: list[Cue] = []
    word_cues: list[Cue] = []
    ranges = chunk_ranges(spans, total)
    for k, texts in enumerate(sentences):
        lower, upper = ranges[k]
        measured = word_times[k] if word_times is not None and k < len(word_times) else None
        words = [re.findall(r"\S+", t) for t in texts]
        if measured is not None and len(measured) == sum(len(w) for w in words) and any(measured):
            placed = _placed(spans[k], lower, upper, measured, rate)
            _aligned_cues(lower, upper, texts, words, placed, rate, sentence_cues, word_cues)
            continue
        cuts = _proportional(lower, upper, [utf8_len(t) for t in texts])
        for j, text in enumerate(texts):
            source = "chunk_boundary" if len(texts) == 1 else "estimated"  # inside a chunk: an estimate
            cue = Cue("sentence", len(sentence_cues), cuts[j], cuts[j + 1], text, source, rate)
            sentence_cues.append(cue)
            word_cuts = _proportional(cue.start_sample, cue.end_sample, [utf8_len(w) for w in words[j]])
            for w, word in enumerate(words[j]):
                word_source = source if len(words[j]) == 1 else "estimated"
                word_cues.append(Cue("word", len(word_cues), word_cuts[w], word_cuts[w + 1], word, word_source, rate))
    return sentence_cues, word_cues


def _placed(span: ChunkSpan, lower: int, upper: int, measured: WordTimes, rate: int) -> list[tuple[int, int] | None]:
    """Measured word times moved into the joined audio (past the trimmed lead), kept inside
    the chunk's cue span and in order: a word never starts before the previous one ended."""
    out: list[tuple[int, int] | None] = []
    floor = lower
    for times in measured:
        if times is None:
            out.append(None)
            continue
        start = span.start_sample - span.trimmed_lead + round(times[0] * rate)
        end = span.start_sample - span.trimmed_lead + round(times[1] * rate)
        start = min(max(start, floor), upper)
        end = min(max(end, start), upper)
        out.append((start, end))
        floor = end
    return out


def _aligned_cues(
    lower: int,
    upper: int,
    texts: Sequence[str],
    words: Sequence[list[str]],
    placed: list[tuple[int, int] | None],
    rate: int,
    sentence_cues: list[Cue],
    word_cues: list[Cue],
) -> None:
    """Cues of one chunk from its measured word times. Words the aligner could not place get
    times between their placed neighbours in proportion to UTF-8 bytes (``estimated``).
    The chunk's first sentence starts and its last ends at the chunk boundaries; a sentence
    boundary inside the chunk lies at the measured start of its first word and end of the
    previous sentence's last word (a pause between them is a gap between the cues)."""
    flat = [w for ws in words for w in ws]
    times = _fill_gaps(lower, upper, flat, placed)
    index = 0
    for j, text in enumerate(texts):
        count = len(words[j])
        own = times[index : index + count]
        sources = ["aligned" if placed[index + i] is not None else "estimated" for i in range(count)]
        start = lower if j == 0 else (own[0][0] if own else times[index - 1][1] if index else lower)
        end = upper if j == len(texts) - 1 else (own[-1][1] if own else start)
        ends = [
            "chunk_boundary" if j == 0 else sources[0] if own else "estimated",
            "chunk_boundary" if j == len(texts) - 1 else sources[-1] if own else "estimated",
        ]
        if "estimated" in ends:
            source = "estimated"
        elif ends == ["chunk_boundary", "chunk_boundary"]:
            source = "chunk_boundary"
        else:
            source = "aligned"
        sentence_cues.append(Cue("sentence", len(sentence_cues), start, max(start, end), text, source, rate))
        for i, word in enumerate(words[j]):
            a, b = own[i]
            word_cues.append(Cue("word", len(word_cues), a, b, word, sources[i], rate))
        index += count


def _fill_gaps(
    lower: int, upper: int, words: Sequence[str], placed: list[tuple[int, int] | None]
) -> list[tuple[int, int]]:
    """Every word's (start, end): measured where placed, else shared out by UTF-8 bytes
    between the end of the last placed word before it and the start of the next one."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        if placed[i] is not None:
            out.append(placed[i])  # type: ignore[arg-type]
            i += 1
            continue
        j = i
        while j < len(words) and placed[j] is None:
            j += 1
        start = out[-1][1] if out else lower
        end = placed[j][0] if j < len(words) else upper  # type: ignore[index]
        cuts = _proportional(start, max(start, end), [utf8_len(w) for w in words[i:j]])
        out.extend((cuts[n], cuts[n + 1]) for n in range(j - i))
        i = j
    return out


def _proportional(start: int, end: int, weights: Sequence[int]) -> list[int]:
    total = sum(weights) or 1
    cuts, acc = [start], 0
    for weight in weights[:-1]:
        acc += weight
        cuts.append(start + round((end - start) * acc / total))
    cuts.append(end)
    return cuts
