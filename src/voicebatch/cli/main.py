"""`voicebatch` command: check and convert inputs, synthesize and verify without Airflow.

Conventions: results go to stdout, everything else (logs, progress, errors) to
stderr; ``--json`` on every command that produces results, one JSON shape per kind of row;
``-v``/``-q`` anywhere on the line; ``--version``; every option with its help and default, and
examples in each command's help; numeric ranges from ``voicebatch.settings``, the same ones the
DAG's Params use. Exit codes: 0 success, 1 some inputs are unusable (the rows say which), 2 bad
usage or an error (one line on stderr; ``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from voicebatch.cli.locations import check_command_locations
from voicebatch.errors import InputError

if TYPE_CHECKING:
    pass
from voicebatch.cli.output import printable
from voicebatch.cli.parser import build_parser

log = logging.getLogger(__name__)


# Commands whose INFO lines are progress a user waits for (the checks stay quiet unless -v).
CHATTY = ("synth", "book", "retake", "model tiny", "model resolve", "verify")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
    from voicebatch.locations.retry import describe_error, is_permanent, is_transient
    from voicebatch.synthesis.models import ModelError

    if isinstance(error, (InputError, ModelError)):
        return printable(str(error))
    if isinstance(error, OSError) and error.filename:
        return printable(describe_error(error))  # a local file: its name and what is wrong with it
    if is_transient(error) or is_permanent(error):
        location = next((u for u in _storage_locations(args) if u.startswith("s3://")), None)
        return printable(f"{location}: {describe_error(error)}" if location else describe_error(error))
    return f"unexpected {type(error).__name__}: {printable(str(error))} (run with -v for the traceback)"


def _storage_locations(args: argparse.Namespace) -> list[str]:
    """The locations a command reads or writes, in the order an error most likely concerns them."""
    names = ("out", "output", "manifest", "s3_prefix", "spec", "model")
    return [str(getattr(args, name)) for name in names if getattr(args, name, None)]


if __name__ == "__main__":
    sys.exit(main())
