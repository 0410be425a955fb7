"""`voicebatch book`: a book narrated into an audiobook (``books.produce``), and `voicebatch
check acx`: finished audiobook files against ACX's rules.

One line per file (``path: pass | figures`` or ``path: FAIL rule measured (needs ...)``), or
``--json``: a list of rows, one per file, in ``mastering.acx.AcxReport.to_dict``'s shape (the
shape the pipeline records in the manifest). Exit code 1 when any file fails a rule or cannot
be read, 0 when all pass. Registered on the main parser by ``add_book_command`` and
``add_check_commands``; `book` takes `synth`'s model, synthesis, verification and lexicon
options from the same builder (``cli.add_synthesis_options``) and its request from
``oneoff.synth_request``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from voicebatch.render.mastering.profiles import ACX, PROFILE_NAMES, PROFILES


def add_book_command(groups: argparse._SubParsersAction, command: Callable) -> None:
    """``voicebatch book BOOK --voice VOICE --out DIR`` (``command``: the main parser's builder)."""
    from voicebatch.cli.flags import add_synthesis_options
    from voicebatch.render.mastering.narration import FORMATS

    book = command(
        groups,
        "book",
        "narrate an EPUB or Markdown book into an audiobook: chapter MP3s, an M4B, a read-along EPUB 3",
        "  voicebatch book novel.epub --voice voices/anna --out out/novel --narrator 'Anna Reader'\n"
        "  voicebatch book novel.epub --voice voices/anna --out s3://bucket/output --master podcast --formats m4b\n"
        "Mastered per --master, every MP3 checked against ACX's rules (in the manifest); an already written\n"
        "book (same inputs and settings) is skipped: local --out and S3 alike.",
        "book",
        book_command,
    )
    book.add_argument("book", type=Path, help="the book: .epub (EPUB 2 or 3), .md, .markdown or .txt")
    book.add_argument(
        "--voice",
        action="append",
        required=True,
        metavar="[NAME=]PATH",
        help="the narrator: a voice folder, prepared voice, or recording beside its transcript",
    )
    book.add_argument("--out", required=True, help="output folder, or s3://bucket/prefix to publish")
    book.add_argument(
        "--master",
        choices=PROFILE_NAMES,
        default="acx",
        help="mastering profile: " + "; ".join(f"{n}: {p.describe()}" for n, p in PROFILES.items()),
    )
    book.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help="files to write, comma-separated: mp3 (a file per chapter and credits), m4b (one file, chapter "
        "marks), epub (EPUB 3 with Media Overlays)",
    )
    book.add_argument("--narrator", default="", help="the narrator's name: credits, tags and the EPUB's metadata")
    add_synthesis_options(book)
    book.add_argument("--json", action="store_true", help="print a JSON row instead of file names")
    # What `synth`'s request builder reads and a book does not take.
    book.set_defaults(config=None, text=None, format="wav", loudness=None)


def book_command(args: argparse.Namespace) -> int:
    import sys

    from voicebatch.cli.book import check_book_path, produce_book
    from voicebatch.cli.locations import check_synth_request
    from voicebatch.cli.output import printable
    from voicebatch.cli.run_commands import check_device, progress_reporter, verify_settings
    from voicebatch.cli.synth_request import synth_request
    from voicebatch.render.mastering.narration import BookOptions, parse_formats

    options = BookOptions(args.master, parse_formats(args.formats), args.narrator.strip())
    # The book is the request's one script: the allow-list checks it with the voices and --out.
    request = synth_request(
        argparse.Namespace(**{**vars(args), "script": [args.book]}),
        verify_settings(args, publish_unverified=args.publish_unverified),
    )
    check_synth_request(request)
    check_book_path(args.book)
    check_device(request.device)
    result = produce_book(request, args.book, options, progress=progress_reporter(args))
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        if result.status == "held":
            print(f"{result.book}: held: {printable(result.reason or '')}", file=sys.stderr)
        for uri in result.files:
            print(uri)
        if result.acx_passed is False:
            print(f"{result.book}: some files fail ACX's rules (see the manifest's acx section)", file=sys.stderr)
    return 1 if result.status == "held" else 0


def add_check_commands(groups: argparse._SubParsersAction, group: Callable, command: Callable) -> None:
    """The ``check`` group (``group`` and ``command`` are the main parser's builders)."""
    checks = group(groups, "check", "check finished files against a marketplace's rules")
    acx = command(
        checks,
        "acx",
        "check audiobook files against ACX's submission rules, measured on the encoded files",
        "  voicebatch check acx book/chapter-001.mp3\n  voicebatch check acx book/*.mp3 --json > acx.json",
        "check acx",
        check_acx_command,
    )
    acx.add_argument(
        "files",
        nargs="+",
        type=Path,
        help=f"encoded files (MP3); rules: RMS {ACX.rms_min_dbfs:g} to {ACX.rms_max_dbfs:g} dBFS, true peak <= "
        f"{ACX.peak_max_dbfs:g} dB, noise floor <= {ACX.noise_floor_max_dbfs:g} dBFS (room tone, not digital "
        f"silence), {ACX.head_min_seconds:g}-{ACX.head_max_seconds:g} s room tone at the head and "
        f"{ACX.tail_min_seconds:g}-{ACX.tail_max_seconds:g} s at the tail, MP3 CBR >= {ACX.min_bit_rate // 1000} kbps, "
        f"{ACX.sample_rate} Hz mono, at most {ACX.max_seconds / 60:g} minutes",
    )
    acx.add_argument("--json", action="store_true", help="print JSON rows instead of lines")


def check_acx_command(args: argparse.Namespace) -> int:
    from voicebatch.cli.locations import check_input_path
    from voicebatch.render.mastering.acx import check_acx

    for path in args.files:
        check_input_path("FILES", path)  # the deployment's allow-list, where one is set
    reports = [check_acx(path) for path in args.files]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        from voicebatch.cli.output import printable

        for report in reports:
            print(printable(report.line()))
    return 0 if all(r.passed for r in reports) else 1
