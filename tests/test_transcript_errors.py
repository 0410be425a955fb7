"""Every broken-file kind gets ONE line naming the file, the line or row, and the flaw."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebatch.inputs.transcripts import TranscriptError, read_transcript

BROKEN = Path(__file__).parent / "fixtures" / "transcripts" / "broken"


@pytest.mark.parametrize(
    ("name", "where", "says"),
    [
        ("empty.srt", None, "empty"),
        ("whitespace_only.vtt", None, "empty"),
        ("binary_data.srt", None, "binary"),
        ("end_before_start.srt", "line 6", "before it starts"),
        ("garbled_timestamp.srt", "line 6", "garbled end timestamp (expected HH:MM:SS,mmm)"),
        ("seconds_over_59.srt", "line 2", "garbled start timestamp"),
        ("missing_timing_line.srt", "line 1", "expected a cue timing"),
        ("missing_webvtt_header.vtt", "line 1", "starts with 'WEBVTT'"),
        ("garbled_timestamp.vtt", "line 6", "garbled end timestamp"),
        ("no_text_column.csv", "row 1", "no text column"),
        ("no_start_column.csv", "row 1", "no start column"),
        ("garbled_time.csv", "row 3", "garbled start time"),
        ("end_before_start.csv", "row 3", "end (4.0) is before start (5.0)"),
        ("header_only.csv", None, "no row"),
        ("cues_without_text.srt", None, "no cue with text"),
        ("garbled_begin_time.ttml", "line 6", "<p> begin is not a TTML time"),
        ("p_without_end.ttml", "line 6", "<p> has no end or dur"),
        ("entity_expansion.ttml", "line 2", "document type declaration"),
        ("mismatched_tags.dfxp", "line 6", "not well-formed XML"),
        ("not_ttml_root.xml", "line 2", "root element is <transcript>, expected <tt>"),
        ("dialogue_cut_short.ass", "line 7", "Dialogue has 4 fields, the Format line names 10"),
        ("garbled_start_time.ass", "line 7", "Dialogue Start is not a time"),
        ("no_events_section.ass", None, "no [Events] section"),
        ("garbled_timing.sbv", "line 4", "expected a cue timing"),
        ("truncated.json", "line 3", "not valid JSON"),
        ("segment_without_end.json", "segment 2", "no 'end' time"),
        ("no_segments_list.json", None, "no 'segments' list"),
        ("point_label.txt", "line 2", "a point label (start = end)"),
        ("youtube_transcript_copy.txt", "line 1", "lines start with times, but in no layout"),
    ],
)
def test_broken_file_gives_one_line_naming_file_place_and_flaw(name: str, where: str | None, says: str) -> None:
    path = BROKEN / name
    with pytest.raises(TranscriptError) as caught:
        read_transcript(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    if where:
        assert f": {where}: " in message
    assert says in message


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "notes.docx"
    odd.write_text("x")
    with pytest.raises(TranscriptError, match=r"unknown transcript type '\.docx'"):
        read_transcript(odd)
    with pytest.raises(TranscriptError, match="cannot read"):
        read_transcript(tmp_path / "missing.srt")


@pytest.mark.parametrize(
    "name",
    [
        "garbled_begin_time.ttml",
        "garbled_start_time.ass",
        "garbled_timing.sbv",
        "truncated.json",
        "segment_without_end.json",
    ],
)
def test_errors_name_the_place_not_the_words_there(name: str) -> None:
    # A transcript may hold what nobody else should read: the error says where, never what.
    with pytest.raises(TranscriptError) as caught:
        read_transcript(BROKEN / name)
    assert "Secret" not in str(caught.value)


def test_entities_are_never_expanded_nor_external_files_read(tmp_path: Path) -> None:
    # No DOCTYPE at all: an undeclared entity is an error, not a lookup.
    path = tmp_path / "sneaky.ttml"
    path.write_text(
        '<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="1s" end="2s">&passwd;</p></div></body></tt>'
    )
    with pytest.raises(TranscriptError, match="not well-formed XML"):
        read_transcript(path)


SECRET = "hunter2-secret"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.vtt", f"{SECRET}\n\n00:00:01.000 --> 00:00:02.000\nHi.\n"),
        ("b.srt", f"1\n{SECRET} --> 00:00:02,000\nHi.\n"),
        ("c.srt", f"{SECRET}\n{SECRET}\n"),
        ("d.srt", f"1\n00:00:01,000 -->{SECRET}\nHi.\n"),
        ("e.csv", f"{SECRET},{SECRET}\n1,2\n"),
        ("f.csv", f"start,end,text\n{SECRET},2,Hi.\n"),
    ],
)
def test_a_transcript_error_names_the_place_never_the_content(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(TranscriptError) as caught:
        read_transcript(tmp_path / name)
    assert SECRET not in str(caught.value) and str(caught.value).startswith(str(tmp_path / name))
