"""Broadcast subtitle rules: a property test over random scripts, and the cases
the demo showed (orphans, lone words on line 2, unbroken CJK and URLs, VTT voices)."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

import check_subtitles as rules_check
from voicebatch.inputs.transcripts.writers import to_srt, to_vtt
from voicebatch.render.subtitles import SubtitleRules, TimedSentence, TimedWord, build_subtitles

WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "and",
    "but",
    "because",
    "sound",
    "wave",
    "travels",
    "through",
    "air",
    "microphone",
    "narrator",
    "booth",
    "room",
    "recording",
    "engineer",
    "listens",
    "carefully,",
    "again.",
    "quickly",
    "extraordinarily",
    "incomprehensibilities",
    "https://example.com/a/very/long/path/to/some/resource?with=query&and=more",
    "dollars",
    "$3.50",
    "1998",
]
CJK = "对这就是我万人敬仰的太乙真人东京日本首都大都市声音空气"


def timed(words: list[str], start: float, durations: list[float], voice: str | None) -> TimedSentence:
    out, t = [], start
    for word, duration in zip(words, durations, strict=True):
        out.append(TimedWord(t, t + duration, word))
        t += duration
    return TimedSentence(start, t, " ".join(words), voice, tuple(out))


@st.composite
def scripts(draw) -> list[TimedSentence]:
    sentences, t = [], draw(st.floats(0, 1))
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 5)) == 0:
            words = ["".join(draw(st.lists(st.sampled_from(CJK), min_size=3, max_size=70))) + "。"]
        else:
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=45))
            words[-1] += "."
        # 0.03-0.8 s a word: from speech too fast to read to slow narration.
        durations = [draw(st.floats(0.03, 0.8)) * (1 + len(w) / 8) for w in words]
        sentence = timed(words, t, durations, draw(st.sampled_from(["anna", "ben"])))
        sentences.append(sentence)
        t = sentence.end + draw(st.sampled_from([0.0, 0.0, 0.3, 0.8, 2.5]))
    return sentences


@settings(deadline=None, max_examples=120)
@given(scripts())
def test_every_srt_and_vtt_obeys_the_rules_where_the_speech_allows_and_reports_where_it_cannot(
    sentences: list[TimedSentence],
) -> None:
    rules = SubtitleRules()
    result = build_subtitles(sentences, rules)
    cues = rules_check.read_srt(to_srt(result.segments))
    captions = rules_check.read_vtt(to_vtt(result.segments))
    # Every character once, in order; the VTT says the same as the SRT, with the SRT's numbers.
    shown = "".join(" ".join(" ".join(c.lines) for c in cues).split())
    assert shown == "".join("".join(s.text for s in sentences).split())
    assert [c.lines for c in captions] == [c.lines for c in cues]
    assert [c.number for c in captions] == list(range(1, len(cues) + 1))
    # The checker (written apart from the code) finds nothing the speech would have allowed.
    assert rules_check.problems(rules_check.with_voices(cues, captions)) == []
    assert rules_check.problems(captions) == []
    reported = {(p.cue, p.rule) for p in result.problems}
    speech_starts = [w.start for s in sentences for w in s.words]
    for k, cue in enumerate(cues, start=1):
        # A cue never appears before the speech it shows.
        assert any(abs(cue.start - t) < 0.0015 for t in speech_starts) or cue.start >= sentences[0].start
        if cue.duration < rules.min_duration - 0.0015:
            assert (k, "min_duration") in reported
        if cue.duration > rules.max_duration + 0.0015:
            assert (k, "max_duration") in reported and len(cue.lines) == 1 and " " not in cue.text.strip()
        if cue.characters / cue.duration > rules.max_cps + 0.05:
            assert (k, "max_cps") in reported
    # ... and reports only what is there.
    for number, rule in reported:
        cue = cues[number - 1]
        broken = {
            "min_duration": cue.duration < rules.min_duration,
            "max_duration": cue.duration > rules.max_duration,
            "max_cps": cue.characters / cue.duration > rules.max_cps - 0.1,
        }[rule]
        assert broken, (number, rule, cue)


def sentence(text: str, start: float, seconds_per_word: float = 0.35, voice: str | None = None) -> TimedSentence:
    words = text.split()
    return timed(words, start, [seconds_per_word] * len(words), voice)


def test_no_single_word_orphan_cue_and_no_lone_word_on_line_two() -> None:
    text = (
        "The Country Mouse had never seen anything like it, and sat down to enjoy the luxuries his friend provided in, "
        "of all places, the town."
    )
    result = build_subtitles([sentence(text, 0.0)])
    lines = [line for s in result.segments for line in s.text.split("\n")]
    assert all(len(s.text.split()) > 1 for s in result.segments)
    assert all(len(line.split()) > 1 for line in lines)
    assert not [line for line in lines if line.split()[-1].lower() in ("the", "a", "an", "his")]


def test_line_breaks_fall_after_punctuation_or_before_a_conjunction() -> None:
    result = build_subtitles(
        [sentence("Bring a friend, bring a book, and stay for coffee on Sunday mornings.", 0.0, 0.3)]
    )
    (segment,) = result.segments
    assert segment.text.split("\n")[0].endswith(",")


def test_text_without_spaces_wraps_by_display_width() -> None:
    chinese = "对，这就是我，万人敬仰的太乙真人。我们今天一起学习声音如何在空气中传播，以及房间为什么会有回声。"
    url = "See https://example.com/a/very/long/path/that/goes/on/and/on/until/it/is/seventy/characters now."
    result = build_subtitles(
        [TimedSentence(0.0, 6.0, chinese, None, (TimedWord(0.0, 6.0, chinese),)), sentence(url, 7.0, 1.0)]
    )
    for segment in result.segments:
        for line in segment.text.split("\n"):
            assert rules_check.width(line) <= 42, line
    assert "".join(s.text.replace("\n", "") for s in result.segments[:2]).startswith("对，这就是我")


def test_cues_have_gaps_minimum_durations_and_readable_speed() -> None:
    sentences = [sentence("Yes.", 0.0), sentence("In a moment we will begin the lesson.", 0.35), sentence("Go.", 4.0)]
    result = build_subtitles(sentences)
    cues = rules_check.read_srt(to_srt(result.segments))
    assert all(b.start - a.end >= 2 / 24 - 0.0015 for a, b in itertools.pairwise(cues))
    assert all(c.duration >= 5 / 6 - 0.0015 for c in cues)
    assert cues[0].text.startswith("Yes."), "the one-word sentence joins its neighbour"


def test_vtt_has_cue_ids_and_voice_tags_only_for_several_voices() -> None:
    two = build_subtitles(
        [sentence("Good morning to you.", 0.0, voice="anna"), sentence("And to you, too.", 2.0, voice="ben")]
    )
    vtt = to_vtt(two.segments)
    assert re.findall(r"^(\d+)\n\d\d:", vtt, flags=re.MULTILINE) == ["1", "2"]
    assert "<v anna>Good morning to you.</v>" in vtt and "<v ben>And to you, too.</v>" in vtt
    one = build_subtitles(
        [sentence("Good morning to you.", 0.0, voice="anna"), sentence("And to you.", 2.0, voice="anna")]
    )
    assert "<v " not in to_vtt(one.segments)


def test_rules_are_configurable() -> None:
    text = "A sentence that would fit on one line of forty-two."
    narrow = build_subtitles([sentence(text, 0.0)], SubtitleRules(max_line_width=20, max_lines=2))
    assert all(rules_check.width(line) <= 20 for s in narrow.segments for line in s.text.split("\n"))
    assert len(narrow.segments) >= 2


def build_subtitles_whole(sentences: list[TimedSentence]) -> tuple:
    """The first broadcast subtitle build, verbatim: every sentence cut into cues, then the orphans of
    the whole list merged (the scan starting again at the first cue after every merge), then
    the whole list timed. The oracle for the streamed build, which must give the same."""
    from voicebatch.inputs.transcripts.segment import Segment
    from voicebatch.render.line_breaks import layout, word_count
    from voicebatch.render.subtitles import Subtitles, _Cue, _joined, _split_sentence, _tokens

    def _layout(tokens, rules):  # the line layout as it was called then
        return layout(tokens, rules.max_line_width, rules.max_lines)

    _word_count = word_count

    rules = SubtitleRules()
    cues = []
    for sentence in sentences:
        for group in _split_sentence(_tokens(sentence, rules), rules):
            cues.append(_Cue(group, sentence.voice, group[0].start, group[-1].end))
    merged = True
    while merged:
        merged = False
        for k, cue in enumerate(cues):
            short = cue.end - cue.start < rules.min_duration
            if not (_word_count(cue.tokens) == 1 or short):
                continue
            options = []
            for other in (k - 1, k + 1):
                if 0 <= other < len(cues) and cues[other].voice == cue.voice:
                    a, b = sorted((k, other))
                    tokens = _joined(cues[a].tokens, cues[b].tokens)
                    end = min(cues[b].end, cues[b + 1].start - rules.min_gap) if b + 1 < len(cues) else cues[b].end
                    fits = _layout(tokens, rules)[1] and end - cues[a].start <= rules.max_duration
                    if fits:
                        options.append((cues[b].end - cues[a].start, a, b, tokens))
            if options:
                _, a, b, tokens = min(options, key=lambda o: o[0])
                cues[a : b + 1] = [_Cue(tokens, cue.voice, cues[a].start, cues[b].end)]
                merged = True
                break
    gap, frame = rules.min_gap, 1 / rules.fps
    for a, b in itertools.pairwise(cues):
        if b.start - a.end < gap:
            a.end = max(a.start + frame, b.start - gap)
            if b.start < a.end + gap:
                b.start = a.end + gap
                b.end = max(b.end, b.start + frame)

    def characters(cue) -> int:
        return sum(len(line) for line in _layout(cue.tokens, rules)[1])

    problems = []
    for k, cue in enumerate(cues):
        limit = cues[k + 1].start - gap if k + 1 < len(cues) else float("inf")
        needed = max(rules.min_duration, characters(cue) / rules.max_cps)
        if cue.end - cue.start < needed:
            cue.end = max(cue.end, min(cue.start + needed, limit, cue.start + rules.max_duration))
        duration = cue.end - cue.start
        if duration < rules.min_duration - 1e-6:
            problems.append((k + 1, "min_duration"))
        if duration > rules.max_duration + 1e-6:
            problems.append((k + 1, "max_duration"))
        if characters(cue) / duration > rules.max_cps + 1e-6:
            problems.append((k + 1, "max_cps"))
    several = len({c.voice for c in cues}) > 1
    segments = tuple(
        Segment(
            round(c.start, 3), round(c.end, 3), "\n".join(_layout(c.tokens, rules)[1]), c.voice if several else None
        )
        for c in cues
    )
    return Subtitles(segments, ()), problems


@settings(deadline=None, max_examples=150)
@given(scripts(), st.integers(1, 6))
def test_the_streamed_build_gives_the_cues_of_the_whole_list_build(sentences: list[TimedSentence], repeat: int) -> None:
    """Sentences read one at a time, cues laid out as soon as no merge can reach them: the same
    cues and problems as merging and timing the whole list at once (the scripts repeated to
    run for minutes, so cues are settled on the way)."""
    longer, offset = [], 0.0
    for _ in range(repeat):
        for s in sentences:
            words = tuple(TimedWord(w.start + offset, w.end + offset, w.text) for w in s.words)
            longer.append(TimedSentence(s.start + offset, s.end + offset, s.text, s.voice, words))
        offset = longer[-1].end + 0.5
    streamed = build_subtitles(iter(longer))
    whole, problems = build_subtitles_whole(longer)
    assert streamed.segments == whole.segments
    assert [(p.cue, p.rule) for p in streamed.problems] == problems
