"""Models are data, never code: F5-TTS's DiT and the Vocos vocoder built by voicebatch itself.

A model folder names no code. Vocos's own loader (``Vocos.from_hparams``, jsonargparse style)
imports and calls whatever ``class_path`` its ``config.yaml`` names, and ``torch.load`` without
``weights_only`` unpickles anything: whoever can write a model folder could run code on every
worker that loads it. Here instead:

- ``model.yaml`` and ``vocoder/config.yaml`` are read with ``yaml.safe_load`` and checked
  against the schemas below: known keys, each with its type and range. A ``class_path`` may
  appear (Vocos's hub config has them) only naming the one class voicebatch builds for that
  part; it is never imported from the file. Anything else is refused, naming the file and key.
- the F5 checkpoint is read with safetensors only; the Vocos weights (``pytorch_model.bin``,
  the hub's format) with ``torch.load(weights_only=True)``, which loads tensors and nothing
  else.

``check_model_config`` and ``check_vocoder_config`` run when a model is resolved or its
manifest read (before any task goes on with it); ``build_f5`` and ``build_vocos`` check again,
so nothing reaches a constructor unchecked.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# A rule: the Python types a value may have, and (numbers) an inclusive range or (strings) the
# values allowed. Ranges are generous for real models and stop absurd allocations.
_INT, _FLOAT, _BOOL, _NONE = (int,), (int, float), (bool,), (type(None),)
_Rule = tuple[tuple[type, ...], Any]

DIT_ARCH: dict[str, _Rule] = {
    "dim": (_INT, (8, 8192)),
    "depth": (_INT, (1, 128)),
    "heads": (_INT, (1, 128)),
    "dim_head": (_INT, (8, 1024)),
    "dropout": (_FLOAT, (0.0, 1.0)),
    "ff_mult": (_FLOAT, (1, 16)),
    "text_dim": (_INT + _NONE, (8, 8192)),
    "text_mask_padding": (_BOOL, None),
    "text_embedding_average_upsampling": (_BOOL, None),
    "qk_norm": ((*_NONE, str), ("rms_norm",)),
    "conv_layers": (_INT, (0, 64)),
    "pe_attn_head": (_INT + _NONE, (0, 128)),
    "attn_backend": ((str,), ("torch", "flash_attn")),
    "attn_mask_enabled": (_BOOL, None),
    "long_skip_connection": (_BOOL, None),
    "checkpoint_activations": (_BOOL, None),
}
MEL_SPEC: dict[str, _Rule] = {
    "target_sample_rate": (_INT, (24_000, 24_000)),
    "n_mel_channels": (_INT, (1, 512)),
    "hop_length": (_INT, (1, 4096)),
    "win_length": (_INT, (1, 2**14)),
    "n_fft": (_INT, (1, 2**14)),
    "mel_spec_type": ((str,), ("vocos",)),
}
MODEL_KEYS: dict[str, _Rule] = {
    "name": ((str,), None),
    "backbone": ((str,), ("DiT",)),  # the engine's batched attention patches DiT blocks (E2's UNetT: no)
    "random_weights": (_BOOL, None),
}
# Vocos: part -> (the one class voicebatch builds for it, its arguments).
VOCOS_PARTS: dict[str, tuple[str, dict[str, _Rule]]] = {
    "feature_extractor": (
        "vocos.feature_extractors.MelSpectrogramFeatures",
        {
            "sample_rate": (_INT, (24_000, 24_000)),
            "n_fft": (_INT, (16, 2**14)),
            "hop_length": (_INT, (1, 4096)),
            "n_mels": (_INT, (1, 512)),
            "padding": ((str,), ("center", "same")),
        },
    ),
    "backbone": (
        "vocos.models.VocosBackbone",
        {
            "input_channels": (_INT, (1, 512)),
            "dim": (_INT, (8, 8192)),
            "intermediate_dim": (_INT, (8, 32_768)),
            "num_layers": (_INT, (1, 64)),
            "layer_scale_init_value": (_FLOAT + _NONE, (0.0, 10.0)),
            "adanorm_num_embeddings": (_INT + _NONE, (1, 64)),
        },
    ),
    "head": (
        "vocos.heads.ISTFTHead",
        {
            "dim": (_INT, (8, 8192)),
            "n_fft": (_INT, (16, 2**14)),
            "hop_length": (_INT, (1, 4096)),
            "padding": ((str,), ("center", "same")),
        },
    ),
}


class ModelConfigError(ValueError):
    """A model or vocoder config outside the schema (one line naming the file and key)."""


def check_model_config(config: object, where: str = "model.yaml") -> dict:
    """``model.yaml`` checked against the schema; returns it. Raises ``ModelConfigError``."""
    if not isinstance(config, dict):
        raise ModelConfigError(f"{where}: expected a mapping of settings")
    _check(config, {**MODEL_KEYS, "arch": ((dict,), None), "mel_spec": ((dict,), None)}, where, required=())
    for key in ("backbone", "arch", "mel_spec"):
        if key not in config:
            raise ModelConfigError(f"{where}: {key!r} is missing")
    _check(config["arch"], DIT_ARCH, f"{where}: arch", required=("dim",))
    _check(config["mel_spec"], MEL_SPEC, f"{where}: mel_spec", required=tuple(MEL_SPEC))
    return config


def check_vocoder_config(config: object, where: str = "vocoder/config.yaml") -> dict[str, dict]:
    """The Vocos parts' arguments (part -> init_args), checked. Raises ``ModelConfigError``."""
    if not isinstance(config, dict):
        raise ModelConfigError(f"{where}: expected a mapping of settings")
    if unknown := sorted(set(config) - set(VOCOS_PARTS), key=str):
        names = ", ".join(repr(str(k)[:40]) for k in unknown)
        raise ModelConfigError(f"{where}: unknown part(s) {names}; known: {', '.join(VOCOS_PARTS)}")
    parts = {}
    for part, (class_path, rules) in VOCOS_PARTS.items():
        section = config.get(part)
        if not isinstance(section, dict):
            raise ModelConfigError(f"{where}: {part!r} is missing or not a mapping")
        if unknown := sorted(set(section) - {"class_path", "init_args"}, key=str):
            raise ModelConfigError(f"{where}: {part}: unknown key(s) {', '.join(map(repr, unknown))}")
        named = section.get("class_path", class_path)
        if named != class_path:
            raise ModelConfigError(
                f"{where}: {part}: class_path {str(named)[:80]!r} refused: voicebatch builds only {class_path} "
                "here (a model folder is data; it never names code to run)"
            )
        arguments = section.get("init_args") or {}
        if not isinstance(arguments, dict):
            raise ModelConfigError(f"{where}: {part}: init_args must be a mapping")
        _check(arguments, rules, f"{where}: {part}", required=())
        parts[part] = dict(arguments)
    return parts


def read_yaml(path: Path) -> object:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ModelConfigError(f"{path}: not valid YAML ({type(e).__name__})") from None


def build_f5(config: Mapping, vocab: Path, device: str, *, arch: Mapping | None = None) -> torch.nn.Module:
    """F5's CFM around a DiT, from a checked ``model.yaml`` (``arch`` overrides its arch)."""
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer

    check_model_config(dict(config))
    mel = config["mel_spec"]
    vocab_char_map, vocab_size = get_tokenizer(str(vocab), "custom")
    transformer = DiT(**(arch or config["arch"]), text_num_embeds=vocab_size, mel_dim=mel["n_mel_channels"])
    mel_keys = ("n_fft", "hop_length", "win_length", "n_mel_channels", "target_sample_rate", "mel_spec_type")
    return CFM(
        transformer=transformer,
        mel_spec_kwargs={k: mel[k] for k in mel_keys},
        odeint_kwargs={"method": "euler"},
        vocab_char_map=vocab_char_map,
    ).to(device)


def load_f5_weights(model: torch.nn.Module, checkpoint: Path, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """The EMA weights of an F5 safetensors checkpoint (what F5's ``load_checkpoint`` does for
    ``.safetensors``; any other format is refused rather than unpickled)."""
    from safetensors.torch import load_file

    if checkpoint.suffix != ".safetensors":
        raise ModelConfigError(f"{checkpoint}: F5 weights are read from safetensors only")
    try:
        state = load_file(str(checkpoint), device=device)
    except Exception as e:  # SafetensorError: not a safetensors file (a pickle, say); nothing was run
        raise ModelConfigError(f"{checkpoint}: not a safetensors file ({_first_line(e)}): refused") from None
    state = {k.replace("ema_model.", ""): v for k, v in state.items() if k not in ("initted", "step")}
    for key in ("mel_spec.mel_stft.mel_scale.fb", "mel_spec.mel_stft.spectrogram.window"):
        state.pop(key, None)  # older checkpoints carry the mel filters; F5 drops them too
    model = model.to(dtype)
    model.load_state_dict(state)
    return model.to(device)


def build_vocos(config: object) -> torch.nn.Module:
    """A Vocos vocoder (random weights) from a checked config: the three known classes only."""
    from vocos import Vocos
    from vocos.feature_extractors import MelSpectrogramFeatures
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    parts = check_vocoder_config(config)
    return Vocos(
        feature_extractor=MelSpectrogramFeatures(**parts["feature_extractor"]),
        backbone=VocosBackbone(**parts["backbone"]),
        head=ISTFTHead(**parts["head"]),
    )


def load_vocos(directory: Path, device: str) -> torch.nn.Module:
    """The vocoder of a model folder: ``config.yaml`` checked, weights read as tensors only."""
    import torch

    vocoder = build_vocos(read_yaml(directory / "config.yaml"))
    try:
        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # it holds more than tensors: never unpickled
        raise ModelConfigError(
            f"{directory / 'pytorch_model.bin'}: holds more than tensors (objects that would run code when "
            "unpickled): refused"
        ) from None
    vocoder.load_state_dict(state)
    return vocoder.eval().to(device)


def _check(values: dict, rules: Mapping[str, _Rule], where: str, *, required: tuple[str, ...]) -> None:
    if unknown := sorted(set(values) - set(rules), key=str):
        raise ModelConfigError(f"{where}: unknown key(s) {', '.join(repr(str(k)[:40]) for k in unknown)}")
    for key in required:
        if key not in values:
            raise ModelConfigError(f"{where}: {key!r} is missing")
    for key, value in values.items():
        types, allowed = rules[key]
        if isinstance(value, bool) and bool not in types:
            raise ModelConfigError(f"{where}: {key}: expected {_names(types)}, got a boolean")
        if not isinstance(value, types):
            raise ModelConfigError(f"{where}: {key}: expected {_names(types)}, got {type(value).__name__}")
        if value is None or allowed is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            if value not in allowed:
                raise ModelConfigError(f"{where}: {key}: {value[:40]!r} is not one of {', '.join(allowed)}")
        elif not allowed[0] <= value <= allowed[1]:
            raise ModelConfigError(f"{where}: {key}: {value} is outside {allowed[0]}–{allowed[1]}")


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)
