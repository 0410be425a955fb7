"""`voicebatch` command: check and convert inputs without Airflow.

Exit codes: 0 success, 1 some inputs are unusable (the report says which), 2 bad usage or
an unreadable input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import InputError
from voicebatch.reference import ClipRules
from voicebatch.verify.settings import DEFAULT_ASR_MODEL

if TYPE_CHECKING:
    from voicebatch.text.lexicon import Lexicon
    from voicebatch.vocab import Vocabulary
    from voicebatch.voices import VoiceReport

log = logging.getLogger("voicebatch")

CONVERT_FORMATS = ("json", "txt", "srt", "vtt", "csv")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    quiet = logging.INFO if getattr(args, "run", None) in (_synth, _model_tiny) else logging.WARNING
    if getattr(args, "run", None) is _verify:
        quiet = logging.WARNING if args.json else logging.INFO
    logging.basicConfig(level=logging.DEBUG if args.verbose else quiet, format="%(levelname)s %(message)s")
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
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
        return " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename:
        return describe_error(error)  # a local file: its name and what is wrong with it
    if is_transient(error) or is_permanent(error):
        location = next((u for u in _storage_locations(args) if u.startswith("s3://")), None)
        return f"{location}: {describe_error(error)}" if location else describe_error(error)
    text = " ".join(str(error).split())
    return f"unexpected {type(error).__name__}: {text} (run with -v for the traceback)"


def _storage_locations(args: argparse.Namespace) -> list[str]:
    """The locations a command reads or writes, in the order an error most likely concerns them."""
    return [str(getattr(args, name)) for name in ("out", "s3_prefix", "spec", "model") if getattr(args, name, None)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebatch", description="Batch voice cloning with F5-TTS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    groups = parser.add_subparsers(title="commands")

    transcripts = groups.add_parser("transcripts", help="transcript files").add_subparsers(title="actions")
    convert = transcripts.add_parser("convert", help="parse a transcript and print it in another format")
    convert.add_argument("file", type=Path)
    convert.add_argument("--to", choices=CONVERT_FORMATS, default="json")
    convert.set_defaults(run=_convert)

    voices = groups.add_parser("voices", help="voice folders").add_subparsers(title="actions")
    check = voices.add_parser("check", help="validate voices and choose each one's reference clip")
    check.add_argument("directory", type=Path)
    check.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    check.add_argument("--out", type=Path, help="also write each prepared voice (reference.wav/.txt, voice.json)")
    _clip_options(check)
    check.set_defaults(run=_voices_check)

    scripts = groups.add_parser("scripts", help="scripts to synthesize").add_subparsers(title="actions")
    scheck = scripts.add_parser("check", help="validate scripts against voices and show their chunks")
    scheck.add_argument("directory", type=Path)
    scheck.add_argument("--voices", type=Path, required=True, help="voices directory")
    scheck.add_argument("--json", action="store_true", help="print each script's chunks with their spoken text")
    scheck.add_argument("--lexicon", help="pronunciation lexicon (.csv or .pls, or a folder of them)")
    _clip_options(scheck)
    scheck.set_defaults(run=_scripts_check)

    text = groups.add_parser("text", help="spoken form").add_subparsers(title="actions")
    normalize = text.add_parser("normalize", help="print the spoken form F5-TTS is given for TEXT")
    normalize.add_argument("text")
    normalize.add_argument("--lang", default="en", help="language (a num2words code: en, de, fr, ...)")
    normalize.add_argument("--lexicon", help="pronunciation lexicon (.csv or .pls, or a folder of them)")
    normalize.add_argument("--voice", help="apply this voice's lexicon overrides")
    normalize.set_defaults(run=_text_normalize)

    model = groups.add_parser("model", help="models").add_subparsers(title="actions")
    tiny = model.add_parser("tiny", help="write a tiny randomly initialised F5 model (offline tests and demo)")
    tiny.add_argument("directory", type=Path)
    tiny.set_defaults(run=_model_tiny)
    resolve = model.add_parser("resolve", help="resolve a model spec through the model store and verify it")
    resolve.add_argument("spec", nargs="?", default="F5TTS_v1_Base")
    resolve.add_argument("--s3-prefix", help="s3://bucket/prefix holding models (warm starts)")
    resolve.set_defaults(run=_model_resolve)

    synth = groups.add_parser("synth", help="synthesize one text or script with one voice (no Airflow)")
    synth.add_argument(
        "--voice",
        type=Path,
        required=True,
        help="a voice folder, a prepared voice, or a recording beside its transcript",
    )
    what = synth.add_mutually_exclusive_group(required=True)
    what.add_argument("--text")
    what.add_argument("--script", type=Path, help="a .txt or .md script")
    synth.add_argument("--model", default="F5TTS_v1_Base", help="model name, model directory or s3:// prefix")
    synth.add_argument("--nfe", type=int, default=32, help="sampling steps (8-64)")
    synth.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance strength")
    synth.add_argument("--speed", type=float, help="speaking rate 0.5-2.0 (overrides the script's)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--batch-frames", type=int, default=16_384, help="padded mel frames per forward pass")
    synth.add_argument("--device", help="cuda, cuda:N or cpu (default: a free GPU, else the CPU)")
    synth.add_argument("--lexicon", help="pronunciation lexicon: .csv or .pls, a folder of them, or s3://")
    synth.add_argument("--out", required=True, help="output directory")
    _verify_options(synth)
    synth.add_argument(
        "--hold-unverified",
        dest="publish_unverified",
        action="store_false",
        help="write nothing (exit 2) when a chunk never passed verification",
    )
    synth.set_defaults(run=_synth)

    verify = groups.add_parser("verify", help="check a recording against its text and time every word")
    verify.add_argument("audio", type=Path, help="a recording (WAV, FLAC, ...)")
    said = verify.add_mutually_exclusive_group(required=True)
    said.add_argument("--text", help="what the recording should say")
    said.add_argument("--text-file", type=Path, help="a UTF-8 file holding what it should say")
    verify.add_argument("--lang", default="en", help="language of the text (default en)")
    verify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    verify.add_argument("--asr-model", default=DEFAULT_ASR_MODEL, help="pocketsphinx:en-us or whisper:<size>")
    verify.add_argument("--max-cer", type=float, help="pass threshold (default: the backend's calibrated one)")
    verify.set_defaults(run=_verify)
    return parser


def _verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verify", choices=("off", "signal", "asr"), default="asr", help="checks on every chunk (default asr)"
    )
    parser.add_argument("--max-takes", type=int, default=3, help="takes per chunk, the first included (default 3)")
    parser.add_argument("--max-cer", type=float, help="pass threshold (default: the backend's calibrated one)")
    parser.add_argument("--asr-model", default=DEFAULT_ASR_MODEL, help="pocketsphinx:en-us (default) or whisper:<size>")


def _clip_options(parser: argparse.ArgumentParser) -> None:
    defaults = ClipRules()
    parser.add_argument("--min-seconds", type=float, default=defaults.min_seconds, help="shortest reference clip")
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds, help="longest reference clip")
    parser.add_argument("--vocab", type=Path, help="model vocabulary (default: the one f5-tts ships)")


def _rules(args: argparse.Namespace) -> ClipRules:
    return ClipRules(min_seconds=args.min_seconds, max_seconds=args.max_seconds)


def _convert(args: argparse.Namespace) -> int:
    from voicebatch.transcripts import read_transcript, writers

    transcript = read_transcript(args.file)
    if not transcript.timed:
        if args.to in ("srt", "vtt", "csv"):
            raise InputError(args.file, f"a plain-text transcript has no timings: cannot write {args.to}")
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
        print(json.dumps([r.as_json() for r in reports], ensure_ascii=False, indent=2))
    else:
        rows = [
            (r.name, r.status, "" if r.start is None else f"{r.start:6.2f}–{r.end:6.2f} s", _reason(r)) for r in reports
        ]
        _table(("voice", "status", "clip", "reference text / reason"), rows)
    return 1 if any(r.status != "ok" for r in reports) or not reports else 0


def _reason(report: VoiceReport) -> str:
    if report.status != "ok":
        return report.reason or ""
    text = report.text if len(report.text) <= 60 else report.text[:57] + "..."
    return text + "".join(f"  [warning: {w}]" for w in report.warnings)


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
    rows, results = [], []
    for script in scripts:
        unusable = [v for v in script.voices if v not in prepared]
        if unusable:
            reason = f"voice(s) {', '.join(unusable)} unusable (see `voicebatch voices check`)"
            results.append({"script": script.id, "status": "error", "reason": reason})
            rows.append((script.id, "error", ", ".join(script.voices), "", reason))
            continue
        chunks = chunk_script(script, references, spoken=spoken)
        results.append(
            {
                "script": script.id,
                "status": "ok",
                "voices": list(script.voices),
                "chunks": len(chunks),
                "characters": sum(len(c.text) for c in chunks),
                "chunk_list": [
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
            }
        )
        rows.append((script.id, "ok", ", ".join(script.voices), str(len(chunks)), script.source))
    for problem in problems:  # every bad item of a .jsonl / .csv is its own row
        name = script_label(problem)
        results.append({"script": name, "status": "error", "reason": str(problem)})
        rows.append((name, "error", "", "", str(problem)))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        _table(("script", "status", "voices", "chunks", "source / reason"), rows)
        total = sum(r.get("chunks", 0) for r in results)
        failed = sum(r["status"] != "ok" for r in results)
        print(f"\n{len(results)} script(s): {total} chunk(s) to synthesize, {failed} with problems")
    return 1 if any(r["status"] != "ok" for r in results) else 0


def _lexicon(location: str | None, vocab: Vocabulary | None = None) -> Lexicon | None:
    """The lexicon at ``location`` (local or s3://), its respellings checked against the vocabulary."""
    if not location:
        return None
    from voicebatch.storage import open_storage
    from voicebatch.text.lexicon import LexiconError, read_lexicon

    lexicon = read_lexicon(location, open_storage)
    for entry in lexicon.entries if vocab is not None else ():
        if missing := vocab.unsupported_characters(entry.respelling):
            raise LexiconError(
                location, f"{entry.word!r}: the respelling has characters the model cannot speak: {' '.join(missing)}"
            )
    return lexicon


def _text_normalize(args: argparse.Namespace) -> int:
    from voicebatch.text.normalize import language_problem
    from voicebatch.text.spoken import SpokenForm

    if problem := language_problem(args.lang):
        raise InputError("--lang", problem)
    print(SpokenForm(args.lang, _lexicon(args.lexicon))(args.text, args.voice))
    return 0


def _model_tiny(args: argparse.Namespace) -> int:
    from voicebatch.synthesis.tiny import build_tiny_model

    files = build_tiny_model(args.directory)
    print(f"{files.name}: {files.directory} (random weights: noise, not a voice)")
    return 0


def _model_resolve(args: argparse.Namespace) -> int:
    from voicebatch.storage import open_storage
    from voicebatch.synthesis.models import ModelStore

    store = ModelStore(s3_prefix=open_storage(args.s3_prefix) if args.s3_prefix else None)
    files = store.resolve(args.spec)
    print(
        json.dumps(
            {
                "name": files.name,
                "directory": str(files.directory),
                "checksum": files.checksum,
                "random_weights": files.random_weights,
                "fetched": store.fetched,
            },
            indent=2,
        )
    )
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
    from voicebatch.oneoff import synthesize_to_directory

    _check_device(args.device)

    written = synthesize_to_directory(
        voice_dir=args.voice,
        text=args.text,
        script=args.script,
        out=args.out,
        model=args.model,
        nfe=args.nfe,
        cfg=args.cfg,
        speed=args.speed,
        seed=args.seed,
        batch_frames=args.batch_frames,
        device=args.device,
        verify=_verify_settings(args, publish_unverified=args.publish_unverified),
        lexicon=args.lexicon,
    )
    for uri in written:
        print(uri)
    return 0


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
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        cer = "-" if result["cer"] is None else f"{result['cer']:.3f}"
        print(f"{'passed' if result['passed'] else 'FAILED'}: CER {cer}, WER {result['wer']}")
        print(f"heard: {result['transcript']}")
        for problem in result["checks"]["reasons"]:
            print(f"  - {problem}")
        rows = [(s["text"][:60], _seconds(s["start"]), _seconds(s["end"])) for s in result["sentences"]]
        _table(("sentence", "start", "end"), rows)
    return 0 if result["passed"] else 1


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    widths[-1] = 0  # the last column runs free
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
