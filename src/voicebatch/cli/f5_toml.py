"""F5-TTS's infer-cli TOML (``voicebatch synth --config``): each key mapped to the flag of the same
meaning, ``[voices.NAME]`` sections as named voices, paths relative to the file, and the keys
voicebatch has no equivalent for refused by name with what to do instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.cli.locations import check_input_path
from voicebatch.errors import InputError
from voicebatch.settings import DEFAULTS, LIMITS

if TYPE_CHECKING:
    pass
from voicebatch.cli.synth_records import VoiceInput

log = logging.getLogger(__name__)


MAIN_VOICE = "main"  # F5's name for the voice of untagged text (ref_audio / ref_text)


# F5-TTS infer-cli TOML keys and what voicebatch does with them.
F5_KEYS = {
    "model",
    "ref_audio",
    "ref_text",
    "gen_text",
    "gen_file",
    "remove_silence",
    "output_dir",
    "output_file",
    "speed",
    "nfe_step",
    "cfg_strength",
    "cross_fade_duration",
    "sway_sampling_coef",
    "device",
    "voices",
}


F5_VOICE_KEYS = {"ref_audio", "ref_text", "speed"}


# F5 keys with no voicebatch equivalent, and what to do instead.
F5_REFUSED = {
    "ckpt_file": "give the model folder with --model (the model store's layout: `voicebatch model resolve`)",
    "vocab_file": "the vocabulary is the model's own vocab.txt",
    "model_cfg": "the architecture is read from the model folder's model.yaml",
    "vocoder_name": "voicebatch uses Vocos",
    "load_vocoder_from_local": "the vocoder comes with the model through the model store",
    "target_rms": "voicebatch raises quiet references to F5's RMS 0.1 and normalises loudness (--loudness)",
    "fix_duration": "durations follow the text (F5's rule); use speed",
    "save_chunk": "verification keeps failing takes next to the report; chunks are not written separately",
    "no_legacy_text": "not needed: file names come from the script ids",
}


def read_config(path: Path) -> dict:
    """F5-TTS infer-cli TOML -> voicebatch's settings. Raises ``InputError`` naming the key."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(path, f"cannot read the config: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid TOML: {e}") from None
    unknown = sorted(set(document) - F5_KEYS)
    for key in unknown:
        if key in F5_REFUSED:
            raise InputError(path, f"key {key!r} has no voicebatch equivalent: {F5_REFUSED[key]}")
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(F5_KEYS))}")
    config: dict = {}
    if model := document.get("model"):
        if model != DEFAULTS["model"] and not Path(str(model)).expanduser().exists() and "://" not in str(model):
            raise InputError(
                path, f"model {model!r}: voicebatch runs {DEFAULTS['model']} (or a model folder / s3:// prefix)"
            )
        config["model"] = str(model)
    voices = []
    if document.get("ref_audio"):
        voices.append(
            VoiceInput(
                MAIN_VOICE,
                ref_audio=_config_path(path, document["ref_audio"]),
                ref_text=str(document.get("ref_text", "")),
                where=f"{path.name}: ref_audio",
            )
        )
    for name, section in (document.get("voices") or {}).items():
        if not isinstance(section, dict) or "ref_audio" not in section:
            raise InputError(path, f"[voices.{name}] needs ref_audio (and ref_text)")
        if extra := sorted(set(section) - F5_VOICE_KEYS):
            raise InputError(path, f"[voices.{name}]: unknown key(s) {', '.join(map(repr, extra))}")
        speed = section.get("speed")
        if speed is not None and (problem := LIMITS["speed"].problem(float(speed))):
            raise InputError(path, f"[voices.{name}] speed: {problem}")
        voices.append(
            VoiceInput(
                name,
                ref_audio=_config_path(path, section["ref_audio"]),
                ref_text=str(section.get("ref_text", "")),
                speed=None if speed is None else float(speed),
                where=f"{path.name}: [voices.{name}]",
            )
        )
    config["voices"] = voices
    if document.get("gen_file"):  # F5: a gen_file replaces gen_text
        gen_file = _config_path(path, document["gen_file"])
        check_input_path("gen_file", gen_file)  # the deployment's allow-list, where one is set
        try:
            config["text"] = gen_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(gen_file, f"cannot read gen_file: {e}") from None
        config["text_source"] = str(gen_file)
    elif document.get("gen_text"):
        config["text"], config["text_source"] = str(document["gen_text"]), f"{path.name}: gen_text"
    if document.get("output_dir"):
        config["out"] = str(_config_path(path, document["output_dir"], must_exist=False))
    if output_file := document.get("output_file"):
        stem, suffix = Path(output_file).stem, Path(output_file).suffix.lower().lstrip(".")
        config["name"] = stem
        if suffix in ("wav", "flac", "mp3"):
            config["format"] = suffix
    for f5_key, ours in (("nfe_step", "nfe_steps"), ("cfg_strength", "cfg_strength"), ("speed", "speed")):
        if f5_key in document:
            value = document[f5_key]
            if problem := LIMITS[ours].problem(value):
                raise InputError(path, f"{f5_key}: {problem}")
            config[ours] = value
    if "cross_fade_duration" in document:
        if problem := LIMITS["cross_fade"].problem(document["cross_fade_duration"]):
            raise InputError(path, f"cross_fade_duration: {problem}")
        config["cross_fade"] = float(document["cross_fade_duration"])
    for key in ("sway_sampling_coef", "device"):
        if key in document:
            config[key] = document[key]
    if document.get("remove_silence"):
        # F5 cuts silences out of the finished audio; voicebatch trims each chunk's leading and
        # trailing silence (keeping 50 ms) before the cross-fade, which is what remains of that.
        log.info("%s: remove_silence: chunks are trimmed of leading and trailing silence (always on)", path.name)
    return config


def _config_path(config: Path, value: object, *, must_exist: bool = True) -> Path:
    """A path of the TOML as F5 reads it: ``infer/examples/...`` inside the f5-tts package, else
    relative to the working directory, else to the TOML's own folder."""
    text = str(value)
    if text.startswith("infer/examples/"):
        from importlib.resources import files

        return Path(str(files("f5_tts").joinpath(text)))
    candidate = Path(text).expanduser()
    if candidate.is_absolute() or candidate.exists() or not must_exist:
        return candidate if candidate.is_absolute() or candidate.exists() else config.parent / candidate
    return config.parent / candidate
