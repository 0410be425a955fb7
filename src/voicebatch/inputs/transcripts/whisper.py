"""Speech-recogniser JSON: Whisper, faster-whisper, WhisperX, whisper.cpp, and our own ``--to json``.

Shapes read (found by content, whatever the file is called):

- ``{"segments": [{"start", "end", "text", "words"?, "speaker"?}, ...], ...}``: openai-whisper's
  ``--output_format json``, WhisperX's JSON (its ``word_segments`` repeat the segments' words
  and are not read), stable-ts;
- ``[{"start", "end", "text", "words"?}, ...]``: a dump of faster-whisper's segments
  (``json.dump([s._asdict() for s in segments])`` or dataclasses) and voicebatch's own
  ``transcripts convert --to json``; the same objects one per line (JSON Lines) also work;
- ``{"transcription": [{"offsets": {"from", "to"}, "text"}, ...]}``: whisper.cpp's ``-oj``
  (offsets in milliseconds).

Times are seconds. A segment's ``words`` keep their times when they have them: objects
``{"word" or "text", "start", "end"}`` or faster-whisper's ``[start, end, word, probability]``
(a Word named tuple that ``_asdict()`` leaves as a list). WhisperX leaves words it could not
align (numbers, symbols) without times: they are kept, untimed. Errors name the segment
(``segment 3``: 1-based, in file order) or, for JSON that does not parse, the line. The
standard library's json reads the file; the shapes are checked here (no schema library fits
these loosely specified dumps).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.segment import Segment, Word

_SHAPES = "a Whisper-style JSON transcript ({'segments': [{start, end, text}, ...]} or a list of such segments)"


def parse_whisper_json(text: str, path: str) -> list[Segment]:
    document = _load(text, path)
    items = _segment_list(document, path)
    segments = []
    for number, item in enumerate(items, start=1):
        segment = _segment(item, path, f"segment {number}")
        if segment is not None:
            segments.append(segment)
    if not segments:
        raise TranscriptError(path, "no segment with text")
    return segments


def _load(text: str, path: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        lines = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
        if first.msg != "Extra data" or len(lines) < 2:
            raise TranscriptError(path, f"not valid JSON: {first.msg}", where=f"line {first.lineno}") from None
    rows = []  # JSON Lines: one segment per line
    for number, line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise TranscriptError(path, f"not valid JSON: {e.msg}", where=f"line {number}") from None
    return rows


def _segment_list(document: object, path: str) -> list[object]:
    if isinstance(document, Mapping):
        if isinstance(document.get("segments"), list):
            return document["segments"]
        if isinstance(document.get("transcription"), list):
            return [_whisper_cpp(item) for item in document["transcription"]]
        raise TranscriptError(path, f"no 'segments' list in the JSON object; expected {_SHAPES}")
    if isinstance(document, list):
        return document
    raise TranscriptError(path, f"the JSON holds a {type(document).__name__}; expected {_SHAPES}")


def _whisper_cpp(item: object) -> object:
    if isinstance(item, Mapping) and isinstance(item.get("offsets"), Mapping):
        offsets = item["offsets"]
        start, end = offsets.get("from"), offsets.get("to")
        if _is_number(start) and _is_number(end):
            return {"start": start / 1000, "end": end / 1000, "text": item.get("text")}
    return item


def _segment(item: object, path: str, where: str) -> Segment | None:
    if not isinstance(item, Mapping):
        raise TranscriptError(path, f"expected an object with start, end and text, found a {_kind(item)}", where=where)
    text = item.get("text")
    if not isinstance(text, str):
        raise TranscriptError(path, "no 'text' string", where=where)
    start, end = _seconds(item, "start", path, where), _seconds(item, "end", path, where)
    if end < start:
        raise TranscriptError(path, "'end' is before 'start'", where=where)
    spoken = " ".join(text.split())
    if not spoken:
        return None
    speaker = item.get("speaker")
    words = _words(item.get("words"), path, where)
    return Segment(round(start, 3), round(end, 3), spoken, speaker if isinstance(speaker, str) else None, words)


def _seconds(item: Mapping, key: str, path: str, where: str) -> float:
    value = item.get(key)
    if value is None:
        raise TranscriptError(path, f"no '{key}' time", where=where)
    if not _is_number(value) or value < 0:
        raise TranscriptError(path, f"'{key}' must be a number of seconds, 0 or more", where=where)
    return float(value)


def _words(raw: object, path: str, where: str) -> tuple[Word, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TranscriptError(path, "'words' must be a list", where=where)
    words = []
    for number, item in enumerate(raw, start=1):
        word = _word(item)
        if word is None:
            raise TranscriptError(
                path,
                f"word {number} is neither {{word, start, end}} nor [start, end, word, probability]",
                where=where,
            )
        if word.text:
            words.append(word)
    return tuple(words)


def _word(item: object) -> Word | None:
    if isinstance(item, Mapping):
        text = item.get("word", item.get("text"))
        start, end = item.get("start"), item.get("end")
    elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) >= 3:
        start, end, text = item[0], item[1], item[2]
    else:
        return None
    if not isinstance(text, str):
        return None
    if start is None and end is None:
        return Word(None, None, text.strip())
    if not (_is_number(start) and _is_number(end)) or end < start:
        return None
    return Word(round(float(start), 3), round(float(end), 3), text.strip())


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
