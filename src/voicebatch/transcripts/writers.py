"""Writing segments as SRT (pysrt), WebVTT (webvtt-py), CSV (pandas), JSON and text."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from voicebatch.transcripts.markup import escape_vtt_text
from voicebatch.transcripts.segment import Segment
from voicebatch.transcripts.timestamps import format_vtt_timestamp


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
    import webvtt

    document = webvtt.WebVTT()
    for s in segments:
        text = escape_vtt_text(s.text)
        if s.speaker:
            text = f"<v {escape_vtt_text(s.speaker)}>{text}"
        document.captions.append(
            webvtt.Caption(start=format_vtt_timestamp(s.start), end=format_vtt_timestamp(s.end), text=text)
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


def to_json(segments: Sequence[Segment]) -> str:
    rows = []
    for s in segments:
        row: dict[str, object] = {"start": s.start, "end": s.end, "text": s.text}
        if s.speaker:
            row["speaker"] = s.speaker
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"


def to_txt(segments: Sequence[Segment]) -> str:
    return "".join(f"{s.text}\n" for s in segments)
