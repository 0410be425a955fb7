"""`voicebatch check acx`: finished audiobook files against ACX's rules.

One line per file (``path: pass | figures`` or ``path: FAIL rule measured (needs ...)``), or
``--json``: a list of rows, one per file, in ``mastering.acx.AcxReport.to_dict``'s shape (the
shape the pipeline records in the manifest). Exit code 1 when any file fails a rule or cannot
be read, 0 when all pass. Registered on the main parser by ``add_check_commands``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from voicebatch.render.mastering.profiles import ACX


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
