"""Writing segments as SRT (pysrt), WebVTT (webvtt-py), CSV (pandas), JSON and text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from voicebatch.inputs.transcripts.markup import escape_vtt_text
from voicebatch.inputs.transcripts.segment import Segment
from voicebatch.inputs.transcripts.timestamps import format_vtt_timestamp


def to_srt(segments: Sequence[Segment]) -> str:
    import pysrt

    items = pysrt.SubRipFile(
        items=[
            pysrt.SubRipItem(
                index=i,
                start=pysrt.SubRipTime(milliseconds=round(s.start * 1000)),
                end=pysrt.SubRipTime(milliseconds=round(s.end * 1000)),
                text=s.text,
            )
            for i, s in enumerate(segments, start=1)
        ]
    )
    buffer = io.StringIO()
    items.write_into(buffer, eol="\n")
    return buffer.getvalue()


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT with cue ids (1, 2, ... as in the SRT) and a ``<v Speaker>`` span on every line
    of a cue whose segment names a speaker."""
    import webvtt

    document = webvtt.WebVTT()
    for number, s in enumerate(segments, start=1):
        lines = [escape_vtt_text(line) for line in s.text.split("\n")]
        if s.speaker:
            lines = [f"<v {escape_vtt_text(s.speaker)}>{line}</v>" for line in lines]
        document.captions.append(
            webvtt.Caption(
                start=format_vtt_timestamp(s.start),
                end=format_vtt_timestamp(s.end),
                text="\n".join(lines),
                identifier=str(number),
            )
        )
    return document.content


def to_csv(segments: Sequence[Segment]) -> str:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "start": [f"{s.start:.3f}" for s in segments],
            "end": [f"{s.end:.3f}" for s in segments],
            "text": [s.text for s in segments],
        }
    )
    if any(s.speaker for s in segments):
        frame["speaker"] = [s.speaker or "" for s in segments]
    return frame.to_csv(index=False, lineterminator="\n")


def to_timing_csv(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> str:
    """The timing table: ``columns`` in order, seconds with three decimals, booleans as
    ``true``/``false`` (what spreadsheets and JSON readers expect, not Python's True)."""
    buffer = io.StringIO()
    write_timing_csv(rows, columns, buffer)
    return buffer.getvalue()


def write_timing_csv(rows: Iterable[Mapping[str, object]], columns: Sequence[str], out: TextIO) -> None:
    """``to_timing_csv`` into a text file, row by row (a book's table is never one string)."""
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def to_json(segments: Sequence[Segment]) -> str:
    rows = []
    for s in segments:
        row: dict[str, object] = {"start": s.start, "end": s.end, "text": s.text}
        if s.speaker:
            row["speaker"] = s.speaker
        if s.words:  # a recogniser's word times (Whisper JSON) pass through
            row["words"] = [{"start": w.start, "end": w.end, "text": w.text} for w in s.words]
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"


def to_txt(segments: Sequence[Segment]) -> str:
    return "".join(f"{s.text}\n" for s in segments)
