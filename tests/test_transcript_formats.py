"""TTML/DFXP, ASS/SSA, SBV, Whisper-family JSON and Audacity labels, as those tools write them.

Every expected segment below was worked out by hand from the fixture file (the arithmetic is
in the comments), not by running the reader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebatch.inputs.transcripts import Segment, Word, parse_transcript_text, read_transcript

FORMATS = Path(__file__).parent / "fixtures" / "transcripts" / "formats"


def cues(path: Path) -> list[tuple[float, float, str, str | None]]:
    return [(s.start, s.end, s.text, s.speaker) for s in read_transcript(path).segments]


EXPECTED = {
    # Aegisub: the Comment events are skipped; {\i1}, {\fad}, {\c}, {\k} blocks and a
    # {comment} go; \N, \n and \h are spaces; the drawing-only Sign event on layer 1 says nothing.
    "aegisub.ass": [
        (1.2, 4.85, "Welcome back to the workshop.", "Maya"),
        (5.1, 8.4, "Today we fix a chair, step by step.", "Maya"),
        (9.0, 12.36, "First, loosen the screws, then the legs.", "Tom"),
        (12.5, 15.02, "Gently now — no force.", "Tom"),
    ],
    # SSA v4: Marked= in the first field, styles under [V4 Styles].
    "legacy_v4.ssa": [
        (2.0, 4.5, "Hello, and welcome.", "NTP"),
        (5.25, 7.75, "This is the old format.", None),
    ],
    # ">> MAYA:" names the speaker; ">> Thanks, Maya!" is a speaker change without a name.
    "youtube.sbv": [
        (0.599, 4.16, "Welcome to the channel, this is the workshop.", None),
        (4.16, 6.77, "Today we are fixing an old chair.", "MAYA"),
        (6.77, 9.02, "Thanks, Maya!", None),
        (62.003, 65.5, "[Music]", None),
    ],
    # tickRate 10 000 000: 12512500t = 1.25125 s -> 1.251; 48548500t -> 4.855;
    # 51009375t = 5.1009375 -> 5.101; 84000000t = 8.4; ttm:agent "maya" is named Maya in the head.
    "netflix.ttml": [
        (1.251, 4.855, "Welcome back to the workshop.", "Maya"),
        (5.101, 8.4, "Today we fix a chair, step by step.", None),
        (9.0, 12.36, "First, loosen the screws.", None),
    ],
    # SMPTE time codes at 25 frames/s: 00:00:01:05 = 1 + 5/25 = 1.2; 04:12 = 4.48;
    # 08:24 = 8.96; 00:01:00:10 = 60.4.
    "ebu_tt_frames.xml": [
        (1.2, 4.48, "Welcome back to the workshop.", None),
        (5.0, 8.96, "Today we fix a chair.", None),
        (60.4, 62.0, "Step by step.", None),
    ],
    # DFXP namespace; frameRate 30: 270f = 9.0, 372f = 12.4; dur 3.3s after 5.1s = 8.4; the
    # second div begins at 20s: 1.5s -> 21.5, 2500ms -> 22.5, 00:00:03:15 = 3.5 -> 23.5,
    # 00:00:05:00 -> 25.0, 0.1m = 6 s -> 26.0, 0.11m = 6.6 s -> 26.6.
    "legacy.dfxp": [
        (1.2, 4.85, "Welcome back to the workshop.", None),
        (5.1, 8.4, "Today we fix a chair.", None),
        (9.0, 12.4, "First, loosen the screws.", None),
        (21.5, 22.5, "Then the legs.", None),
        (23.5, 25.0, "Gently & slowly.", None),
        (26.0, 26.6, "Done.", None),
    ],
    "whisper.json": [
        (0.0, 3.2, "Welcome back to the workshop.", None),
        (3.2, 6.08, "Today we fix a chair, step by step.", None),
    ],
    "whisper_no_words.json": [
        (0.0, 3.2, "Welcome back to the workshop.", None),
        (3.2, 6.08, "Today we fix a chair.", None),
    ],
    "faster_whisper_segments.json": [
        (0.0, 3.2, "Welcome back to the workshop.", None),
        (3.2, 6.08, "Today we fix a chair.", None),
    ],
    "whisperx.json": [
        (0.031, 3.204, "Welcome back to the workshop.", "SPEAKER_00"),
        (3.505, 6.108, "We opened in 1995.", "SPEAKER_01"),
    ],
    # The spectral-selection line (backslash) and the region without text are skipped.
    "audacity_labels.txt": [
        (1.2, 4.85, "Welcome back to the workshop.", None),
        (5.1, 8.4, "Today we fix a chair, step by step.", None),
        (9.0, 12.36, "First, loosen the screws.", None),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_format_reads_the_text_and_times_the_file_means(name: str) -> None:
    assert cues(FORMATS / name) == EXPECTED[name]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("aegisub.ass", "ass"),
        ("legacy_v4.ssa", "ssa"),
        ("youtube.sbv", "sbv"),
        ("netflix.ttml", "ttml"),
        ("ebu_tt_frames.xml", "ttml"),
        ("legacy.dfxp", "ttml"),
        ("whisperx.json", "json"),
        ("audacity_labels.txt", "labels"),
    ],
)
def test_the_transcript_says_which_reader_read_it(name: str, fmt: str) -> None:
    transcript = read_transcript(FORMATS / name)
    assert transcript.format == fmt
    assert transcript.timed


def test_whisper_word_times_are_kept() -> None:
    first = read_transcript(FORMATS / "whisper.json").segments[0]
    assert first.words == (
        Word(0.0, 0.42, "Welcome"),
        Word(0.42, 0.7, "back"),
        Word(0.7, 0.86, "to"),
        Word(0.86, 1.02, "the"),
        Word(1.02, 1.66, "workshop."),
    )
    assert read_transcript(FORMATS / "whisper_no_words.json").segments[0].words == ()


def test_faster_whisper_word_tuples_and_null_words() -> None:
    segments = read_transcript(FORMATS / "faster_whisper_segments.json").segments
    assert segments[0].words[0] == Word(0.0, 0.42, "Welcome")
    assert segments[0].words[-1] == Word(1.02, 1.66, "workshop.")
    assert segments[1].words == ()


def test_whisperx_keeps_an_unaligned_word_without_times() -> None:
    second = read_transcript(FORMATS / "whisperx.json").segments[1]
    assert [w.text for w in second.words] == ["We", "opened", "in", "1995."]
    assert second.words[2] == Word(4.087, 4.208, "in")
    assert second.words[3] == Word(None, None, "1995.")


def test_json_lines_of_segments(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text('{"start": 0.5, "end": 1.25, "text": " One."}\n{"start": 1.25, "end": 2, "text": " Two."}\n')
    assert cues(path) == [(0.5, 1.25, "One.", None), (1.25, 2.0, "Two.", None)]


def test_whisper_cpp_offsets_in_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "talk.json"
    path.write_text(
        json.dumps(
            {
                "result": {"language": "en"},
                "transcription": [
                    {
                        "timestamps": {"from": "00:00:00,000", "to": "00:00:02,480"},
                        "offsets": {"from": 0, "to": 2480},
                        "text": " Hello there.",
                    }
                ],
            }
        )
    )
    assert cues(path) == [(0.0, 2.48, "Hello there.", None)]


# --- .txt: what the content says ------------------------------------------------------------


def test_audacity_labels_saved_as_txt_are_never_plain_text() -> None:
    transcript = read_transcript(FORMATS / "audacity_labels.txt")
    assert transcript.timed
    assert "4.850000" not in transcript.text


def test_srt_and_sbv_saved_as_txt_are_read_as_such(tmp_path: Path) -> None:
    srt = tmp_path / "captions.txt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,500\nHello.\n")
    sbv = tmp_path / "youtube.txt"
    sbv.write_text("0:00:01.000,0:00:02.500\nHello.\n")
    assert cues(srt) == cues(sbv) == [(1.0, 2.5, "Hello.", None)]


def test_plain_text_stays_plain_even_starting_with_a_time(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("10:30 was when the train left.\nNobody was on the platform.\n")
    transcript = read_transcript(path)
    assert not transcript.timed
    assert transcript.text == "10:30 was when the train left. Nobody was on the platform."


def test_utf16_ttml_with_its_encoding_declared(tmp_path: Path) -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<tt xmlns="http://www.w3.org/ns/ttml"><body><div>'
        '<p begin="00:00:01.000" end="00:00:02.000">Grüße, café.</p></div></body></tt>\n'
    )
    path = tmp_path / "de.ttml"
    path.write_bytes(xml.encode("utf-16"))  # with a BOM, as Windows tools write it
    assert cues(path) == [(1.0, 2.0, "Grüße, café.", None)]


# --- TTML timing rules ----------------------------------------------------------------------


def ttml(body: str, params: str = "") -> list[tuple[float, float, str, str | None]]:
    text = (
        '<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" '
        f"{params}><body>{body}</body></tt>"
    )
    return [(s.start, s.end, s.text, s.speaker) for s in parse_transcript_text(text, "t.ttml", suffix=".ttml").segments]


def test_ttml_ticks_default_to_frames_times_sub_frames() -> None:
    # frameRate 25, subFrameRate 2: 50 ticks a second; 75t = 1.5 s, 150t = 3 s.
    assert ttml('<p begin="75t" end="150t">x</p>', 'ttp:frameRate="25" ttp:subFrameRate="2"') == [(1.5, 3.0, "x", None)]


def test_ttml_frame_rate_multiplier_and_sub_frames() -> None:
    # 30 × 1000/1001 = 29.97 frames/s: 00:00:10:15 = 10 + 15 / 29.97 = 10.5005 -> 10.501;
    # 00:00:11:00.1 with subFrameRate 2 = 11 + 0.5 / 29.97 = 11.01668 -> 11.017.
    params = 'ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001" ttp:subFrameRate="2"'
    assert ttml('<p begin="00:00:10:15" end="00:00:11:00.1">x</p>', params) == [(10.501, 11.017, "x", None)]


def test_ttml_smpte_drop_frame_ntsc() -> None:
    # 00:01:00;02 is the first frame of minute 1 (frames 0 and 1 are dropped): frame 1800,
    # at 30000/1001 frames/s = 60.06 s. 00:10:00:00 (no drop at minute 10): frame
    # 18000 - 2 × 9 = 17982 -> 599.9994 s.
    params = 'ttp:timeBase="smpte" ttp:dropMode="dropNTSC" ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001"'
    assert ttml('<p begin="00:01:00:02" end="00:10:00:00">x</p>', params) == [(60.06, 599.999, "x", None)]


def test_ttml_end_is_the_earlier_of_end_and_dur_and_never_past_the_parent() -> None:
    body = (
        '<div begin="10s" end="20s">'
        '<p begin="1s" end="5s" dur="2s">a</p>'  # 11 -> min(15, 13) = 13
        '<p begin="8s" end="30s">b</p>'  # 18 -> 30 clipped to the div's 20
        '<p begin="9s">c</p>'  # no end of its own: lasts as long as the div
        "</div>"
    )
    assert ttml(body) == [(11.0, 13.0, "a", None), (18.0, 20.0, "b", None), (19.0, 20.0, "c", None)]


def test_ttml_paragraph_timed_by_its_spans() -> None:
    body = '<div><p><span begin="1s" end="1.4s">Word </span><span begin="1.4s" end="2.1s">by word.</span></p></div>'
    assert ttml(body) == [(1.0, 2.1, "Word by word.", None)]


def test_ttml_skips_metadata_and_ruby_readings_inside_a_paragraph() -> None:
    body = (
        '<div><p begin="1s" end="2s" xmlns:tts="http://www.w3.org/ns/ttml#styling">'
        "<metadata>not spoken</metadata>"
        '<span tts:ruby="container"><span tts:ruby="base">漢字</span><span tts:ruby="text">かんじ</span></span>'
        "です</p></div>"
    )
    assert ttml(body) == [(1.0, 2.0, "漢字です", None)]


# --- round trips through writers we did not write ------------------------------------------

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ éüß.,!?'-", min_size=1, max_size=30).map(
    lambda s: " ".join(s.split())
)


@st.composite
def timed_texts(draw: st.DrawFn, step_ms: int = 10) -> list[tuple[int, int, str]]:
    """Cues in time order: (start ms, end ms, text), times on a ``step_ms`` grid."""
    count = draw(st.integers(1, 8))
    cues: list[tuple[int, int, str]] = []
    clock = draw(st.integers(0, 500)) * step_ms
    for _ in range(count):
        length = draw(st.integers(1, 800)) * step_ms
        text = draw(WORDS.filter(bool))
        cues.append((clock, clock + length, text))
        clock += length + draw(st.integers(0, 300)) * step_ms
    return cues


def read_back_from_pysubs2(cues_ms: list[tuple[int, int, str]], fmt: str) -> None:
    import pysubs2

    subs = pysubs2.SSAFile()
    for start, end, text in cues_ms:
        subs.append(pysubs2.SSAEvent(start=start, end=end, text=text))
    segments = parse_transcript_text(subs.to_string(fmt), f"rt.{fmt}", suffix=f".{fmt}").segments
    assert [(s.start, s.end, s.text) for s in segments] == [(a / 1000, b / 1000, t) for a, b, t in cues_ms]


@settings(max_examples=60, deadline=None)
@given(timed_texts(step_ms=10))  # ASS keeps centiseconds
def test_ass_written_by_pysubs2_reads_back(cues_ms: list[tuple[int, int, str]]) -> None:
    read_back_from_pysubs2(cues_ms, "ass")


@settings(max_examples=60, deadline=None)
@given(timed_texts(step_ms=1))
def test_ttml_written_by_pysubs2_reads_back(cues_ms: list[tuple[int, int, str]]) -> None:
    read_back_from_pysubs2(cues_ms, "ttml")


@settings(max_examples=60, deadline=None)
@given(timed_texts(step_ms=1))
def test_sbv_and_audacity_labels_as_the_tools_lay_them_out_read_back(cues_ms: list[tuple[int, int, str]]) -> None:
    def sbv_time(ms: int) -> str:
        return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    sbv = "\n".join(f"{sbv_time(a)},{sbv_time(b)}\n{t}\n" for a, b, t in cues_ms)
    labels = "".join(f"{a / 1000:.6f}\t{b / 1000:.6f}\t{t}\n" for a, b, t in cues_ms)
    expected = [(a / 1000, b / 1000, t) for a, b, t in cues_ms]
    for text, suffix in ((sbv, ".sbv"), (labels, ".txt")):
        segments = parse_transcript_text(text, f"rt{suffix}", suffix=suffix).segments
        assert [(s.start, s.end, s.text) for s in segments] == expected


@settings(max_examples=60, deadline=None)
@given(timed_texts(step_ms=1), st.booleans())
def test_our_json_reads_back_with_words(cues_ms: list[tuple[int, int, str]], with_words: bool) -> None:
    from voicebatch.inputs.transcripts.writers import to_json

    segments = [
        Segment(
            a / 1000,
            b / 1000,
            t,
            None,
            tuple(Word(a / 1000, b / 1000, w) for w in t.split()) if with_words else (),
        )
        for a, b, t in cues_ms
    ]
    assert list(parse_transcript_text(to_json(segments), "rt.json", suffix=".json").segments) == segments


# --- the command, as the acceptance runs it -------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcripts_convert_to_json_for_every_format(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", "transcripts", "convert", str(FORMATS / name), "--to", "json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["start"], r["end"], r["text"], r.get("speaker")) for r in rows] == EXPECTED[name]


def test_transcripts_convert_ass_to_srt_and_stdin_detection() -> None:
    srt = subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", "transcripts", "convert", str(FORMATS / "aegisub.ass"), "--to", "srt"],
        capture_output=True,
        text=True,
    )
    assert srt.returncode == 0, srt.stderr
    assert "00:00:01,200 --> 00:00:04,850\nWelcome back to the workshop.\n" in srt.stdout
    piped = subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", "transcripts", "convert", "-", "--to", "json"],
        input=(FORMATS / "legacy.dfxp").read_text(),
        capture_output=True,
        text=True,
    )
    assert piped.returncode == 0, piped.stderr
    assert [r["start"] for r in json.loads(piped.stdout)] == [1.2, 5.1, 9.0, 21.5, 23.5, 26.0]
