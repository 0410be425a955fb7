"""`voicebatch retake`: chosen chunks of a published output spoken again (``voicebatch.run.retake``).

Prints each re-taken chunk's verification status and the new output's manifest (or
``--json``: one row, ``RetakeResult.as_json``). Exit code 0 when it is published (as ``synth``,
also when a re-taken chunk still never passed verification: the output is marked
``needs_review``), 2 on an error. Registered on the
main parser by ``add_retake_command``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def add_retake_command(groups: argparse._SubParsersAction, command: Callable) -> None:
    """The ``retake`` command (``command``: the main parser's builder)."""
    from voicebatch.cli.flags import ranged
    from voicebatch.settings import DEFAULTS

    retake = command(
        groups,
        "retake",
        "speak chosen chunks of a published output again, as a new output that supersedes it",
        "  voicebatch retake out/audio/intro/3f2c…/manifest.json --chunk 1 --seed 99\n"
        "  voicebatch retake s3://bucket/out/audio/intro/3f2c…/manifest.json --chunk 4 --text 'Hello, world.'\n"
        "  voicebatch retake MANIFEST --chunk 2 --chunk 5 --out out/   # new seeds for chunks 2 and 5",
        "retake",
        retake_command,
    )
    retake.add_argument("manifest", help="a published manifest.json: <output>/audio/<script>/<hash>/manifest.json")
    retake.add_argument(
        "--chunk",
        type=int,
        action="append",
        required=True,
        metavar="N",
        help="a chunk to re-take, as numbered in the manifest's chunks (from 0); repeat for more",
    )
    what = retake.add_mutually_exclusive_group()
    what.add_argument("--text", help="the chunk's new text, as written (one --chunk); spoken with its seed")
    what.add_argument("--drop", action="store_true", help="replace the chunks with silence of the same length")
    retake.add_argument(
        "--seed",
        type=ranged("seed", int),
        help="the re-taken chunks' seed; default: a new one derived from each chunk's own",
    )
    retake.add_argument("--out", help="where to publish (local folder or s3://); default: the manifest's own output")
    retake.add_argument("--model", help="the model folder or s3:// prefix; default: the manifest's model name")
    retake.add_argument("--device", help="cpu, cuda or cuda:N; default: a leased GPU, else the CPU")
    retake.add_argument(
        "--batch-frames",
        type=ranged("batch_frames", int),
        default=DEFAULTS["batch_frames"],
        help="GPU batch budget in mel frames",
    )
    retake.add_argument("--json", action="store_true", help="print a JSON row instead of the manifest's location")


def retake_command(args: argparse.Namespace) -> int:
    from voicebatch.errors import InputError
    from voicebatch.run.retake import ChunkEdit, retake

    if args.text is not None and len(args.chunk) != 1:
        raise InputError("--text", "an edited text is for one chunk: give one --chunk")
    if args.drop and args.seed is not None:
        raise InputError("--seed", "a dropped chunk takes no seed")
    edits = [ChunkEdit(n, seed=args.seed, text=args.text, drop=args.drop) for n in args.chunk]
    result = retake(
        args.manifest, edits, args.out, model=args.model, device=args.device, batch_frames=args.batch_frames
    )
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        for chunk in result.chunks:
            print(f"chunk {chunk['index']}: {chunk['action']}, {chunk['status']}")
        print(result.manifest_uri)
    return 0
