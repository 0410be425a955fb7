"""The DiT's blocks compiled with Inductor on the CPU (gcc), the compile cache beside the model and
reused by a fresh process, and eager as the fallback when a compile fails."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicebatch.synthesis.compiled import CACHE_FOLDER, CompileOptions, compile_options_from_env
from voicebatch.synthesis.engine import Engine, SynthesisParams
from voicebatch.synthesis.models import load_model_files

from conftest import tree_env
from engine_helpers import make_references, make_requests

TESTS = Path(__file__).resolve().parent
PARAMS = SynthesisParams(nfe_steps=4)

# One synthesize call with the DiT's blocks compiled by Inductor, in a process of its own (its
# own Inductor cache folder: only the cache beside the model can carry compiled code over).
COMPILED = r"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[3])
from engine_helpers import make_references, make_requests
from voicebatch.synthesis.compiled import cache_counters
from voicebatch.synthesis.engine import Engine, SynthesisParams
from voicebatch.synthesis.models import load_model_files

engine = Engine(load_model_files(Path(sys.argv[1])), device="cpu", compile="inductor").load()
out = engine.synthesize(make_references(), make_requests(), SynthesisParams(nfe_steps=4), max_batch=8)
np.savez(sys.argv[2], **{a.key: a.mel for a in out})
print(json.dumps({
    "counters": cache_counters(),
    "compiled": engine.compiled is not None,
    "loaded": engine.compiled.loaded if engine.compiled else None,
    "saved": engine.compiled.saved if engine.compiled else None,
    "cache_dir": str(engine.compiled.cache_dir) if engine.compiled else None,
    "frames": {a.key: a.frames for a in out},
}))
"""


def compiled_process(model_dir: Path, tmp: Path, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    inductor = tmp / f"inductor-{name}"  # empty: this process starts with no compiled code of its own
    env = tree_env(TORCHINDUCTOR_CACHE_DIR=str(inductor))
    mels = tmp / f"{name}.npz"
    done = subprocess.run(
        [sys.executable, "-c", COMPILED, str(model_dir), str(mels), str(TESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    with np.load(mels) as data:
        return json.loads(done.stdout.strip().splitlines()[-1]), {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder of this module's own: its compile cache starts empty."""
    from voicebatch.synthesis.tiny import build_tiny_model

    directory = tmp_path_factory.mktemp("compiled-model")
    build_tiny_model(directory)
    return directory


@pytest.fixture(scope="module")
def first(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, np.ndarray], Path]:
    tmp = tmp_path_factory.mktemp("compiled-runs")
    report, mels = compiled_process(model_dir, tmp, "first")
    return report, mels, tmp


def test_compiled_blocks_match_eager_and_write_their_cache_beside_the_model(first, model_dir: Path) -> None:
    report, mels, _ = first
    assert report["compiled"], "the compiled forward must not have fallen back to eager"
    assert report["counters"]["fxgraph_cache_miss"] > 0 and report["counters"]["fxgraph_cache_hit"] == 0
    cache = Path(report["cache_dir"])
    assert cache.parent == model_dir / CACHE_FOLDER and cache.name.endswith("cpu")
    saved = sorted(p.name for p in cache.glob("artifacts-*.bin"))
    assert saved and saved == sorted(report["saved"])
    for name in saved:
        record = json.loads((cache / name).with_suffix(".json").read_text())
        assert record["size"] == (cache / name).stat().st_size
    eager = Engine(load_model_files(model_dir), device="cpu").load()
    expected = eager.synthesize(make_references(), make_requests(), PARAMS, max_batch=8)
    for audio in expected:
        assert report["frames"][audio.key] == audio.frames
        got = mels[audio.key]
        assert float(np.linalg.norm(got - audio.mel) / np.linalg.norm(audio.mel)) < 1e-4


def test_a_fresh_process_loads_the_cache_beside_the_model_and_compiles_nothing(first, model_dir: Path) -> None:
    report, mels, tmp = first
    again, mels_again = compiled_process(model_dir, tmp, "second")
    assert again["compiled"] and again["loaded"], "the artifacts beside the model were loaded"
    assert again["counters"]["fxgraph_cache_miss"] == 0, "nothing was compiled anew"
    assert again["counters"]["fxgraph_cache_hit"] >= report["counters"]["fxgraph_cache_miss"]
    assert again["saved"] == [], "nothing new to save"
    assert again["frames"] == report["frames"]
    for key, mel in mels.items():
        assert np.allclose(mels_again[key], mel, atol=1e-6)


def test_a_failing_compile_falls_back_to_eager_with_the_same_audio(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch
    from torch._dynamo import register_backend

    @register_backend(name="voicebatch_test_broken")
    def broken(graph, example_inputs):  # a compiler that cannot build this graph
        raise RuntimeError("this backend cannot compile anything")

    references, requests = make_references(), make_requests()[:2]
    eager = Engine(load_model_files(tiny_model_dir), device="cpu").load()
    expected = eager.synthesize(references, requests, PARAMS)
    try:
        engine = Engine(load_model_files(tiny_model_dir), device="cpu", compile="voicebatch_test_broken").load()
        with caplog.at_level(logging.WARNING, logger="voicebatch.synthesis.compiled"):
            got = engine.synthesize(references, requests, PARAMS)
    finally:
        torch._dynamo.reset()
    assert "failed, synthesizing eagerly from now on" in caplog.text
    assert "this backend cannot compile anything" in caplog.text
    assert engine.compiled is None
    blocks = engine.model.transformer.transformer_blocks
    assert all("forward" not in vars(block) for block in blocks), "the compiled forward is taken out"
    for a, b in zip(got, expected, strict=True):
        assert a.frames == b.frames
        assert np.abs(a.mel - b.mel).max() < 1e-3


def test_compile_settings_from_the_environment() -> None:
    assert compile_options_from_env({}) is None
    assert compile_options_from_env({"VOICEBATCH_COMPILE": "off"}) is None
    assert compile_options_from_env({"VOICEBATCH_COMPILE": "inductor"}) == CompileOptions("inductor", "default")
    got = compile_options_from_env({"VOICEBATCH_COMPILE": "inductor", "VOICEBATCH_COMPILE_MODE": "reduce-overhead"})
    assert got == CompileOptions("inductor", "reduce-overhead")
    with pytest.raises(ValueError, match="compile mode 'fast'"):
        compile_options_from_env({"VOICEBATCH_COMPILE": "inductor", "VOICEBATCH_COMPILE_MODE": "fast"})


def test_a_model_folder_that_cannot_take_the_cache_keeps_it_in_the_store(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from voicebatch.synthesis.compiled import compile_cache_dir

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns(CACHE_FOLDER))
    (model / CACHE_FOLDER).write_text("not a folder")  # as a read-only folder would, refuses the cache
    monkeypatch.setenv("VOICEBATCH_MODEL_DIR", str(tmp_path / "store"))
    files = load_model_files(model)
    cache = compile_cache_dir(files, "cpu")
    assert cache.is_dir() and cache.is_relative_to(tmp_path / "store" / CACHE_FOLDER / files.checksum[:16])
