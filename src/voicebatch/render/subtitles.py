"""Subtitle cues an editor accepts, after Netflix's English timed-text style guide.

Rules (:class:`SubtitleRules`, every number configurable): at most 42 columns a line
(display width: a Chinese or Japanese character takes two) and 2 lines a cue; a cue lasts
5/6 s to 7 s and shows at most 20 characters a second where the speech leaves room; 2
frames (at 24 fps: 83 ms) between cues; one line when the text fits, else two balanced
lines broken at a linguistic boundary (after punctuation, before a conjunction or
preposition; never after an article or a possessive); no single-word cue when a
neighbour can take the word. Break opportunities come from the Unicode line breaking
algorithm (UAX #14, the ``uniseg`` package), so text without spaces (Chinese, Japanese,
URLs) wraps by display width at permitted points; a token wider than a line is cut.

A sentence is split into cues by dynamic programming over its break points (fewest cues,
good boundaries, no orphans, each cue within the duration limit); times come from the
word timings (measured or estimated). Where the speech does not allow a rule (a short
sentence between two others with no gap to grow into, speech faster than 20 characters a
second), the cue stays true to the speech and the problem is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from voicebatch.inputs.transcripts import Segment
from voicebatch.render.line_breaks import CJK, Token, break_cost, cut_wide, display_width, layout, word_count

MAX_LINE_CHARS = 42


MAX_LINES = 2


@dataclass(frozen=True, slots=True)
class SubtitleRules:
    max_line_width: int = MAX_LINE_CHARS  # display columns
    max_lines: int = MAX_LINES
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    max_cps: float = 20.0  # characters a second (line breaks not counted)
    fps: float = 24.0
    min_gap_frames: int = 2

    @property
    def min_gap(self) -> float:
        return self.min_gap_frames / self.fps


DEFAULT_RULES = SubtitleRules()


@dataclass(frozen=True, slots=True)
class TimedWord:
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class TimedSentence:
    """A whole sentence as written, its speech, and its words' times."""

    start: float
    end: float
    text: str
    voice: str | None = None
    words: tuple[TimedWord, ...] = ()


@dataclass(frozen=True, slots=True)
class SubtitleProblem:
    cue: int  # 1-based, as in the SRT
    rule: str  # "min_duration" | "max_duration" | "max_cps"
    message: str


@dataclass(frozen=True, slots=True)
class Subtitles:
    segments: tuple[Segment, ...]
    problems: tuple[SubtitleProblem, ...] = field(default=())


@dataclass(slots=True)
class _Cue:
    tokens: list[Token]
    voice: str | None
    start: float
    end: float


def build_subtitles(sentences: Iterable[TimedSentence], rules: SubtitleRules = DEFAULT_RULES) -> Subtitles:
    """Cues for ``sentences`` under ``rules``; ``<v>`` speakers only when several voices speak.

    Sentences are read one at a time and a cue is laid out as soon as nothing can change it
    any more (``_settled``): a book's 100,000 words are never all tokens at once.
    The result is the same as cutting every sentence, merging the orphans of the whole list,
    then timing it (tested against that)."""
    cues: list[_Cue] = []
    scan = 0  # where the orphan scan goes on
    timer = _Timer(rules)
    for sentence in sentences:
        tokens = _tokens(sentence, rules)
        for group in _split_sentence(tokens, rules):
            cues.append(_Cue(group, sentence.voice, group[0].start, group[-1].end))
        scan = _merge_orphans(cues, rules, scan, complete=False)
        settled = _settled(cues, scan, rules)
        for cue in cues[:settled]:
            timer.add(cue)
        del cues[:settled]
        scan -= settled
    _merge_orphans(cues, rules, scan)
    for cue in cues:
        timer.add(cue)
    return timer.close()


def _tokens(sentence: TimedSentence, rules: SubtitleRules) -> list[Token]:
    from uniseg.linebreak import line_break_units

    text = " ".join(sentence.text.split())
    clock = _char_clock(text, sentence)
    tokens: list[Token] = []
    position = 0
    for unit in line_break_units(text):
        for piece in cut_wide(unit, rules.max_line_width):
            stripped = len(piece.rstrip()) or len(piece)
            tokens.append(Token(piece, clock(position), clock(position + stripped, end=True)))
            position += len(piece)
    return tokens


def _char_clock(text: str, sentence: TimedSentence) -> Callable[..., float]:
    """Character offset -> time, from the word timings (linear inside each word)."""
    anchors: list[tuple[int, int, float, float]] = []
    position = 0
    for word in sentence.words:
        found = text.find(word.text, position)
        if found < 0:
            continue
        anchors.append((found, found + len(word.text), word.start, word.end))
        position = found + len(word.text)
    if not anchors:
        anchors = [(0, max(1, len(text)), sentence.start, sentence.end)]

    def clock(offset: int, end: bool = False) -> float:
        for a, b, t0, t1 in anchors:
            if offset < b or (end and offset == b):
                if offset <= a:
                    return t0
                return t0 + (t1 - t0) * (offset - a) / max(1, b - a)
        return anchors[-1][3]

    return clock


def _split_sentence(tokens: list[Token], rules: SubtitleRules) -> list[list[Token]]:
    """The best partition of a sentence's tokens into cues (dynamic programming)."""
    n = len(tokens)
    if n == 0:
        return []
    words = word_count(tokens)
    best: list[tuple[float, int]] = [(0.0, 0)] + [(float("inf"), 0)] * n
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            group = tokens[i:j]
            width = display_width("".join(t.text for t in group).strip())
            if width > rules.max_line_width * rules.max_lines + rules.max_lines and j - i > 1:
                break
            layout_cost, lines = layout(group, rules.max_line_width, rules.max_lines)
            if not lines:
                continue
            duration = group[-1].end - group[0].start
            cost = best[i][0] + 10 + layout_cost
            if duration > rules.max_duration and j - i > 1:
                cost += 100 + 100 * (duration - rules.max_duration)
            if words > 1 and word_count(group) == 1:
                cost += 60  # a one-word cue: an orphan
            if duration < rules.min_duration:
                cost += 4
            if j < n:
                cost += break_cost(tokens[j - 1], tokens[j])
            if cost < best[j][0]:
                best[j] = (cost, i)
    groups, j = [], n
    while j > 0:
        i = best[j][1]
        groups.append(tokens[i:j])
        j = i
    return groups[::-1]


def _merge_orphans(cues: list[_Cue], rules: SubtitleRules, start: int = 0, *, complete: bool = True) -> int:
    """A one-word cue, or one too short to read, joins a neighbour of the same voice that can
    take it (in place). Returns where the scan stopped.

    After a merge of cues a..b the scan resumes at a-1, not at the start: only the merged cue
    and its left neighbour can have gained a partner, every cue before them was checked and
    kept its neighbours (a book's 40,000 cues are scanned once, not once per merge). A cue's
    choice looks two cues ahead (its right neighbour, and where the one after begins): unless
    the list is ``complete``, the scan stops before the last two cues, which more may follow."""
    k = start
    while k < len(cues) - (0 if complete else 2):
        cue = cues[k]
        short = cue.end - cue.start < rules.min_duration
        if not (word_count(cue.tokens) == 1 or short):
            k += 1
            continue
        options = []
        for other in (k - 1, k + 1):
            if 0 <= other < len(cues) and cues[other].voice == cue.voice:
                a, b = sorted((k, other))
                tokens = _joined(cues[a].tokens, cues[b].tokens)
                # The merged cue ends where the next cue's gap begins, if that is sooner.
                end = min(cues[b].end, cues[b + 1].start - rules.min_gap) if b + 1 < len(cues) else cues[b].end
                fits = (
                    layout(tokens, rules.max_line_width, rules.max_lines)[1]
                    and end - cues[a].start <= rules.max_duration
                )
                if fits:
                    options.append((cues[b].end - cues[a].start, a, b, tokens))
        if not options:
            k += 1
            continue
        _, a, b, tokens = min(options, key=lambda o: o[0])
        cues[a : b + 1] = [_Cue(tokens, cue.voice, cues[a].start, cues[b].end)]
        k = max(0, a - 1)
    return k


def _settled(cues: list[_Cue], scan: int, rules: SubtitleRules) -> int:
    """How many leading cues no later merge can reach. Every merge still to come joins a cue
    at or after ``scan - 1`` (with the ones it then grows into) into one cue of at most
    ``max_duration``, so it never reaches back to a cue that ended more than that (and the
    gaps, with a second to spare) before cue ``scan - 1`` starts; cues are in time order."""
    if scan < 3:
        return 0
    horizon = cues[scan - 1].start - rules.max_duration - 2 * rules.min_gap - 1.0
    count = 0
    while count < scan - 2 and cues[count].end < horizon:
        count += 1
    return count


def _joined(first: list[Token], second: list[Token]) -> list[Token]:
    """Two cues' tokens as one; a space between sentences unless either side is CJK."""
    last = first[-1]
    if not last.text[-1:].isspace() and not (CJK.search(last.text[-1:]) or CJK.search(second[0].text[:1])):
        first = [*first[:-1], Token(last.text + " ", last.start, last.end)]
    return first + second


class _Timer:
    """Gaps, minimum durations and reading speed, for cues given in order: each cue's times
    are final once the next one is known. The segments, and the problems the speech leaves."""

    def __init__(self, rules: SubtitleRules) -> None:
        self.rules = rules
        self.last: _Cue | None = None
        self.segments: list[Segment] = []
        self.problems: list[SubtitleProblem] = []
        self.voices: set[str | None] = set()

    def add(self, cue: _Cue) -> None:
        if self.last is not None:
            self._gap(self.last, cue)
            self._finish(self.last, cue.start - self.rules.min_gap)
        self.last = cue

    def close(self) -> Subtitles:
        if self.last is not None:
            self._finish(self.last, float("inf"))
            self.last = None
        segments = self.segments
        if len(self.voices) <= 1:  # <v> tags only when several voices speak
            segments = [Segment(s.start, s.end, s.text) for s in segments]
        return Subtitles(tuple(segments), tuple(self.problems))

    def _gap(self, a: _Cue, b: _Cue) -> None:
        gap, frame = self.rules.min_gap, 1 / self.rules.fps
        if b.start - a.end < gap:  # cues that touch: the earlier one ends two frames sooner
            a.end = max(a.start + frame, b.start - gap)
            if b.start < a.end + gap:  # speech shorter than a frame: the next cue waits a little
                b.start = a.end + gap
                b.end = max(b.end, b.start + frame)

    def _finish(self, cue: _Cue, limit: float) -> None:
        """The cue held long enough to read (into the silence before ``limit``), laid out."""
        rules = self.rules
        number = len(self.segments) + 1
        lines = layout(cue.tokens, rules.max_line_width, rules.max_lines)[1]
        characters = sum(len(line) for line in lines)  # on screen, line breaks not counted
        needed = max(rules.min_duration, characters / rules.max_cps)
        if cue.end - cue.start < needed:
            cue.end = max(cue.end, min(cue.start + needed, limit, cue.start + rules.max_duration))
        duration = cue.end - cue.start
        where = f"{cue.start:.3f}-{cue.end:.3f} s"
        if duration < rules.min_duration - 1e-6:
            self.problems.append(
                SubtitleProblem(number, "min_duration", f"{where}: {duration:.2f} s, the next cue leaves no room")
            )
        if duration > rules.max_duration + 1e-6:
            self.problems.append(SubtitleProblem(number, "max_duration", f"{where}: {duration:.2f} s for one word"))
        if characters / duration > rules.max_cps + 1e-6:
            self.problems.append(
                SubtitleProblem(
                    number, "max_cps", f"{where}: {characters / duration:.1f} characters a second, speech too fast"
                )
            )
        self.voices.add(cue.voice)
        self.segments.append(Segment(round(cue.start, 3), round(cue.end, 3), "\n".join(lines), cue.voice))
