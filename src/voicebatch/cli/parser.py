"""The ``voicebatch`` command's parser: every command group and flag, with the ranges and defaults
of the settings catalogue, examples in each command's help, and ``--json`` everywhere.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.inputs.reference import ClipRules
from voicebatch.inputs.transcripts.detect import TRANSCRIPT_TYPES
from voicebatch.settings import DEFAULTS, LIMITS
from voicebatch.verify.settings import DEFAULT_ASR_MODEL

if TYPE_CHECKING:
    pass
from voicebatch.cli.flags import ranged, synth_parser
from voicebatch.cli.input_commands import (
    convert_command,
    scripts_check_command,
    text_normalize_command,
    voices_check_command,
)
from voicebatch.cli.retake import add_retake_command
from voicebatch.cli.run_commands import (
    engine_versions,
    model_resolve_command,
    model_tiny_command,
    report_share_command,
    verify_command,
)

log = logging.getLogger(__name__)


CONVERT_FORMATS = ("json", "txt", "srt", "vtt", "csv")


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


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--version", action="version", version=f"voicebatch {__version__} ({engine_versions()})")
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
        convert_command,
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
        voices_check_command,
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
        scripts_check_command,
    )
    scheck.add_argument(
        "directory",
        type=Path,
        help="a folder of scripts (.txt, .md, .jsonl, .csv, .docx, .html, .ssml; subtitle files are timed scripts)",
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
        text_normalize_command,
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
        model_tiny_command,
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
        model_resolve_command,
    )
    resolve.add_argument(
        "spec", nargs="?", default=DEFAULTS["model"], help="a model name, model folder or s3:// prefix"
    )
    resolve.add_argument("--s3-prefix", help="s3://bucket/prefix holding models (warm starts)")
    resolve.add_argument("--json", action="store_true", help="print a JSON row instead of a line")

    synth_parser(groups, _command)

    from voicebatch.cli.books import add_book_command, add_check_commands

    add_book_command(groups, _command)

    add_check_commands(groups, _group, _command)
    add_retake_command(groups, _command)

    verify = _command(
        groups,
        "verify",
        "check a recording against its text and time every word",
        "  voicebatch verify take.wav --text 'The birch canoe slid on the smooth planks.'\n"
        "  voicebatch verify chapter1.flac --text-file chapter1.txt --json",
        "verify",
        verify_command,
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
        report_share_command,
    )
    share.add_argument("output", help="the run's output location (s3://bucket/prefix)")
    share.add_argument("--run-id", required=True, help="the Airflow run id")
    share.add_argument("--dag-id", default="voice_batch", help="the DAG")
    share.add_argument("--expires", type=int, default=7 * 24 * 3600, help="seconds the links work, at most 7 days")
    share.add_argument("--json", action="store_true", help="print a JSON row instead of the link")
    return parser


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
