"""The commands that load a model or speak: ``model tiny``, ``model resolve``, ``synth`` (with its
progress bar), ``verify`` and ``report share``.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from voicebatch.cli.locations import check_synth_request
from voicebatch.errors import InputError
from voicebatch.settings import DEFAULTS

if TYPE_CHECKING:
    pass
from voicebatch.cli.output import format_seconds, print_json, print_table, printable

log = logging.getLogger(__name__)


def model_row(files: Any, fetched: Sequence[str] = ()) -> dict:
    """The one shape of a model row (``model tiny --json``, ``model resolve --json``)."""
    return {
        "name": files.name,
        "directory": str(files.directory),
        "checksum": files.checksum,
        "random_weights": files.random_weights,
        "fetched": list(fetched),
    }


def model_tiny_command(args: argparse.Namespace) -> int:
    from voicebatch.synthesis.tiny import build_tiny_model

    files = build_tiny_model(args.directory)
    if args.json:
        print_json(model_row(files))
    else:
        print(f"{files.name}: {files.directory} (random weights: noise, not a voice)")
    return 0


def model_resolve_command(args: argparse.Namespace) -> int:
    from voicebatch.locations.storage import open_storage
    from voicebatch.synthesis.model_store import ModelStore

    store = ModelStore(s3_prefix=open_storage(args.s3_prefix) if args.s3_prefix else None)
    files = store.resolve(args.spec)
    if args.json:
        print_json(model_row(files, store.fetched))
    else:
        weights = " (random weights: noise, not a voice)" if files.random_weights else ""
        print(f"{files.name}: {files.directory}, checksum {files.checksum[:16]}{weights}")
    return 0


def report_share_command(args: argparse.Namespace) -> int:
    from voicebatch.locations.storage import PRESIGN_SECONDS, open_storage
    from voicebatch.publish.report import share_report

    if not 1 <= args.expires <= PRESIGN_SECONDS:
        raise InputError("--expires", f"{args.expires} s: links can live 1 s to 7 days ({PRESIGN_SECONDS} s)")
    url = share_report(open_storage(args.output), args.dag_id, args.run_id, args.expires)
    if args.json:
        print_json({"run_id": args.run_id, "url": url, "expires_seconds": args.expires})
    else:
        print(url)
    return 0


def verify_settings(args: argparse.Namespace, **extra: object) -> object:
    from voicebatch.verify.settings import VerifySettings

    try:
        return VerifySettings(
            mode=getattr(args, "verify", DEFAULTS["verify"]),
            max_takes=getattr(args, "max_takes", 1),  # commands without --max-takes check, never re-take
            max_cer=args.max_cer,
            asr_model=args.asr_model,
            **extra,
        )
    except ValueError as e:
        raise InputError("verification options", str(e)) from None


def check_device(device: str | None) -> None:
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


def synth_command(args: argparse.Namespace) -> int:
    from voicebatch.cli.synth import synthesize_scripts
    from voicebatch.cli.synth_request import synth_request

    request = synth_request(args, verify_settings(args, publish_unverified=args.publish_unverified))
    check_synth_request(request)
    check_device(request.device)
    results = synthesize_scripts(request, progress=progress_reporter(args))
    if args.json:
        print_json([r.as_json() for r in results])
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


def verify_command(args: argparse.Namespace) -> int:
    from voicebatch.verify.recording import verify_recording

    if args.text_file is not None:
        try:
            text = args.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(args.text_file, f"cannot read the text: {e}") from None
    else:
        text = args.text
    result = verify_recording(args.audio, text, language=args.lang, settings=verify_settings(args, language=args.lang))
    if args.json:
        print_json(result)
    else:
        cer = "-" if result["cer"] is None else f"{result['cer']:.3f}"
        print(f"{'passed' if result['passed'] else 'FAILED'}: CER {cer}, WER {result['wer']}")
        print(f"heard: {result['transcript']}")
        for problem in result["checks"]["reasons"]:
            print(f"  - {problem}")
        rows = [(s["text"][:60], format_seconds(s["start"]), format_seconds(s["end"])) for s in result["sentences"]]
        print_table(("sentence", "start", "end"), rows)
    return 0 if result["passed"] else 1


def engine_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("f5-tts", "torch"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)
