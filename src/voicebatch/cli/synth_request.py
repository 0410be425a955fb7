"""What ``voicebatch synth`` is asked for: the flags, over the ``--config`` TOML's keys, over the
defaults, as one typed request; and the one shape of a result row.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebatch.errors import InputError
from voicebatch.render.join import CROSS_FADE_SECONDS
from voicebatch.render.outputs import OutputOptions
from voicebatch.run.pipeline import RunSettings
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.engine import SynthesisParams
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.verify.settings import VerifySettings

if TYPE_CHECKING:
    import argparse

    from voicebatch.text.lexicon import Lexicon
from voicebatch.cli.f5_toml import read_config
from voicebatch.cli.synth_records import SynthRequest, VoiceInput

log = logging.getLogger(__name__)


def synth_request(args: argparse.Namespace, verify: VerifySettings) -> SynthRequest:
    """The flags, over the ``--config`` TOML's keys, over the defaults."""
    config = read_config(args.config) if args.config else {}
    voices = [_voice_flag(v, i) for i, v in enumerate(args.voice or ())]
    if not voices:
        voices = config.get("voices", [])
    if not voices:
        raise InputError("--voice", "no voice: give --voice (or ref_audio in the --config TOML)")
    text = args.text
    text_source, text_name = "--text", "synth"
    if text is None and not args.script and "text" in config:
        text, text_source = config["text"], config["text_source"]
        text_name = config.get("name", "synth")
    if text is None and not args.script:
        raise InputError("--text", "nothing to speak: give --text or --script (or gen_text / gen_file in the TOML)")
    if text is not None and args.script:
        raise InputError("--script", "give --text or --script, not both")
    out = args.out or config.get("out")
    if not out:
        raise InputError("--out", "no output: give --out (or output_dir in the --config TOML)")
    nfe = _first(args.nfe, config.get("nfe_steps"), DEFAULTS["nfe_steps"])
    cfg = _first(args.cfg, config.get("cfg_strength"), DEFAULTS["cfg_strength"])
    sway = _first(config.get("sway_sampling_coef"), -1.0)
    options = OutputOptions(
        audio_format=_first(args.format, config.get("format"), DEFAULTS["audio_format"]), loudness_lufs=args.loudness
    )
    return SynthRequest(
        voices=tuple(voices),
        out=str(out),
        text=text,
        text_source=text_source,
        text_name=text_name,
        scripts=tuple(args.script or ()),
        model=_first(args.model, config.get("model"), DEFAULTS["model"]),
        params=SynthesisParams(nfe_steps=int(nfe), cfg_strength=float(cfg), sway_sampling_coef=float(sway)),
        options=options,
        speed=_first(args.speed, config.get("speed")),
        seed=_first(args.seed, DEFAULTS["seed"]),
        cross_fade=_first(args.cross_fade, config.get("cross_fade"), CROSS_FADE_SECONDS),
        batch_frames=_first(args.batch_frames, DEFAULTS["batch_frames"]),
        device=_first(args.device, config.get("device")),
        verify=verify,
        force=args.force,
        lexicon=args.lexicon,
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _voice_flag(value: str, position: int) -> VoiceInput:
    """``--voice PATH`` or ``--voice NAME=PATH``."""
    name, sep, path = value.partition("=")
    if sep and name and "/" not in name and not Path(value).exists():
        return VoiceInput(name, Path(path), where=f"--voice {value}")
    return VoiceInput("", Path(value), where=f"--voice {value}")  # named after its folder or file


def model_and_settings(request: SynthRequest, lexicon: Lexicon | None, models: ModelStore | None) -> tuple:
    """The request's model files (random weights announced) and its run settings."""
    files = (models or ModelStore()).resolve(request.model)
    if files.random_weights:
        log.warning("model %s has random weights: the audio is noise, not a voice", files.name)
    settings = RunSettings(
        request.params,
        request.options,
        seed=request.seed,
        cross_fade=request.cross_fade,
        verify=request.verify,
        lexicon=lexicon,
    )
    return files, settings
