"""Round trips (write -> parse gives the same segments) and parse-back by pysrt / webvtt-py."""

from __future__ import annotations

import io

import pysrt
import webvtt
from hypothesis import given
from hypothesis import strategies as st

from voicebatch.inputs.transcripts import Segment, parse_transcript_text
from voicebatch.inputs.transcripts.writers import to_csv, to_srt, to_vtt

# Spoken text: words of letters (accents and CJK too), digits and punctuation. SRT has no
# escaping, so its alphabet leaves out markup characters; VTT and CSV take them.
_PLAIN = st.characters(codec="utf-8", categories=("L", "N"), exclude_characters="\x00")
_PUNCT = st.sampled_from(list(".,;:!?'\"-()…"))
_MARKUP = st.sampled_from(list("&<>"))


def _texts(extra: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    chars = st.one_of(_PLAIN, _PUNCT) if extra is None else st.one_of(_PLAIN, _PUNCT, extra)
    word = st.text(chars, min_size=1, max_size=8)
    return st.lists(word, min_size=1, max_size=8).map(" ".join)


def _segments(text: st.SearchStrategy[str], speakers: bool = False) -> st.SearchStrategy[list[Segment]]:
    speaker = st.one_of(st.none(), st.sampled_from(["Ann", "Bo Lee"])) if speakers else st.none()
    # Cues last at least 100 ms: a shorter cue repeating the line before it is YouTube's
    # roll-up "flash" cue, which the VTT reader drops by design.
    item = st.tuples(st.integers(0, 5000), st.integers(100, 9000), text, speaker)

    def build(items: list[tuple[int, int, str, str | None]]) -> list[Segment]:
        segments, t = [], 0
        for gap, length, words, who in items:
            start, t = t + gap, t + gap + length
            segments.append(Segment(start / 1000, t / 1000, words, who))
        return segments

    return st.lists(item, min_size=1, max_size=12).map(build)


@given(_segments(_texts()))
def test_srt_round_trip(segments: list[Segment]) -> None:
    assert list(parse_transcript_text(to_srt(segments), "t.srt", suffix=".srt").segments) == segments


@given(_segments(_texts(_MARKUP), speakers=True))
def test_vtt_round_trip_with_markup_characters_and_speakers(segments: list[Segment]) -> None:
    assert list(parse_transcript_text(to_vtt(segments), "t.vtt", suffix=".vtt").segments) == segments


@given(_segments(_texts(st.sampled_from(list('&<>;,"|'))), speakers=True))
def test_csv_round_trip(segments: list[Segment]) -> None:
    assert list(parse_transcript_text(to_csv(segments), "t.csv", suffix=".csv").segments) == segments


@given(_segments(_texts()))
def test_srt_to_vtt_to_srt(segments: list[Segment]) -> None:
    via_vtt = parse_transcript_text(to_vtt(segments), "t.vtt", suffix=".vtt").segments
    back = parse_transcript_text(to_srt(via_vtt), "t.srt", suffix=".srt").segments
    assert list(back) == segments


@given(_segments(_texts()))
def test_our_srt_parses_with_pysrt(segments: list[Segment]) -> None:
    items = pysrt.from_string(to_srt(segments), error_handling=pysrt.ERROR_RAISE)
    assert [(i.start.ordinal, i.end.ordinal, i.text) for i in items] == [
        (round(s.start * 1000), round(s.end * 1000), s.text) for s in segments
    ]


@given(_segments(_texts(_MARKUP)))
def test_our_vtt_parses_with_webvtt_py(segments: list[Segment]) -> None:
    captions = webvtt.from_buffer(io.StringIO(to_vtt(segments))).captions
    assert [
        (c.start_in_seconds * 1000 + int(c.start[-3:]), c.end_in_seconds * 1000 + int(c.end[-3:])) for c in captions
    ] == [(round(s.start * 1000), round(s.end * 1000)) for s in segments]
    assert len(captions) == len(segments)
