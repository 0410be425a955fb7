"""CSV / TSV transcripts (spreadsheets, whisper's TSV) read with pandas.

Columns are found by header name, case, spaces and punctuation ignored:

- start: start, start time, begin, from, in, start seconds, start ms, ...
- end:   end, end time, stop, to, out, end seconds, end ms, ...
- text:  text, transcript, transcription, caption, subtitle, sentence, content, utterance
- speaker (optional): speaker, voice, character, name

A file whose first row already holds two timestamps has no header: its columns are
start, end, text. Times are clock times (``HH:MM:SS.mmm``, ``MM:SS.mmm``) or plain seconds,
with '.' or ',' as the decimal mark (``;``-separated files from European spreadsheets).
They are milliseconds when the header says so (``start_ms``, ``Start (ms)``) and in a
``.tsv`` whose times are all whole numbers (whisper's TSV writes integer milliseconds).
"""

from __future__ import annotations

import csv
import io
import re

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.segment import Segment
from voicebatch.inputs.transcripts.timestamps import parse_milliseconds, parse_timestamp

_START = {"start", "starttime", "begin", "begintime", "from", "in", "timein", "startseconds", "starts", "tstart"}
_END = {"end", "endtime", "stop", "stoptime", "to", "out", "timeout", "endseconds", "ends", "tend"}
_TEXT = {"text", "transcript", "transcription", "caption", "subtitle", "sentence", "content", "utterance", "line"}
_SPEAKER = {"speaker", "voice", "character", "name", "speakername"}
_MS_SUFFIX = re.compile(r"(ms|milliseconds|millis)$")
_SEPARATORS = ",;\t|"


def parse_table(text: str, path: str, *, tsv: bool) -> list[Segment]:
    import pandas as pd  # heavy: imported only when a table is read

    sep = "\t" if tsv else _sniff_separator(text)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            header=None,
            engine="python",
            skip_blank_lines=True,
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, csv.Error) as e:
        raise TranscriptError(path, f"not a readable table: {_first_line(e)}") from e
    # Short rows come back padded with NaN: read those as empty cells.
    rows = [
        [cell.strip() if isinstance(cell, str) else "" for cell in row]
        for row in frame.itertuples(index=False, name=None)
    ]
    if not rows:
        raise TranscriptError(path, "the table has no rows")
    header, body, first_row = _split_header(rows)
    columns = _find_columns(header, path)
    in_ms = {key: _is_ms(header, columns[key]) for key in ("start", "end")}
    if tsv and header is not None and not any(in_ms.values()):
        # whisper writes integer milliseconds; a TSV of whole numbers only is read so.
        numbers = [row[columns[k]] for row in body for k in ("start", "end")]
        if numbers and all(n.isdigit() for n in numbers):
            in_ms = {"start": True, "end": True}
    segments = []
    for number, row in enumerate(body, start=first_row):
        segment = _row_segment(row, columns, in_ms, path, f"row {number}")
        if segment is not None:
            segments.append(segment)
    if not segments:
        raise TranscriptError(path, "no row with text")
    return segments


def _sniff_separator(text: str) -> str:
    sample = "\n".join(text.split("\n")[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=_SEPARATORS).delimiter
    except csv.Error:
        return ","


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _looks_like_time(cell: str) -> bool:
    try:
        parse_timestamp(cell)
    except ValueError:
        return False
    return True


def _split_header(rows: list[list[str]]) -> tuple[list[str] | None, list[list[str]], int]:
    first = rows[0]
    if len(first) >= 3 and _looks_like_time(first[0]) and _looks_like_time(first[1]):
        return None, rows, 1
    return first, rows[1:], 2


def _find_columns(header: list[str] | None, path: str) -> dict[str, int]:
    if header is None:
        return {"start": 0, "end": 1, "text": 2}
    names = [_normalise(_MS_SUFFIX.sub("", _normalise(h))) for h in header]
    columns: dict[str, int] = {}
    for key, accepted in (("start", _START), ("end", _END), ("text", _TEXT), ("speaker", _SPEAKER)):
        for index, name in enumerate(names):
            if name in accepted and index not in columns.values():
                columns[key] = index
                break
    for key, accepted in (("text", _TEXT), ("start", _START), ("end", _END)):
        if key not in columns:
            # The header's own cells are not quoted: a message never carries a file's content.
            raise TranscriptError(
                path,
                f"no {key} column (expected a header such as {', '.join(sorted(accepted)[:4])}; "
                f"none of the {len(header)} columns is named so)",
                where="row 1",
            )
    return columns


def _is_ms(header: list[str] | None, index: int) -> bool:
    return header is not None and bool(_MS_SUFFIX.search(_normalise(header[index])))


def _row_segment(
    row: list[str], columns: dict[str, int], in_ms: dict[str, bool], path: str, where: str
) -> Segment | None:
    if len(row) <= max(columns.values()):
        raise TranscriptError(path, f"{len(row)} fields, expected at least {max(columns.values()) + 1}", where=where)
    text = " ".join(row[columns["text"]].split())
    if not text and not row[columns["start"]]:
        return None  # a blank spreadsheet row
    times = {}
    for key in ("start", "end"):
        cell = row[columns[key]]
        try:
            times[key] = parse_milliseconds(cell) if in_ms[key] else parse_timestamp(cell)
        except ValueError:
            raise TranscriptError(
                path, f"garbled {key} time (expected seconds, HH:MM:SS.mmm or milliseconds)", where=where
            ) from None
    if times["end"] < times["start"]:
        raise TranscriptError(
            path, f"end ({row[columns['end']]}) is before start ({row[columns['start']]})", where=where
        )
    if not text:
        return None
    speaker = row[columns["speaker"]].strip() or None if "speaker" in columns else None
    return Segment(times["start"], times["end"], text, speaker)


def _first_line(error: Exception) -> str:
    return str(error).strip().split("\n")[0]
