"""The flags several commands share: numbers within the settings catalogue's ranges, loudness,
verification, and the synthesis options of ``synth``, ``book`` and ``retake``; and the ``synth``
command itself."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from voicebatch.cli.run_commands import synth_command
from voicebatch.settings import DEFAULTS, LIMITS
from voicebatch.verify.settings import DEFAULT_ASR_MODEL, MODES

AUDIO_FORMATS = ("wav", "flac", "mp3")


def ranged(name: str, kind: Callable[[str], float] = float) -> Callable[[str], float]:
    """An argparse type: a number within ``voicebatch.settings.LIMITS[name]`` (the DAG Param's range)."""

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


def loudness(text: str) -> float | None:
    if text.strip().lower() in ("off", "none"):
        return None
    return ranged("loudness_lufs")(text)


def verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verify", choices=MODES, default=DEFAULTS["verify"], help="checks on every chunk")
    parser.add_argument(
        "--max-takes",
        type=ranged("max_takes", int),
        default=DEFAULTS["max_takes"],
        help=f"takes per chunk, the first included, {LIMITS['max_takes'].span()} (default: {DEFAULTS['max_takes']})",
    )
    parser.add_argument(
        "--max-cer",
        type=ranged("max_cer"),
        help=f"pass threshold, {LIMITS['max_cer'].span()} (default: the backend's calibrated one)",
    )
    parser.add_argument(
        "--asr-model", default=DEFAULT_ASR_MODEL, help="pocketsphinx:en-us or whisper:<size> (weights: model store)"
    )


def add_synthesis_options(parser: argparse.ArgumentParser) -> None:
    """The model, synthesis, verification and lexicon options of ``synth`` (and ``book``)."""
    parser.add_argument("--model", help=f"model name, model folder or s3:// prefix (default: {DEFAULTS['model']})")
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
        help=f"padded mel frames per forward pass, {LIMITS['batch_frames'].span()} "
        f"(default: {DEFAULTS['batch_frames']})",
    )
    parser.add_argument(
        "--cross-fade",
        type=ranged("cross_fade"),
        help=f"seconds of cross-fade between chunks, {LIMITS['cross_fade'].span()} (default: 0.15)",
    )
    parser.add_argument("--device", help="cuda, cuda:N or cpu (default: a free GPU, else the CPU)")
    parser.add_argument("--lexicon", help="pronunciation lexicon: .csv or .pls, a folder of them, or s3://")
    verify_options(parser)
    parser.add_argument(
        "--hold-unverified",
        dest="publish_unverified",
        action="store_false",
        help="do not write a script with a chunk that never passed verification (exit code 1)",
    )
    parser.add_argument("--force", action="store_true", help="synthesize again even when the output is already there")


def synth_parser(groups: argparse._SubParsersAction, command: Callable) -> None:
    """The ``synth`` command (``command``: the main parser's builder)."""
    synth = command(
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
        synth_command,
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
        help="a script file (.txt, .md, .jsonl, .csv, .docx, .html, .ssml; a subtitle file .srt, .vtt, .ttml, .ass, "
        ".sbv is a timed script, each cue spoken in its slot) or a folder of them; repeat for several",
    )
    synth.add_argument(
        "--out", help="output folder, or s3://bucket/prefix to publish (default: the config's output_dir)"
    )
    synth.add_argument("--format", choices=AUDIO_FORMATS, help="audio format (default: wav, or the output_file's)")
    synth.add_argument(
        "--loudness",
        type=loudness,
        default=-16.0,
        help=f"integrated loudness target in LUFS, {LIMITS['loudness_lufs'].span()}, or off",
    )
    add_synthesis_options(synth)
    synth.add_argument("--json", action="store_true", help="print JSON rows (one per script) instead of file names")
