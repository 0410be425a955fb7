"""Every real-world quirk has a fixture named by it, and parses to the segments it means."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebatch.inputs.transcripts import Segment, read_transcript

QUIRKS = Path(__file__).parent / "fixtures" / "transcripts" / "quirks"
HELLO = (Segment(1.0, 2.5, "Hello there."), Segment(3.0, 4.0, "General Kenobi."))


@pytest.mark.parametrize(
    "name",
    [
        "utf8_bom.srt",
        "utf16_bom.srt",
        "crlf_line_endings.srt",
        "numbering_gaps.srt",
        "no_trailing_blank_line.srt",
        "no_cue_numbers.srt",
        "note_style_region_blocks.vtt",
        "cue_identifiers_and_settings.vtt",
        "timestamps_without_hours.vtt",
        "start_end_text_header.csv",
        "start_time_end_time_transcript_header.csv",
        "clock_times_mm_ss.csv",
        "semicolons_decimal_commas.csv",
        "no_header_row.csv",
        "milliseconds_header.csv",
        "blank_rows.csv",
    ],
)
def test_quirk_parses_to_the_same_two_segments(name: str) -> None:
    assert read_transcript(QUIRKS / name).segments == HELLO


def test_encoding_rule_reads_cp1252_as_windows_1252() -> None:
    transcript = read_transcript(QUIRKS / "cp1252_smart_quotes.srt")
    assert transcript.encoding == "cp1252"
    assert transcript.segments[0].text == "“Café” – déjà vu…"


def test_encoding_rule_falls_back_to_latin1_for_bytes_cp1252_leaves_undefined() -> None:
    transcript = read_transcript(QUIRKS / "latin1_undefined_cp1252_byte.srt")
    assert transcript.encoding == "latin-1"
    assert transcript.segments[0].text.startswith("Naïve") and transcript.segments[0].text.endswith("résumé")


def test_encoding_rule_bom_wins() -> None:
    assert read_transcript(QUIRKS / "utf8_bom.srt").encoding == "utf-8-sig"
    assert read_transcript(QUIRKS / "utf16_bom.srt").encoding == "utf-16"


def test_dot_before_milliseconds_and_short_fraction() -> None:
    assert read_transcript(QUIRKS / "dot_before_milliseconds.srt").segments == (HELLO[0],)


def test_tags_ass_overrides_and_entities_are_removed_lines_joined() -> None:
    (segment,) = read_transcript(QUIRKS / "tags_and_entities.srt").segments
    assert segment.text == 'Fish & chips "to go"'


def test_blank_line_inside_a_cue_keeps_the_text_in_that_cue() -> None:
    segments = read_transcript(QUIRKS / "blank_line_inside_cue.srt").segments
    assert [s.text for s in segments] == ["First line second line.", "Next."]


def test_vtt_voice_spans_give_speakers_and_classes_are_stripped() -> None:
    segments = read_transcript(QUIRKS / "voice_spans_and_classes.vtt").segments
    assert segments == (
        Segment(1.0, 2.5, "Hello there.", "Roger Bingham"),
        Segment(3.0, 4.0, "General <Kenobi>.", "Obi-Wan"),
    )


def test_youtube_auto_captions_are_deduplicated() -> None:
    segments = read_transcript(QUIRKS / "youtube_auto_captions.vtt").segments
    assert [s.text for s in segments] == ["so today we are talking", "about sound waves", "and echoes"]
    assert [(s.start, s.end) for s in segments] == [(0.0, 2.35), (2.36, 4.71), (4.72, 6.0)]
    spoken = " ".join(s.text for s in segments).split()
    assert len(spoken) == len(set(spoken)), "a word was repeated"


def test_repeated_single_line_cues_of_normal_length_are_kept() -> None:
    from voicebatch.inputs.transcripts import parse_transcript_text

    text = "WEBVTT\n\n00:01.000 --> 00:02.000\nYes.\n\n00:03.000 --> 00:04.000\nYes.\n"
    assert len(parse_transcript_text(text, "t.vtt", suffix=".vtt").segments) == 2


def test_whisper_tsv_integer_milliseconds() -> None:
    segments = read_transcript(QUIRKS / "whisper.tsv").segments
    assert segments == (Segment(0.0, 1.52, "Hello there."), Segment(1.52, 4.0, "General Kenobi."))


def test_csv_speaker_column() -> None:
    segments = read_transcript(QUIRKS / "speaker_column.csv").segments
    assert [(s.speaker, s.text) for s in segments] == [("Obi-Wan", "Hello there."), ("Grievous", "General Kenobi.")]


def test_csv_quoted_fields_with_commas_and_quotes() -> None:
    segments = read_transcript(QUIRKS / "quoted_commas_and_quotes.csv").segments
    assert [s.text for s in segments] == ["Hello, there.", 'He said "General Kenobi", twice.']


def test_plain_text_has_no_timings() -> None:
    transcript = read_transcript(QUIRKS / "plain_paragraphs.txt")
    assert not transcript.timed and transcript.segments == ()
    assert transcript.text == "Hello there. General Kenobi."


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("01:02:03,456", 3723.456), ("02:03.5", 123.5), ("7", 7.0), ("7,25", 7.25), ("0:00:00.0004", 0.0)],
)
def test_timestamp_forms(value: str, seconds: float) -> None:
    from voicebatch.inputs.transcripts.timestamps import parse_timestamp

    assert parse_timestamp(value) == seconds
