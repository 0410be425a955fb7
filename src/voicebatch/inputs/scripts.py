"""Scripts (the text to speak) from a directory, validated, then split into chunks.

- ``.txt`` / ``.md``: one script per file, id = file stem, optional YAML front matter
  (``voice:``, ``speed:``) between ``---`` lines;
- ``.jsonl``: one script per line: ``{"id", "voice", "text", "speed"?}``;
- ``.csv``: one script per row, columns ``id, voice, text[, speed]``;
- ``.docx`` / ``.html`` / ``.htm`` / ``.ssml``: one script per document, id = file stem, turned
  into the same text and markup (``voicebatch.inputs.documents``); their errors name the paragraph;
- ``.srt`` / ``.vtt`` / ``.ttml`` / ``.dfxp`` / ``.ass`` / ``.ssa`` / ``.sbv``: a timed script, id =
  file stem, each cue spoken inside its time slot (``voicebatch.inputs.timed_scripts``); errors name the cue.

``[voice]`` tags switch voice mid-script, as F5-TTS's own CLI does; ``[voice speed=0.9
lang=de]`` also sets that part's speed and language. Pause and speed markup and paragraph
breaks (blank lines) stay in the text; chunking reads them (``voicebatch.text.markup``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import ScriptError
from voicebatch.inputs.chunking import (
    Chunk,
    Piece,
    join_sentences,
    max_chunk_bytes,
    pack_pieces,
    part_pieces,
    split_long_pieces,
)
from voicebatch.inputs.documents import DOCUMENT_SUFFIXES
from voicebatch.inputs.timed_scripts import TIMED_SUFFIXES
from voicebatch.locations.names import key_name_problem
from voicebatch.text.markup import DEFAULT_PAUSES, PauseRules, find_markup_problem, strip_markup
from voicebatch.text.normalize import language_problem, normalize
from voicebatch.text.spoken import DEFAULT_SPOKEN_FORM, SpokenForm

if TYPE_CHECKING:
    from voicebatch.inputs.transcripts import Segment
    from voicebatch.inputs.vocab import Vocabulary
from voicebatch.inputs.script_files import QUOTES, RawScript, read_script_file

_Fail = Callable[..., ScriptError]  # builds the one-line error for the script at hand


SCRIPT_SUFFIXES = (".txt", ".md", ".jsonl", ".csv", *DOCUMENT_SUFFIXES, *TIMED_SUFFIXES)


# A whole book is one script: about 90 hours of narration. The cap only stops a
# runaway input (a mis-saved binary, a concatenated corpus) before it is chunked.
MAX_SCRIPT_CHARS = 5_000_000


MIN_SPEED, MAX_SPEED = 0.5, 2.0


# [voice] or [voice speed=0.9 lang=de]; [pause ...] and [speed ...] are markup, not voices.
_TAG = re.compile(r"\[(?!(?:pause|speed)[\s\]])([A-Za-z0-9][A-Za-z0-9._-]*)((?:\s+[A-Za-z]+=[^\s\]]*)*)\s*\]")


_PARAGRAPH = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True, slots=True)
class ScriptPart:
    voice: str
    text: str  # as written, with markup; paragraphs separated by a blank line
    speed: float = 1.0  # the voice tag's speed= (multiplies the script's)
    lang: str | None = None  # the voice tag's lang= (else the run's language)


@dataclass(frozen=True, slots=True)
class Script:
    id: str
    source: str  # file it came from (and item / row)
    parts: tuple[ScriptPart, ...]
    speed: float = 1.0
    warnings: tuple[str, ...] = ()  # what a document asked for and could not get (SSML)
    cues: tuple[Segment, ...] = ()  # a timed script's source cues, one a part (empty: not timed)

    @property
    def voices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.voice for p in self.parts))

    @property
    def text(self) -> str:
        """The script as written, voice tags included: what the cache key hashes."""
        if self.cues:
            from voicebatch.inputs.timed_scripts import timed_text

            return timed_text(self.parts, self.cues, _attributes)
        return " ".join(f"[{p.voice}{_attributes(p)}] {p.text}" for p in self.parts)


def _attributes(part: ScriptPart) -> str:
    return (f" speed={part.speed:g}" if part.speed != 1.0 else "") + (f" lang={part.lang}" if part.lang else "")


def load_scripts(
    directory: str | Path,
    voices: Iterable[str] | None = None,
    vocab: Vocabulary | None = None,
    max_chars: int = MAX_SCRIPT_CHARS,
) -> tuple[list[Script], list[ScriptError]]:
    """Every script of a directory; a bad script is reported and never stops the others."""
    root = Path(directory)
    if not root.is_dir():
        raise ScriptError(root, "not a directory of scripts")
    known = set(voices) if voices is not None else None
    scripts: list[Script] = []
    problems: list[ScriptError] = []
    seen: dict[str, str] = {}
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SCRIPT_SUFFIXES):
        try:
            raws = list(read_script_file(path))
        except ScriptError as e:
            problems.append(e)
            continue
        for raw in raws:
            if isinstance(raw, ScriptError):  # one bad line or row of a .jsonl / .csv: the others go on
                problems.append(raw)
                continue
            try:
                script = _validate(raw, known, vocab, max_chars)
                if script.id in seen:
                    raise ScriptError(
                        raw.source, f"script id {script.id!r} already used by {seen[script.id]}", where=raw.where
                    )
            except ScriptError as e:
                problems.append(e)
                continue
            seen[script.id] = raw.source
            scripts.append(script)
    return scripts, problems


def load_script_file(
    path: str | Path, voices: Iterable[str] | None = None, vocab: Vocabulary | None = None
) -> list[Script]:
    """The scripts of one file; raises ``ScriptError`` on the first problem."""
    known = set(voices) if voices is not None else None
    scripts = []
    for raw in read_script_file(Path(path)):
        if isinstance(raw, ScriptError):
            raise raw
        scripts.append(_validate(raw, known, vocab, MAX_SCRIPT_CHARS))
    return scripts


def script_label(problem: ScriptError) -> str:
    """What a problem is about, as a name for tables and reports: the file, and the item or
    row when the file holds many scripts (``lines.jsonl item 3``)."""
    name = Path(problem.path).name
    return f"{name} {problem.where}" if problem.where and problem.where.startswith(("item", "row")) else name


def chunk_script(
    script: Script,
    references: Mapping[str, tuple[str, float]],
    *,
    spoken: SpokenForm = DEFAULT_SPOKEN_FORM,
    pauses: PauseRules = DEFAULT_PAUSES,
) -> list[Chunk]:
    """Chunks of a script; ``references`` maps voice -> (reference text, reference seconds).

    F5-TTS is given the spoken form (``spoken``); the chunk keeps the written sentences for
    subtitles. A chunk never spans a paragraph, a pause, a speed change or a voice change;
    with a sentence pause it holds one sentence (or a piece of one too long to speak at once).
    A timed script has one chunk a cue, at the rate that fits it (``voicebatch.inputs.timed_plan``)."""
    if script.cues:
        from voicebatch.inputs.timed_plan import plan_timed

        return list(plan_timed(script, references, spoken).chunks)
    chunks: list[Chunk] = []
    sentence = 0
    for n, part in enumerate(script.parts):
        ref_text, ref_seconds = references[part.voice]

        def limit(
            speed: float, ref_text: str = ref_text, ref_seconds: float = ref_seconds, part: ScriptPart = part
        ) -> int:
            return max_chunk_bytes(ref_text, ref_seconds, _speed(script.speed, part.speed, speed))

        def speak(text: str, part: ScriptPart = part) -> str:
            return spoken(text, part.voice, part.lang)

        leading, pieces = part_pieces(part.text, speak)
        if leading and chunks:  # a pause written at the start of a part follows the previous one
            chunks[-1] = replace(chunks[-1], pause_after=round(sum(p.resolve(pauses) for p in leading), 3))
        pieces = split_long_pieces(pieces, limit, speak)
        for group in pack_pieces(pieces, limit, per_sentence=pauses.sentence > 0):
            ids = []
            for piece in group:
                ids.append(sentence)
                sentence += piece.after != "none"
            chunks.append(
                Chunk(
                    script.id,
                    len(chunks),
                    part.voice,
                    join_sentences(tuple(p.spoken for p in group)),
                    _speed(script.speed, part.speed, group[0].speed),
                    tuple(p.written for p in group),
                    tuple(p.spoken for p in group),
                    tuple(ids),
                    _pause_after(group[-1], pauses, script.parts, n),
                )
            )
    if chunks:  # no silence after the last words: the file ends with the speech
        chunks[-1] = replace(chunks[-1], pause_after=0.0)
    return chunks


def _pause_after(piece: Piece, rules: PauseRules, parts: tuple[ScriptPart, ...], n: int) -> float:
    seconds = piece.pause_after(rules)
    if piece.after == "end" and not piece.pauses and n + 1 < len(parts):
        changes = parts[n + 1].voice != parts[n].voice
        return rules.speaker if changes else rules.sentence
    return seconds


def _speed(*factors: float) -> float:
    value = 1.0
    for factor in factors:
        value *= factor
    return min(MAX_SPEED, max(MIN_SPEED, round(value, 4)))


def normalise_text(text: str) -> str:
    """Straight quotes, single spaces, paragraphs (blank lines) kept; punctuation kept (it
    shapes F5's prosody)."""
    paragraphs = (" ".join(p.translate(QUOTES).split()) for p in _PARAGRAPH.split(text))
    return "\n\n".join(p for p in paragraphs if p)


def _validate(raw: RawScript, known: set[str] | None, vocab: Vocabulary | None, max_chars: int) -> Script:
    def fail(message: str, line: int | None = None) -> ScriptError:
        where = raw.where or (f"line {line + raw.line_offset}" if line else None)
        if line and raw.paragraphs:  # paragraphs are separated by one blank line: line 2n-1 is paragraph n
            where = f"paragraph {(line + 1) // 2}"
        if line and raw.cues:  # one line a cue
            where = f"cue {line}"
        return ScriptError(raw.source, message, where=where)

    if problem := key_name_problem(raw.id):
        raise fail(f"script id {raw.id!r} {problem}")
    if len(raw.text) > max_chars:
        raise fail(f"{len(raw.text):,} characters, over the limit of {max_chars:,}; split the script")
    speed = _speed_value(raw.speed)
    if speed is None:
        raise fail(f"speed must be a number from {MIN_SPEED} to {MAX_SPEED}")
    if problem := find_markup_problem(_TAG.sub(lambda m: " " * len(m.group()), raw.text)):
        raise fail(str(problem), raw.text.count("\n", 0, problem.offset) + 1)
    if vocab is not None:
        for number, line in enumerate(raw.text.split("\n"), start=1):
            # What F5 is given is the spoken form: "€5" is spoken as "five euros".
            spoken = normalize(strip_markup(normalise_text(_TAG.sub(" ", line))))
            if missing := vocab.unsupported_characters(spoken):
                raise fail(f"characters the model cannot speak: {' '.join(missing)}", number)
    if raw.cues:
        from voicebatch.inputs.timed_scripts import timed_parts

        parts = timed_parts(raw.text, raw.cues, known, fail, _TAG, _tag_attributes, _only_voice)
    else:
        parts = _parts(raw, known, fail)
    if not parts:
        raise fail("no text to speak")
    source = raw.source + (f" {raw.where}" if raw.where else "")
    return Script(raw.id, source, tuple(parts), speed, raw.warnings, raw.cues)


def _parts(raw: RawScript, known: set[str] | None, fail: _Fail) -> list[ScriptPart]:
    voice = raw.voice
    if voice is not None and known is not None and voice not in known:
        raise fail(f"unknown voice {voice!r} (known: {', '.join(sorted(known)) or 'none'})")
    parts: list[ScriptPart] = []
    position = 0
    speed, lang = 1.0, None
    for tag in [*_TAG.finditer(raw.text), None]:
        end = tag.start() if tag else len(raw.text)
        text = normalise_text(raw.text[position:end])
        if strip_markup(text).strip():
            if voice is None:
                voice = _only_voice(known, fail)
            parts.append(ScriptPart(voice, text, speed, lang))
        elif parts and text:  # markup alone between two tags: it belongs to the part before
            parts[-1] = replace(parts[-1], text=f"{parts[-1].text} {text}")
        if tag is None:
            break
        voice, position = tag.group(1), tag.end()
        line = raw.text.count("\n", 0, tag.start()) + 1
        if known is not None and voice not in known:
            raise fail(f"unknown voice {voice!r} in tag [{voice}] (known: {', '.join(sorted(known)) or 'none'})", line)
        speed, lang = _tag_attributes(tag, fail, line)
    return parts


def _tag_attributes(tag: re.Match[str], fail: _Fail, line: int) -> tuple[float, str | None]:
    speed, lang = 1.0, None
    for item in tag.group(2).split():
        key, _, value = item.partition("=")
        if key == "speed":
            parsed = _speed_value(value)
            if parsed is None:
                raise fail(f"{tag.group()}: speed must be a number from {MIN_SPEED} to {MAX_SPEED}", line)
            speed = parsed
        elif key == "lang":
            if problem := language_problem(value):
                raise fail(f"{tag.group()}: {problem}", line)
            lang = value
        else:
            raise fail(f"{tag.group()}: unknown attribute {key!r} (use speed= or lang=)", line)
    return speed, lang


def _only_voice(known: set[str] | None, fail: _Fail) -> str:
    if known is not None and len(known) == 1:
        return next(iter(known))
    raise fail("no voice: set 'voice:' in front matter (or the voice column), or start with a [voice] tag")


def _speed_value(value: object) -> float | None:
    try:
        speed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return speed if MIN_SPEED <= speed <= MAX_SPEED else None
