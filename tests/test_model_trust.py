"""Models are data, never code: a model folder that names code, or weights that run code when
unpickled, is refused before any of it runs. Each test first shows the payload is real (Vocos's
own loader, or a plain unpickling, runs it), then that voicebatch refuses it with no effect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from voicebatch.synthesis.builders import ModelConfigError, check_model_config, check_vocoder_config
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.synthesis.models import ModelError, ModelFiles, load_model_files, write_manifest

from conftest import tree_env
from trust_helpers import crafted_model, pickled_weights


@pytest.fixture
def crafted(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    return crafted_model(tiny_model_dir, tmp_path / "crafted", marker), marker


def test_the_crafted_vocoder_config_runs_code_with_vocos_own_loader(crafted: tuple[Path, Path]) -> None:
    """The payload is real: what voicebatch used to do (Vocos.from_hparams) runs it."""
    model, marker = crafted
    code = f"from vocos import Vocos; Vocos.from_hparams({str(model / 'vocoder' / 'config.yaml')!r})"
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=tree_env())  # fails after the payload ran
    assert marker.read_text() == "pwned"


def test_the_crafted_model_is_refused_before_any_code_from_it_runs(
    crafted: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from voicebatch.synthesis.engine import Engine

    model, marker = crafted
    store = ModelStore(tmp_path / "cache", hub=False)
    for load in (store.resolve, store.manifest, lambda spec: load_model_files(Path(spec), verify=False)):
        with pytest.raises(ModelError) as refused:
            load(str(model))
        message = str(refused.value)
        assert "class_path 'subprocess.run' refused" in message and "\n" not in message
        assert message.startswith(f"{model}/vocoder/config.yaml: feature_extractor: ")
    # Even past the store (files put together by hand), the engine builds only known classes.
    good = load_model_files(tiny_model_dir)
    forged = ModelFiles("crafted", model, good.config, good.checksum, good.files)
    with pytest.raises(ModelError, match=r"class_path 'subprocess\.run' refused"):
        Engine(forged, device="cpu").load()
    assert not marker.exists(), "no code from the model folder ran"


def test_pickled_weights_are_never_unpickled(tiny_model_dir: Path, tmp_path: Path) -> None:
    from voicebatch.synthesis.engine import Engine

    marker = tmp_path / "PWNED"
    probe = tmp_path / "probe.bin"
    pickled_weights(probe, marker)
    code = f"import torch; torch.load({str(probe)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert marker.read_text() == "pwned", "the payload is real: a plain unpickling runs it"
    marker.unlink()

    for weights in ("vocoder/pytorch_model.bin", "model.safetensors"):
        model = tmp_path / weights.replace("/", "-")
        crafted = crafted_model(tiny_model_dir, model, marker)
        (model / "vocoder" / "config.yaml").write_text((tiny_model_dir / "vocoder" / "config.yaml").read_text())
        pickled_weights(model / weights, marker)
        write_manifest(model)
        files = ModelStore(tmp_path / "cache", hub=False).resolve(str(crafted))  # hashes and configs are fine
        with pytest.raises(ModelError) as refused:
            Engine(files, device="cpu").load()
        message = str(refused.value)
        assert message.startswith(str(model / weights)) and message.endswith(": refused") and "\n" not in message
        assert not marker.exists(), f"{weights}: nothing was unpickled"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"arch": {"dim": 64, "class_path": "os.system"}}, "arch: unknown key(s) 'class_path'"),
        ({"arch": {"dim": "64"}}, "arch: dim: expected int, got str"),
        ({"arch": {"dim": 10**9}}, "arch: dim: 1000000000 is outside 8–8192"),
        ({"arch": {"dim": 64, "attn_backend": "evil"}}, "attn_backend: 'evil' is not one of torch, flash_attn"),
        ({"backbone": "UNetT"}, "backbone: 'UNetT' is not one of DiT"),
        ({"backbone": "subprocess.run"}, "backbone: 'subprocess.run' is not one of DiT"),
        ({"loader": "pickle"}, "unknown key(s) 'loader'"),
    ],
)
def test_model_configs_outside_the_schema_are_refused(tiny_model_dir: Path, change: dict, says: str) -> None:
    config = yaml.safe_load((tiny_model_dir / "model.yaml").read_text())
    config.update(change)
    with pytest.raises(ModelConfigError) as refused:
        check_model_config(config)
    assert says in str(refused.value)
    check_model_config(yaml.safe_load((tiny_model_dir / "model.yaml").read_text()))  # the real one passes


def test_the_hub_vocoder_config_passes_and_known_class_paths_are_only_names(tiny_model_dir: Path) -> None:
    hub = {  # charactr/vocos-mel-24khz's config.yaml, as the hub serves it
        "feature_extractor": {
            "class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
            "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"},
        },
        "backbone": {
            "class_path": "vocos.models.VocosBackbone",
            "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8},
        },
        "head": {
            "class_path": "vocos.heads.ISTFTHead",
            "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "center"},
        },
    }
    assert check_vocoder_config(hub)["backbone"]["num_layers"] == 8
    for part, bad in (("head", "vocos.heads.IMDCTCosHead"), ("backbone", "torch.nn.Module")):
        with pytest.raises(ModelConfigError, match=f"{part}: class_path '{bad}' refused"):
            check_vocoder_config({**hub, part: {**hub[part], "class_path": bad}})
    with pytest.raises(ModelConfigError, match="unknown part"):
        check_vocoder_config({**hub, "encodec": {}})
