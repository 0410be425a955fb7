"""A tiny randomly initialised F5-TTS model and Vocos vocoder, in the store's file layout.

Tests, CI and the offline demo load it through the same model store and engine code as
the real F5TTS_v1_Base: the architecture classes, checkpoint format and vocabulary are
F5-TTS's own; only the sizes are small and the weights random (noise, not a voice).
"""

from __future__ import annotations

import logging
from pathlib import Path

from voicebatch.inputs.vocab import default_vocab_path
from voicebatch.synthesis.models import ModelFiles, load_model_files, write_manifest

log = logging.getLogger(__name__)

MEL_SPEC = {
    "target_sample_rate": 24000,
    "n_mel_channels": 100,
    "hop_length": 256,
    "win_length": 1024,
    "n_fft": 1024,
    "mel_spec_type": "vocos",
}
VOCOS_CONFIG = """\
feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args: {{sample_rate: 24000, n_fft: 1024, hop_length: 256, n_mels: 100, padding: center}}
backbone:
  class_path: vocos.models.VocosBackbone
  init_args: {{input_channels: 100, dim: {dim}, intermediate_dim: {intermediate}, num_layers: {layers}}}
head:
  class_path: vocos.heads.ISTFTHead
  init_args: {{dim: {dim}, n_fft: 1024, hop_length: 256, padding: same}}
"""
TINY_VOCOS = {"dim": 32, "intermediate": 64, "layers": 1}
FULL_VOCOS = {"dim": 512, "intermediate": 1536, "layers": 8}  # charactr/vocos-mel-24khz


def tiny_arch(dim: int = 64, depth: int = 2) -> dict:
    return {
        "dim": dim,
        "depth": depth,
        "heads": 2,
        "dim_head": 64,
        "ff_mult": 2,
        "text_dim": dim // 2,
        "text_mask_padding": True,
        "qk_norm": None,
        "conv_layers": 1,
        "pe_attn_head": None,
        "attn_backend": "torch",
        "attn_mask_enabled": False,
        "checkpoint_activations": False,
    }


def v1_base_arch() -> dict:
    """F5TTS_v1_Base's architecture, as f5-tts packages it (for GPU benchmarks: same compute)."""
    import importlib.util

    import yaml

    root = Path(next(iter(importlib.util.find_spec("f5_tts").submodule_search_locations)))
    return yaml.safe_load((root / "configs" / "F5TTS_v1_Base.yaml").read_text())["model"]["arch"]


def build_tiny_model(directory: str | Path, *, dim: int = 64, depth: int = 2, seed: int = 0) -> ModelFiles:
    """The tiny model: a DiT of ``dim`` x ``depth`` (64 x 2: ~365k parameters) and a small Vocos."""
    return build_random_model(directory, tiny_arch(dim, depth), TINY_VOCOS, f"tiny-random-dit{dim}x{depth}", seed)


def build_random_model(directory: str | Path, arch: dict, vocos: dict, name: str, seed: int = 0) -> ModelFiles:
    import shutil

    import torch
    import yaml
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer
    from safetensors.torch import save_file

    from voicebatch.synthesis.builders import build_vocos

    out = Path(directory)
    (out / "vocoder").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_vocab_path(), out / "vocab.txt")
    vocab_char_map, vocab_size = get_tokenizer(str(out / "vocab.txt"), "custom")

    torch.manual_seed(seed)
    transformer = DiT(**arch, text_num_embeds=vocab_size, mel_dim=MEL_SPEC["n_mel_channels"])
    # DiT.initialize_weights zeroes the adaLN modulation and output projections, so a
    # random model would predict zero flow (silence); give those weights noise.
    with torch.no_grad():
        for parameter in transformer.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.05)
    mel_kwargs = {k: v for k, v in MEL_SPEC.items() if k != "target_sample_rate"}
    mel_kwargs["target_sample_rate"] = MEL_SPEC["target_sample_rate"]
    model = CFM(transformer=transformer, mel_spec_kwargs=mel_kwargs, vocab_char_map=vocab_char_map)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("mel_spec.")}
    save_file(state, str(out / "model.safetensors"))

    (out / "vocoder" / "config.yaml").write_text(VOCOS_CONFIG.format(**vocos))
    vocoder = build_vocos(yaml.safe_load((out / "vocoder" / "config.yaml").read_text()))
    torch.save(vocoder.state_dict(), out / "vocoder" / "pytorch_model.bin")

    config = {
        "name": name,
        "backbone": "DiT",
        "arch": arch,
        "mel_spec": MEL_SPEC,
        "random_weights": True,
    }
    (out / "model.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_manifest(out)
    params = sum(p.numel() for p in transformer.parameters())
    log.info("%s (%d DiT parameters, random weights) written to %s", name, params, out)
    return load_model_files(out)
