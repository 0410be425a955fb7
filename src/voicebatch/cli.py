"""`voicebatch` command: check and convert inputs, synthesize and verify without Airflow.

Conventions (issue 13): results go to stdout, everything else (logs, progress, errors) to
stderr; ``--json`` on every command that produces results, one JSON shape per kind of row;
``-v``/``-q`` anywhere on the line; ``--version``; every option with its help and default, and
examples in each command's help; numeric ranges from ``voicebatch.limits``, the same ones the
DAG's Params use. Exit codes: 0 success, 1 some inputs are unusable (the rows say which), 2 bad
usage or an error (one line on stderr; ``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebatch.cli_locations import check_command_locations, check_synth_request
from voicebatch.errors import InputError
from voicebatch.limits import LIMITS
from voicebatch.reference import ClipRules
from voicebatch.transcripts.detect import TRANSCRIPT_TYPES
from voicebatch.verify.settings import DEFAULT_ASR_MODEL, MODES

if TYPE_CHECKING:
    from voicebatch.text.lexicon import Lexicon
    from voicebatch.vocab import Vocabulary
    from voicebatch.voices import VoiceReport

log = logging.getLogger("voicebatch")

CONVERT_FORMATS = ("json", "txt", "srt", "vtt", "csv")
AUDIO_FORMATS = ("wav", "flac", "mp3")
DEFAULT_MODEL = "F5TTS_v1_Base"
# Commands whose INFO lines are progress a user waits for (the checks stay quiet unless -v).
CHATTY = ("synth", "book", "model tiny", "model resolve", "verify")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):  # `voicebatch` or `voicebatch voices` alone: what there is to do
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return 2
    quiet = logging.INFO if args.command in CHATTY and not getattr(args, "json", False) else logging.WARNING
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else quiet
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr, force=True)
    try:
        check_command_locations(args.command, args)  # the deployment's allow-list, where one is set
        return args.run(args)
    except Exception as e:  # every error a user can meet is one line and exit code 2
        print(f"error: {error_message(e, args)}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 2


def error_message(error: BaseException, args: argparse.Namespace) -> str:
    """One line: what went wrong and where (the file, or the storage location and its cause)."""
    from voicebatch.storage import describe_error, is_permanent, is_transient
    from voicebatch.synthesis.models import ModelError

    if isinstance(error, (InputError, ModelError)):
        return printable(str(error))
    if isinstance(error, OSError) and error.filename:
        return printable(describe_error(error))  # a local file: its name and what is wrong with it
    if is_transient(error) or is_permanent(error):
        location = next((u for u in _storage_locations(args) if u.startswith("s3://")), None)
        return printable(f"{location}: {describe_error(error)}" if location else describe_error(error))
    return f"unexpected {type(error).__name__}: {printable(str(error))} (run with -v for the traceback)"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """One line a terminal shows as it is: whitespace runs become one space, other control
    characters (escape sequences from a file name, say) are written as \\xNN, and a location
    said twice in a row (``a.csv: a.csv: row 3``) is said once."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))
    return re.sub(r"^([^:\s][^:]*): \1: ", r"\1: ", text)


def _storage_locations(args: argparse.Namespace) -> list[str]:
    """The locations a command reads or writes, in the order an error most likely concerns them."""
    names = ("out", "output", "s3_prefix", "spec", "model")
    return [str(getattr(args, name)) for name in names if getattr(args, name, None)]


# --- the parser -----------------------------------------------------------------------------


class _Help(argparse.RawDescriptionHelpFormatter):
    """Help with every option's default (when it has one worth saying) and examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if flag or "%(default)" in text or "default" in text or action.default in (None, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            text += " (default: %(default)s)"
        return text


def _common() -> argparse.ArgumentParser:
    """-v / -q, accepted after the command too (``voicebatch voices check DIR -v``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logs")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")
    return common


def _command(
    groups: argparse._SubParsersAction, name: str, summary: str, examples: str, command: str, run: Callable
) -> argparse.ArgumentParser:
    sub = groups.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="examples:\n" + examples,
        formatter_class=_Help,
        parents=[_common()],
    )
    sub.set_defaults(run=run, command=command)
    return sub


def _group(groups: argparse._SubParsersAction, name: str, summary: str) -> argparse._SubParsersAction:
    group = groups.add_parser(name, help=summary, description=summary, formatter_class=_Help, parents=[_common()])
    group.set_defaults(group_parser=group)
    return group.add_subparsers(title="actions", metavar="ACTION")


def ranged(name: str, kind: Callable[[str], float] = float) -> Callable[[str], float]:
    """An argparse type: a number within ``voicebatch.limits.LIMITS[name]`` (the DAG Param's range)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if problem := LIMITS[name].problem(value):
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _loudness(text: str) -> float | None:
    if text.strip().lower() in ("off", "none"):
        return None
    return ranged("loudness_lufs")(text)


def _parser() -> argparse.ArgumentParser:
    from voicebatch import __version__

    parser = argparse.ArgumentParser(
        prog="voicebatch",
        description="Batch voice cloning with F5-TTS: check inputs, synthesize and verify without Airflow.",
        epilog="examples:\n"
        "  voicebatch voices check include/voices\n"
        "  voicebatch synth --voice include/voices/nature --text 'Hello there.' --out out/\n"
        "  voicebatch <command> --help",
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"voicebatch {__version__} ({_engine_versions()})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs (and tracebacks) on stderr")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only on stderr; results still on stdout")
    parser.set_defaults(command=None)
    groups = parser.add_subparsers(title="commands", metavar="COMMAND")

    transcripts = _group(groups, "transcripts", "transcript files")
    convert = _command(
        transcripts,
        "convert",
        "parse a transcript and print it in another format",
        "  voicebatch transcripts convert take3.srt --to vtt\n"
        "  voicebatch transcripts convert captions.vtt            # JSON: [{start, end, text}, ...]\n"
        "  curl -s https://example.org/talk.srt | voicebatch transcripts convert - --to txt",
        "transcripts convert",
        _convert,
    )
    convert.add_argument(
        "file",
        help="a transcript (SRT, WebVTT, CSV, TSV, TTML/DFXP, ASS/SSA, SBV, Whisper JSON, Audacity labels, TXT), "
        "or - for standard input",
    )
    convert.add_argument("--to", choices=CONVERT_FORMATS, default="json", help="output format")
    convert.add_argument("--json", action="store_true", help="the same as --to json (every command takes --json)")
    convert.add_argument(
        "--from",
        dest="source_type",
        choices=TRANSCRIPT_TYPES,
        help="input type (default: the file's suffix, and for .txt or - its content; labels: an Audacity label track)",
    )

    voices = _group(groups, "voices", "voice folders")
    check = _command(
        voices,
        "check",
        "validate voices and choose each one's reference clip",
        "  voicebatch voices check include/voices\n"
        "  voicebatch voices check include/voices --json\n"
        "  voicebatch voices check voices/ --out prepared/ --max-seconds 9",
        "voices check",
        _voices_check,
    )
    check.add_argument("directory", type=Path, help="a folder of voices (a folder per voice, or flat files)")
    check.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    check.add_argument("--out", type=Path, help="also write each prepared voice (reference.wav/.txt, voice.json) here")
    _clip_options(check)

    scripts = _group(groups, "scripts", "scripts to synthesize")
    scheck = _command(
        scripts,
        "check",
        "validate scripts against voices and show their chunks",
        "  voicebatch scripts check include/scripts --voices include/voices\n"
        "  voicebatch scripts check scripts/ --voices voices/ --json\n"
        "  voicebatch scripts check scripts/ --voices voices/ --lexicon lexicon.csv --json   # what F5 will say",
        "scripts check",
        _scripts_check,
    )
    scheck.add_argument(
        "directory", type=Path, help="a folder of scripts (.txt, .md, .jsonl, .csv, .docx, .html, .ssml)"
    )
    scheck.add_argument("--voices", type=Path, required=True, help="the folder of voices the scripts speak with")
    scheck.add_argument(
        "--json", action="store_true", help="print JSON rows, each with its chunks' written and spoken text"
    )
    scheck.add_argument("--lexicon", help="pronunciation lexicon: .csv or .pls, a folder of them, or s3://")
    _clip_options(scheck)

    text = _group(groups, "text", "spoken form")
    normalize = _command(
        text,
        "normalize",
        "print the spoken form F5-TTS is given for TEXT (numbers, dates, abbreviations, lexicon)",
        "  voicebatch text normalize 'Dr. Lee paid $3.50 on March 5, 2024.'\n"
        "  voicebatch text normalize 'Das kostet 3,5 Euro.' --lang de\n"
        "  voicebatch text normalize 'Nguyen knows SQL.' --lexicon lexicon.csv --voice anna --json",
        "text normalize",
        _text_normalize,
    )
    normalize.add_argument("text", help="the text, as written in a script")
    normalize.add_argument("--lang", default="en", help="language (a num2words code: en, de, fr, ...)")
    normalize.add_argument("--lexicon", help="pronunciation lexicon: .csv or .pls, a folder of them, or s3://")
    normalize.add_argument("--voice", help="apply this voice's lexicon overrides (default: the project's entries)")
    normalize.add_argument("--json", action="store_true", help="print a JSON row instead of the spoken text")

    model = _group(groups, "model", "models")
    tiny = _command(
        model,
        "tiny",
        "write a tiny randomly initialised F5 model (offline tests and demo)",
        "  voicebatch model tiny /tmp/tiny   # its audio is noise, not a voice",
        "model tiny",
        _model_tiny,
    )
    tiny.add_argument("directory", type=Path, help="where to write the model (the model store's layout)")
    tiny.add_argument("--json", action="store_true", help="print a JSON row instead of a line")
    resolve = _command(
        model,
        "resolve",
        "resolve a model spec through the model store and verify it",
        "  voicebatch model resolve                       # F5TTS_v1_Base: cache, S3 prefix, then the hub\n"
        "  voicebatch model resolve /models/tiny --json\n"
        "  voicebatch model resolve F5TTS_v1_Base --s3-prefix s3://bucket/models",
        "model resolve",
        _model_resolve,
    )
    resolve.add_argument("spec", nargs="?", default=DEFAULT_MODEL, help="a model name, model folder or s3:// prefix")
    resolve.add_argument("--s3-prefix", help="s3://bucket/prefix holding models (warm starts)")
    resolve.add_argument("--json", action="store_true", help="print a JSON row instead of a line")

    _synth_parser(groups)

    from voicebatch.cli_books import add_book_command, add_check_commands

    add_book_command(groups, _command)
    add_check_commands(groups, _group, _command)

    verify = _command(
        groups,
        "verify",
        "check a recording against its text and time every word",
        "  voicebatch verify take.wav --text 'The birch canoe slid on the smooth planks.'\n"
        "  voicebatch verify chapter1.flac --text-file chapter1.txt --json",
        "verify",
        _verify,
    )
    verify.add_argument("audio", type=Path, help="a recording (WAV, FLAC, OGG, MP3)")
    said = verify.add_mutually_exclusive_group(required=True)
    said.add_argument("--text", help="what the recording should say")
    said.add_argument("--text-file", type=Path, help="a UTF-8 file holding what it should say")
    verify.add_argument("--lang", default="en", help="language of the text")
    verify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    verify.add_argument("--asr-model", default=DEFAULT_ASR_MODEL, help="pocketsphinx:en-us or whisper:<size>")
    verify.add_argument(
        "--max-cer",
        type=ranged("max_cer"),
        help=f"pass threshold, {LIMITS['max_cer'].span()} (default: the backend's calibrated one)",
    )

    report = _group(groups, "report", "run reports")
    share = _command(
        report,
        "share",
        "write a copy of a run's report with fresh presigned links, to share outside Airflow",
        "  voicebatch report share s3://bucket/output --run-id manual__2026-11-25T10:00:00+00:00\n"
        "  voicebatch report share s3://bucket/output --run-id scheduled__2026-11-25 --expires 86400 --json",
        "report share",
        _report_share,
    )
    share.add_argument("output", help="the run's output location (s3://bucket/prefix)")
    share.add_argument("--run-id", required=True, help="the Airflow run id")
    share.add_argument("--dag-id", default="voice_batch", help="the DAG")
    share.add_argument("--expires", type=int, default=7 * 24 * 3600, help="seconds the links work, at most 7 days")
    share.add_argument("--json", action="store_true", help="print a JSON row instead of the link")
    return parser


def _synth_parser(groups: argparse._SubParsersAction) -> None:
    synth = _command(
        groups,
        "synth",
        "synthesize texts or scripts with one or more voices (no Airflow)",
        "  voicebatch synth --voice include/voices/nature --text 'Hello there.' --out out/\n"
        "  voicebatch synth --voice include/voices/narrator --script include/scripts --out out/   # every script\n"
        "  voicebatch synth --voice anna=voices/anna --voice ben=voices/ben --text '[anna] Hi. [ben] Hello.' \\\n"
        "      --out out/\n"
        "  voicebatch synth --config basic.toml --model /tmp/tiny          # F5-TTS infer-cli's TOML\n"
        "  voicebatch synth --voice voices/anna --script book.md --out s3://bucket/output --format mp3\n"
        "Already written outputs (same inputs and settings) are skipped: local --out and S3 alike.",
        "synth",
        _synth,
    )
    synth.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="an F5-TTS infer-cli TOML (ref_audio, ref_text, gen_text/gen_file, [voices.NAME], speed, nfe_step, "
        "cfg_strength, cross_fade_duration, remove_silence, output_dir, output_file); flags override it",
    )
    synth.add_argument(
        "--voice",
        action="append",
        metavar="[NAME=]PATH",
        help="a voice folder, prepared voice, or recording beside its transcript; repeat for several voices, "
        "named NAME= for [NAME] tags (the first is the default voice)",
    )
    synth.add_argument("--text", help="the text to speak ([voice] tags switch voices)")
    synth.add_argument(
        "--script",
        action="append",
        type=Path,
        metavar="FILE_OR_DIR",
        help="a script file (.txt, .md, .jsonl, .csv, .docx, .html, .ssml) or a folder of them; repeat for several",
    )
    synth.add_argument(
        "--out", help="output folder, or s3://bucket/prefix to publish (default: the config's output_dir)"
    )
    synth.add_argument("--format", choices=AUDIO_FORMATS, help="audio format (default: wav, or the output_file's)")
    synth.add_argument(
        "--loudness",
        type=_loudness,
        default=-16.0,
        help=f"integrated loudness target in LUFS, {LIMITS['loudness_lufs'].span()}, or off",
    )
    add_synthesis_options(synth)
    synth.add_argument("--json", action="store_true", help="print JSON rows (one per script) instead of file names")


def add_synthesis_options(parser: argparse.ArgumentParser) -> None:
    """The model, synthesis, verification and lexicon options of `voicebatch synth` (and `book`)."""
    parser.add_argument("--model", help=f"model name, model folder or s3:// prefix (default: {DEFAULT_MODEL})")
    parser.add_argument(
        "--nfe", type=ranged("nfe_steps", int), help=f"sampling steps, {LIMITS['nfe_steps'].span()} (default: 32)"
    )
    parser.add_argument(
        "--cfg", type=ranged("cfg_strength"), help=f"guidance strength, {LIMITS['cfg_strength'].span()} (default: 2.0)"
    )
    parser.add_argument(
        "--speed",
        type=ranged("speed"),
        help=f"speaking rate, {LIMITS['speed'].span()}; replaces the scripts' own (default: each script's, else 1.0)",
    )
    parser.add_argument("--seed", type=ranged("seed", int), help="same seed and inputs, same audio (default: 0)")
    parser.add_argument(
        "--batch-frames",
        type=ranged("batch_frames", int),
        help=f"padded mel frames per forward pass, {LIMITS['batch_frames'].span()} (default: 16384)",
    )
    parser.add_argument(
        "--cross-fade",
        type=ranged("cross_fade"),
        help=f"seconds of cross-fade between chunks, {LIMITS['cross_fade'].span()} (default: 0.15)",
    )
    parser.add_argument("--device", help="cuda, cuda:N or cpu (default: a free GPU, else the CPU)")
    parser.add_argument("--lexicon", help="pronunciation lexicon: .csv or .pls, a folder of them, or s3://")
    _verify_options(parser)
    parser.add_argument(
        "--hold-unverified",
        dest="publish_unverified",
        action="store_false",
        help="do not write a script with a chunk that never passed verification (exit code 1)",
    )
    parser.add_argument("--force", action="store_true", help="synthesize again even when the output is already there")


def _verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verify", choices=MODES, default="asr", help="checks on every chunk")
    parser.add_argument(
        "--max-takes",
        type=ranged("max_takes", int),
        default=3,
        help=f"takes per chunk, the first included, {LIMITS['max_takes'].span()}",
    )
    parser.add_argument(
        "--max-cer",
        type=ranged("max_cer"),
        help=f"pass threshold, {LIMITS['max_cer'].span()} (default: the backend's calibrated one)",
    )
    parser.add_argument(
        "--asr-model", default=DEFAULT_ASR_MODEL, help="pocketsphinx:en-us or whisper:<size> (weights: model store)"
    )


def _clip_options(parser: argparse.ArgumentParser) -> None:
    defaults = ClipRules()
    parser.add_argument(
        "--min-seconds",
        type=ranged("min_seconds"),
        default=defaults.min_seconds,
        help=f"shortest reference clip, {LIMITS['min_seconds'].span()} s",
    )
    parser.add_argument(
        "--max-seconds",
        type=ranged("max_seconds"),
        default=defaults.max_seconds,
        help=f"longest reference clip, {LIMITS['max_seconds'].span()} s",
    )
    parser.add_argument("--vocab", type=Path, help="model vocabulary (default: the one f5-tts ships)")


def _engine_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("f5-tts", "torch"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)


def _rules(args: argparse.Namespace) -> ClipRules:
    if args.min_seconds >= args.max_seconds:
        raise InputError(
            "--min-seconds", f"{args.min_seconds:g} s must be below --max-seconds ({args.max_seconds:g} s)"
        )
    return ClipRules(min_seconds=args.min_seconds, max_seconds=args.max_seconds)


# --- the commands -------------------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    from voicebatch.transcripts import parse_transcript_text, read_transcript, writers
    from voicebatch.transcripts.textio import decode_transcript_bytes

    if args.json and args.to != "json":
        raise InputError("--json", f"--json and --to {args.to} ask for different formats")
    if args.file == "-":
        text, encoding = decode_transcript_bytes(sys.stdin.buffer.read(), "<stdin>")
        kind = args.source_type or _sniff(text)
        transcript = parse_transcript_text(text, "<stdin>", suffix=f".{kind}", encoding=encoding)
    elif args.source_type:
        from voicebatch.transcripts.textio import read_transcript_text

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
    from voicebatch.transcripts.detect import detect_text_format

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
    from voicebatch.vocab import load_vocabulary

    if path is not None and not path.is_file():
        raise InputError(path, "no such vocabulary file (one token per line, like the model's vocab.txt)")
    try:
        return load_vocabulary(path)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path or "vocab.txt", f"cannot read the vocabulary: {e}") from None


def _voices_check(args: argparse.Namespace) -> int:
    from voicebatch.voices import prepare_voices, write_prepared_voice

    prepared, reports = prepare_voices(args.directory, _rules(args), _vocabulary(args.vocab))
    if args.out:
        for voice in prepared.values():
            write_prepared_voice(voice, args.out / voice.name / voice.clip_hash[:16])
    if args.json:
        _print_json([r.as_json() for r in reports])
    else:
        rows = [
            (r.name, r.status, "" if r.start is None else f"{r.start:6.2f}–{r.end:6.2f} s", _reason(r)) for r in reports
        ]
        _table(("voice", "status", "clip", "reference text / reason"), rows)
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
    }


def _scripts_check(args: argparse.Namespace) -> int:
    from voicebatch.scripts import chunk_script, load_scripts, script_label
    from voicebatch.text.spoken import SpokenForm
    from voicebatch.voices import prepare_voices

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
            )
        )
    for problem in problems:  # every bad item of a .jsonl / .csv is its own row
        results.append(script_row(script_label(problem), "error", problem.path, reason=printable(str(problem))))
    if args.json:
        _print_json(results)
    else:
        rows = []
        for r in results:
            chunks = "" if r["chunks"] is None else str(r["chunks"])
            said = (r["source"] or "") if r["status"] == "ok" else _without_location(r["reason"], r["source"])
            rows.append((r["script"], r["status"], ", ".join(r["voices"]), chunks, said))
        _table(("script", "status", "voices", "chunks", "source / reason"), rows)
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


def model_row(files: Any, fetched: Sequence[str] = ()) -> dict:
    """The one shape of a model row (``model tiny --json``, ``model resolve --json``)."""
    return {
        "name": files.name,
        "directory": str(files.directory),
        "checksum": files.checksum,
        "random_weights": files.random_weights,
        "fetched": list(fetched),
    }


def _lexicon(location: str | None, vocab: Vocabulary | None = None) -> Lexicon | None:
    """The lexicon at ``location`` (local or s3://), its respellings checked against the vocabulary."""
    if not location:
        return None
    from voicebatch.storage import open_storage
    from voicebatch.text.lexicon import LexiconError, read_lexicon

    lexicon = read_lexicon(location, open_storage)
    for number, entry in enumerate(lexicon.entries if vocab is not None else (), start=1):
        if vocab.unsupported_characters(entry.respelling):
            raise LexiconError(location, f"entry {number}: the respelling has characters the model cannot speak")
    return lexicon


def _text_normalize(args: argparse.Namespace) -> int:
    from voicebatch.text.normalize import language_problem
    from voicebatch.text.spoken import SpokenForm

    if problem := language_problem(args.lang):
        raise InputError("--lang", problem)
    spoken = SpokenForm(args.lang, _lexicon(args.lexicon))(args.text, args.voice)
    if args.json:
        _print_json({"text": args.text, "spoken": spoken, "lang": args.lang, "voice": args.voice})
    else:
        print(spoken)
    return 0


def _model_tiny(args: argparse.Namespace) -> int:
    from voicebatch.synthesis.tiny import build_tiny_model

    files = build_tiny_model(args.directory)
    if args.json:
        _print_json(model_row(files))
    else:
        print(f"{files.name}: {files.directory} (random weights: noise, not a voice)")
    return 0


def _model_resolve(args: argparse.Namespace) -> int:
    from voicebatch.storage import open_storage
    from voicebatch.synthesis.models import ModelStore

    store = ModelStore(s3_prefix=open_storage(args.s3_prefix) if args.s3_prefix else None)
    files = store.resolve(args.spec)
    if args.json:
        _print_json(model_row(files, store.fetched))
    else:
        weights = " (random weights: noise, not a voice)" if files.random_weights else ""
        print(f"{files.name}: {files.directory}, checksum {files.checksum[:16]}{weights}")
    return 0


def _report_share(args: argparse.Namespace) -> int:
    from voicebatch.report import share_report
    from voicebatch.storage import PRESIGN_SECONDS, open_storage

    if not 1 <= args.expires <= PRESIGN_SECONDS:
        raise InputError("--expires", f"{args.expires} s: links can live 1 s to 7 days ({PRESIGN_SECONDS} s)")
    url = share_report(open_storage(args.output), args.dag_id, args.run_id, args.expires)
    if args.json:
        _print_json({"run_id": args.run_id, "url": url, "expires_seconds": args.expires})
    else:
        print(url)
    return 0


def _verify_settings(args: argparse.Namespace, **extra: object) -> object:
    from voicebatch.verify.settings import VerifySettings

    try:
        return VerifySettings(
            mode=getattr(args, "verify", "asr"),
            max_takes=getattr(args, "max_takes", 1),
            max_cer=args.max_cer,
            asr_model=args.asr_model,
            **extra,
        )
    except ValueError as e:
        raise InputError("verification options", str(e)) from None


def _check_device(device: str | None) -> None:
    """Fail before any work when the requested device does not exist here."""
    if device is None or device == "cpu":
        return
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not match:
        raise InputError("--device", f"{device!r}: expected cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise InputError("--device", f"{device}: no CUDA device is available on this machine (use --device cpu)")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise InputError("--device", f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def _synth(args: argparse.Namespace) -> int:
    from voicebatch.oneoff import synth_request, synthesize_scripts

    request = synth_request(args, _verify_settings(args, publish_unverified=args.publish_unverified))
    check_synth_request(request)
    _check_device(request.device)
    results = synthesize_scripts(request, progress=progress_reporter(args))
    if args.json:
        _print_json([r.as_json() for r in results])
    else:
        for result in results:
            if result.status in ("failed", "held"):
                print(f"{result.script}: {result.status}: {printable(result.reason or '')}", file=sys.stderr)
            for uri in result.files:
                print(uri)
    return 1 if any(r.status in ("failed", "held") for r in results) else 0


def progress_reporter(args: argparse.Namespace) -> Callable:
    """A progress bar with an ETA on a terminal (tqdm, on stderr); plain log lines otherwise."""
    from voicebatch.synthesis.jobs import log_progress

    if getattr(args, "quiet", False):
        return lambda progress: None
    if not sys.stderr.isatty():
        return log_progress
    return _Bar()


class _Bar:
    """One tqdm bar per engine call (synthesis, then each round of re-takes)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, progress: Any) -> None:
        from tqdm import tqdm

        if self.bar is None or self.bar.total != progress.total or progress.done < self.bar.n:
            if self.bar is not None:
                self.bar.close()
            # A terminal that reports no size (a bare pty: 0 x 0) gets no bar at all from tqdm,
            # which then thinks it has no row to draw on: 80 x 24 then.
            size = shutil.get_terminal_size((80, 24))
            self.bar = tqdm(
                total=progress.total,
                unit="chunk",
                desc="synthesizing",
                file=sys.stderr,
                leave=True,
                ncols=size.columns,
                nrows=size.lines,
            )
        self.bar.update(progress.done - self.bar.n)
        self.bar.set_postfix_str(f"{progress.audio_seconds:.0f} s of audio, RTF {progress.rtf:.2f}")
        if progress.done >= progress.total:
            self.bar.close()
            self.bar = None


def _verify(args: argparse.Namespace) -> int:
    from voicebatch.verify.recording import verify_recording

    if args.text_file is not None:
        try:
            text = args.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(args.text_file, f"cannot read the text: {e}") from None
    else:
        text = args.text
    result = verify_recording(args.audio, text, language=args.lang, settings=_verify_settings(args, language=args.lang))
    if args.json:
        _print_json(result)
    else:
        cer = "-" if result["cer"] is None else f"{result['cer']:.3f}"
        print(f"{'passed' if result['passed'] else 'FAILED'}: CER {cer}, WER {result['wer']}")
        print(f"heard: {result['transcript']}")
        for problem in result["checks"]["reasons"]:
            print(f"  - {problem}")
        rows = [(s["text"][:60], _seconds(s["start"]), _seconds(s["end"])) for s in result["sentences"]]
        _table(("sentence", "start", "end"), rows)
    return 0 if result["passed"] else 1


def _print_json(document: object) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2))


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    widths[-1] = 0  # the last column runs free
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
