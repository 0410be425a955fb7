"""Real speech made offline (Debian's espeak-ng) and randomly initialised speech models of
the real architectures (Whisper via CTranslate2's converter, torchaudio's wav2vec2 for
MMS_FA), for tests that prove loading and plumbing, never accuracy."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

WHISPER_LANGUAGES = ["en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it"]


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI"):
            pytest.fail("espeak-ng is missing: `make system-deps` installs it")
        pytest.skip("espeak-ng is not installed (make system-deps installs it)")


def speak(text: str, rate: int = 16_000, *, voice: str = "en-us", wpm: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng, mono float32 at ``rate``."""
    import soxr

    require_espeak()
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, native = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, native, rate).astype(np.float32) if native != rate else samples


def onset(samples: np.ndarray, rate: int, threshold: float = 0.02) -> float:
    """Seconds to the first sample above ``threshold`` (espeak-ng pads with digital silence)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return float(loud[0]) / rate if loud.size else 0.0


def silence(seconds: float, rate: int = 16_000) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def build_random_whisper(directory: Path) -> Path:
    """A randomly initialised multilingual Whisper (d_model 32, one layer each side) with a
    byte-level tokenizer holding Whisper's special tokens, converted to CTranslate2 with
    the converter, in the speech store's layout (manifest.json)."""
    from ctranslate2.converters import TransformersConverter
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from voicebatch.verify.store import write_speech_manifest

    source = directory.parent / f"{directory.name}-hf"
    source.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    while len(vocab) < 50_257:  # multilingual Whisper's ids: <|endoftext|> is 50257
        vocab[f"Ġw{len(vocab)}"] = len(vocab)
    specials = ["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{code}|>" for code in WHISPER_LANGUAGES]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>"]
    specials += ["<|notimestamps|>"]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(source / "tokenizer.json"))
    ids = {t: tokenizer.token_to_id(t) for t in specials}
    eot = ids["<|endoftext|>"]
    config = WhisperConfig(
        vocab_size=51_866,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=eot,
        bos_token_id=eot,
        pad_token_id=eot,
        begin_suppress_tokens=[eot],
        suppress_tokens=[],
    )
    import torch

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(source)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(source)
    from transformers import WhisperTokenizerFast

    WhisperTokenizerFast(
        tokenizer_file=str(source / "tokenizer.json"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    ).save_pretrained(source)
    converter = TransformersConverter(str(source), copy_files=["tokenizer.json", "preprocessor_config.json"])
    converter.convert(str(directory), force=True)
    # The converter reads the language ids from the generation config or the tokenizer's
    # additional special tokens, neither of which transformers 5 keeps here: set them.
    ct2_config = json.loads((directory / "config.json").read_text())
    ct2_config["lang_ids"] = sorted(ids[f"<|{c}|>"] for c in WHISPER_LANGUAGES)
    (directory / "config.json").write_text(json.dumps(ct2_config, indent=2))
    shutil.rmtree(source)
    write_speech_manifest(directory, "whisper", random_weights=True)
    return directory


def build_random_mms(directory: Path) -> Path:
    """torchaudio's wav2vec2 (MMS_FA's architecture family) with MMS_FA's labels and
    feature extractor, small encoder, random weights; stored as the store keeps MMS_FA."""
    import torch
    from torchaudio.models import wav2vec2_model
    from torchaudio.pipelines import MMS_FA

    from voicebatch.verify.store import write_mms_config, write_speech_manifest

    params = {
        **MMS_FA._params,
        "encoder_embed_dim": 64,
        "encoder_num_layers": 2,
        "encoder_num_heads": 2,
        "encoder_ff_interm_features": 128,
        "encoder_pos_conv_kernel": 16,
        "encoder_pos_conv_groups": 4,
        "extractor_conv_layer_config": [(32, k, s) for _, k, s in MMS_FA._params["extractor_conv_layer_config"]],
    }
    labels = list(MMS_FA.get_labels(star=None))
    params["aux_num_out"] = len(labels)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(wav2vec2_model(**params).state_dict(), directory / "model.pt")
    write_mms_config(directory, params, labels, remove_aux_axis=None)
    write_speech_manifest(directory, "mms_fa", random_weights=True)
    json.loads((directory / "config.json").read_text())  # readable, as the aligner reads it
    return directory
