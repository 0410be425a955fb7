"""The commands that check inputs without synthesizing: ``transcripts convert``, ``voices check``,
``scripts check`` and ``text normalize``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import InputError
from voicebatch.inputs.reference import ClipRules

if TYPE_CHECKING:
    from voicebatch.inputs.vocab import Vocabulary
    from voicebatch.inputs.voices import VoiceReport
    from voicebatch.text.lexicon import Lexicon
from voicebatch.cli.output import print_json, print_table, printable

log = logging.getLogger(__name__)


def _rules(args: argparse.Namespace) -> ClipRules:
    if args.min_seconds >= args.max_seconds:
        raise InputError(
            "--min-seconds", f"{args.min_seconds:g} s must be below --max-seconds ({args.max_seconds:g} s)"
        )
    return ClipRules(min_seconds=args.min_seconds, max_seconds=args.max_seconds)


def convert_command(args: argparse.Namespace) -> int:
    from voicebatch.inputs.transcripts import parse_transcript_text, read_transcript, writers
    from voicebatch.inputs.transcripts.textio import decode_transcript_bytes

    if args.json and args.to != "json":
        raise InputError("--json", f"--json and --to {args.to} ask for different formats")
    if args.file == "-":
        text, encoding = decode_transcript_bytes(sys.stdin.buffer.read(), "<stdin>")
        kind = args.source_type or _sniff(text)
        transcript = parse_transcript_text(text, "<stdin>", suffix=f".{kind}", encoding=encoding)
    elif args.source_type:
        from voicebatch.inputs.transcripts.textio import read_transcript_text

        text, encoding = read_transcript_text(args.file)
        transcript = parse_transcript_text(text, args.file, suffix=f".{args.source_type}", encoding=encoding)
    else:
        transcript = read_transcript(Path(args.file))
    if not transcript.timed:
        if args.to in ("srt", "vtt", "csv"):
            raise InputError(transcript.path, f"a plain-text transcript has no timings: cannot write {args.to}")
        if args.to == "json":
            sys.stdout.write(json.dumps([{"start": 0.0, "end": None, "text": transcript.text}], ensure_ascii=False))
            sys.stdout.write("\n")
        else:
            sys.stdout.write(transcript.text + "\n")
        return 0
    write = {
        "json": writers.to_json,
        "txt": writers.to_txt,
        "srt": writers.to_srt,
        "vtt": writers.to_vtt,
        "csv": writers.to_csv,
    }[args.to]
    sys.stdout.write(write(transcript.segments))
    return 0


def _sniff(text: str) -> str:
    """The type of a transcript read from standard input (no file name to go by)."""
    from voicebatch.inputs.transcripts.detect import detect_text_format

    kind = detect_text_format(text, "<stdin>")
    if kind != "txt":
        return kind
    head = text.lstrip("\ufeff").lstrip()
    first = head.split("\n", 1)[0]
    if "\t" in first:
        return "tsv"
    if re.search(r"[,;|]", first) and re.search(r"\d", head):
        return "csv"
    return "txt"


def _vocabulary(path: Path | None) -> Vocabulary:
    from voicebatch.inputs.vocab import load_vocabulary

    if path is not None and not path.is_file():
        raise InputError(path, "no such vocabulary file (one token per line, like the model's vocab.txt)")
    try:
        return load_vocabulary(path)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path or "vocab.txt", f"cannot read the vocabulary: {e}") from None


def voices_check_command(args: argparse.Namespace) -> int:
    from voicebatch.inputs.voices import prepare_voices, write_prepared_voice

    prepared, reports = prepare_voices(args.directory, _rules(args), _vocabulary(args.vocab))
    if args.out:
        for voice in prepared.values():
            write_prepared_voice(voice, args.out / voice.name / voice.clip_hash[:16])
    if args.json:
        print_json([r.as_json() for r in reports])
    else:
        rows = [
            (r.name, r.status, "" if r.start is None else f"{r.start:6.2f}–{r.end:6.2f} s", _reason(r)) for r in reports
        ]
        print_table(("voice", "status", "clip", "reference text / reason"), rows)
    return 1 if any(r.status != "ok" for r in reports) or not reports else 0


def _reason(report: VoiceReport) -> str:
    if report.status != "ok":
        return printable(report.reason or "")
    text = report.text if len(report.text) <= 60 else report.text[:57] + "..."
    return text + "".join(f"  [warning: {w}]" for w in report.warnings)


def script_row(
    script: str,
    status: str,
    source: str | None,
    *,
    voices: Sequence[str] = (),
    chunks: int | None = None,
    characters: int | None = None,
    chunk_list: Sequence[dict] = (),
    reason: str | None = None,
    timed: dict | None = None,
) -> dict:
    """The one shape of a script row in ``scripts check --json`` (``chunk_list`` empty for an error)."""
    return {
        "script": script,
        "status": status,
        "source": source,
        "voices": list(voices),
        "chunks": chunks,
        "characters": characters,
        "chunk_list": list(chunk_list),
        "reason": reason,
        "timed": timed,  # a timed script's cues, planned rates and flagged cues (voicebatch.inputs.timed_plan)
    }


def scripts_check_command(args: argparse.Namespace) -> int:
    from voicebatch.inputs.scripts import chunk_script, load_scripts, script_label
    from voicebatch.inputs.timed_plan import TIMED_COLUMNS, timed_table_row
    from voicebatch.inputs.voices import prepare_voices
    from voicebatch.text.spoken import SpokenForm

    vocab = _vocabulary(args.vocab)
    prepared, voice_reports = prepare_voices(args.voices, _rules(args), vocab)
    known = {r.name for r in voice_reports}
    scripts, problems = load_scripts(args.directory, known, vocab)
    references = {name: (v.text, v.duration) for name, v in prepared.items()}
    spoken = SpokenForm(lexicon=_lexicon(args.lexicon, vocab))
    results = []
    for script in scripts:
        unusable = [v for v in script.voices if v not in prepared]
        if unusable:
            reason = f"voice(s) {', '.join(unusable)} unusable (see `voicebatch voices check`)"
            results.append(script_row(script.id, "error", script.source, voices=script.voices, reason=reason))
            continue
        chunks = chunk_script(script, references, spoken=spoken)
        timed = None
        if script.cues:
            from voicebatch.inputs.timed_plan import plan_timed, timed_check

            timed = timed_check(plan_timed(script, references, spoken))
        results.append(
            script_row(
                script.id,
                "ok",
                script.source,
                voices=script.voices,
                chunks=len(chunks),
                characters=sum(len(c.text) for c in chunks),
                chunk_list=[
                    {
                        "index": c.index,
                        "voice": c.voice,
                        "speed": c.speed,
                        "text": " ".join(c.sentences),
                        "spoken": c.text,
                        "pause_after": c.pause_after,
                    }
                    for c in chunks
                ],
                timed=timed,
            )
        )
    for problem in problems:  # every bad item of a .jsonl / .csv is its own row
        results.append(script_row(script_label(problem), "error", problem.path, reason=printable(str(problem))))
    if args.json:
        print_json(results)
    else:
        rows = []
        for r in results:
            chunks = "" if r["chunks"] is None else str(r["chunks"])
            said = (r["source"] or "") if r["status"] == "ok" else _without_location(r["reason"], r["source"])
            if r["timed"]:
                flagged = ", ".join(map(str, r["timed"]["flagged"])) or "none"
                said += f" (timed: {_plural(r['timed']['cues'], 'cue')}, not fitting: {flagged})"
            rows.append((r["script"], r["status"], ", ".join(r["voices"]), chunks, said))
        print_table(("script", "status", "voices", "chunks", "source / reason"), rows)
        for r in (r for r in results if r["timed"]):  # a timed script: its cues' planned rates
            print(f"\n{r['script']}: timed script, track {r['timed']['track_end']:.3f} s")
            print_table(TIMED_COLUMNS, [timed_table_row(c) for c in r["timed"]["cue_list"]])
        total = sum(r["chunks"] or 0 for r in results)
        failed = sum(r["status"] != "ok" for r in results)
        print(f"\n{_plural(len(results), 'script')}: {_plural(total, 'chunk')} to synthesize, {failed} with problems")
    return 1 if any(r["status"] != "ok" for r in results) else 0


def _without_location(reason: str | None, source: str | None) -> str:
    """A reason in a table row that already names its file: the file is not said twice."""
    reason = reason or ""
    if source and reason.startswith(source + ": "):
        return reason[len(source) + 2 :]
    return reason


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _lexicon(location: str | None, vocab: Vocabulary | None = None) -> Lexicon | None:
    """The lexicon at ``location`` (local or s3://), its respellings checked against the vocabulary."""
    if not location:
        return None
    from voicebatch.locations.storage import open_storage
    from voicebatch.text.lexicon import LexiconError, read_lexicon

    lexicon = read_lexicon(location, open_storage)
    for number, entry in enumerate(lexicon.entries if vocab is not None else (), start=1):
        if vocab.unsupported_characters(entry.respelling):
            raise LexiconError(location, f"entry {number}: the respelling has characters the model cannot speak")
    return lexicon


def text_normalize_command(args: argparse.Namespace) -> int:
    from voicebatch.text.normalize import language_problem
    from voicebatch.text.spoken import SpokenForm

    if problem := language_problem(args.lang):
        raise InputError("--lang", problem)
    spoken = SpokenForm(args.lang, _lexicon(args.lexicon))(args.text, args.voice)
    if args.json:
        print_json({"text": args.text, "spoken": spoken, "lang": args.lang, "voice": args.voice})
    else:
        print(spoken)
    return 0
