"""The engine on a real CUDA GPU. Skipped without one; benchmarks/gpu/run.sh runs
them on a lent GPU machine. The tiny model keeps them fast: they check behaviour (batching,
seeds, out-of-memory splitting, the GPU lease, the attention path), not speed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from voicebatch.synthesis.engine import ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.models import load_model_files

from engine_helpers import make_references, make_requests

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

PARAMS = SynthesisParams(nfe_steps=8)
SRC = str(Path(__file__).resolve().parent.parent / "src")


@pytest.fixture(scope="module")
def references() -> dict[str, Reference]:
    return make_references()


def requests(texts: list[tuple[str, str]] | None = None) -> list[ChunkRequest]:
    return make_requests(texts) if texts else make_requests()


def engine_for(model_dir: Path, **kwargs) -> Engine:
    return Engine(load_model_files(model_dir), device="cuda", **kwargs).load()


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_float32_batches_match_one_by_one_as_on_the_cpu(tiny_model_dir: Path, references) -> None:
    engine = engine_for(tiny_model_dir, dtype=torch.float32)
    assert engine.backend == "sliced", "float32: the varlen kernel takes half precision only"
    batched = engine.synthesize(references, requests(), PARAMS, max_batch=8)
    single = [engine.synthesize(references, [r], PARAMS)[0] for r in requests()]
    for a, b in zip(batched, single, strict=True):
        assert a.frames == b.frames
        assert np.abs(a.mel - b.mel).max() < 1e-3


@pytest.mark.parametrize("backend", ["sliced", "varlen"])
def test_fp16_batches_on_padding_aware_attention_match_one_by_one(tiny_model_dir: Path, references, backend) -> None:
    engine = engine_for(tiny_model_dir, attention=backend)
    assert engine.dtype == torch.float16 and engine.backend == backend
    batched = engine.synthesize(references, requests(), PARAMS, max_batch=8)
    calls = engine.model.transformer.transformer_blocks[0].attn.processor.calls
    assert calls.get(backend, 0) > 0, f"padded batches must take the {backend} kernel: {calls}"
    single = [engine.synthesize(references, [r], PARAMS)[0] for r in requests()]
    masked = engine_for(tiny_model_dir, attention="masked")  # F5's own expanded-mask attention
    f5_way = masked.synthesize(references, requests(), PARAMS, max_batch=8)
    for a, b, c in zip(batched, single, f5_way, strict=True):
        assert a.frames == b.frames
        # fp16 rounding differs between batch shapes; padding-aware attention may not drift
        # further from one-by-one synthesis than F5's own masked attention does (plus slack).
        assert rel(a.mel, b.mel) <= max(2 * rel(c.mel, b.mel), 2e-2), (rel(a.mel, b.mel), rel(c.mel, b.mel))


def test_same_seed_gives_the_same_samples_on_the_gpu(tiny_model_dir: Path, references) -> None:
    engine = engine_for(tiny_model_dir)
    assert engine.dtype == torch.float16 and engine.backend == "varlen", "the CUDA defaults (fastest measured)"
    first = engine.synthesize(references, requests(), PARAMS, max_batch=8)
    second = engine.synthesize(references, requests(), PARAMS, max_batch=8)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(first, second, strict=True))
    reseeded = [ChunkRequest(r.key, r.voice, r.text, r.speed, r.seed + 1) for r in requests()]
    third = engine.synthesize(references, reseeded, PARAMS, max_batch=8)
    assert not np.array_equal(first[1].samples, third[1].samples)


def test_out_of_memory_splits_batches_under_a_capped_memory_fraction(
    tiny_model_dir: Path, references, caplog: pytest.LogCaptureFixture
) -> None:
    # F5's expanded-mask attention makes a batch's memory grow with batch x n^2, so a cap
    # between one chunk's peak and the whole batch's peak must force splits.
    engine = engine_for(tiny_model_dir, attention="masked")
    # About 4,000 frames each (F5's positions stop at 8,192), 16 of them.
    long_text = "This sentence is long enough to need a couple of thousand frames of audio. " * 2
    chunks = requests([("ben", long_text + str(i)) for i in range(16)])
    total = torch.cuda.get_device_properties(0).total_memory

    def peak(items: list[ChunkRequest]) -> int:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        engine.synthesize(references, items, PARAMS, batch_frames=10**9)
        return torch.cuda.max_memory_reserved()

    one, everything = peak(chunks[:1]), peak(chunks)
    assert everything > 2 * one, f"the batch must need much more memory than one chunk ({everything} vs {one})"
    expected = engine.synthesize(references, chunks, PARAMS, batch_frames=10**9)
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction((one + everything) / 2 / total)
    try:
        with caplog.at_level(logging.WARNING, logger="voicebatch.synthesis.engine"):
            got = engine.synthesize(references, chunks, PARAMS, batch_frames=10**9)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert "CUDA out of memory on a batch of 16: splitting it in two" in caplog.text
    for a, b in zip(got, expected, strict=True):
        assert a.frames == b.frames
        assert rel(a.mel, b.mel) < 5e-2


def test_gpu_lease_names_the_physical_device_under_cuda_visible_devices(tmp_path: Path) -> None:
    physical = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
    code = f"""
import json, torch
from pathlib import Path
from voicebatch.synthesis.devices import lease_device
lease = lease_device(Path({str(tmp_path)!r}), timeout=5, poll=0.1)
torch.zeros(1, device=lease.device)
print(json.dumps({{"device": lease.device, "physical": lease.physical_id,
                  "locks": sorted(p.name for p in Path({str(tmp_path)!r}).iterdir())}}))
"""
    path = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": physical, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"device": "cuda:0", "physical": physical, "locks": [f"gpu-{physical}.lock"]}


def test_flash_attn_backend_when_it_imports(tiny_model_dir: Path, references) -> None:
    from voicebatch.synthesis.attention import flash_attn_usable

    if not flash_attn_usable():
        pytest.skip("flash-attn does not import on this machine (optional extra)")
    engine = engine_for(tiny_model_dir, attention="flash_attn")
    batched = engine.synthesize(references, requests(), PARAMS, max_batch=8)
    calls = engine.model.transformer.transformer_blocks[0].attn.processor.calls
    assert calls.get("flash_attn_varlen", 0) > 0, calls
    single = [engine.synthesize(references, [r], PARAMS)[0] for r in requests()]
    assert all(rel(a.mel, b.mel) < 5e-2 for a, b in zip(batched, single, strict=True))


@pytest.fixture
def own_model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model: its compile cache (beside it) starts empty."""
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_matches_eager_with_the_same_seeds(own_model: Path, references, mode: str) -> None:
    """The acceptance bound: same seeds, compiled (Inductor, and CUDA graphs) vs eager: mel
    relative L2 at most 1e-2 and the same length for every chunk."""
    eager = engine_for(own_model, buckets=True)  # the same batches and padding: only compiling differs
    expected = eager.synthesize(references, requests(), PARAMS, max_batch=8)
    compiled = engine_for(own_model, compile="inductor", compile_mode=mode)
    try:
        first = compiled.synthesize(references, requests(), PARAMS, max_batch=8)
        again = compiled.synthesize(references, requests(), PARAMS, max_batch=8)  # graphs replayed
    finally:
        torch._dynamo.reset()
    assert compiled.compiled is not None, "the compiled forward fell back to eager"
    assert compiled.compiled.saved, "the compile cache was saved beside the model"
    for got in (first, again):
        for a, b in zip(got, expected, strict=True):
            assert a.frames == b.frames
            assert rel(a.mel, b.mel) <= 1e-2, (mode, a.key, rel(a.mel, b.mel))


def test_bucketed_fp16_batches_match_unbucketed(tiny_model_dir: Path, references) -> None:
    plain = engine_for(tiny_model_dir)
    bucketed = engine_for(tiny_model_dir, buckets=True)
    for a, b in zip(
        bucketed.synthesize(references, requests(), PARAMS, max_batch=8),
        plain.synthesize(references, requests(), PARAMS, max_batch=8),
        strict=True,
    ):
        assert a.frames == b.frames
        assert rel(a.mel, b.mel) <= 2e-2


def test_the_warm_engine_serves_the_leased_gpu_and_keeps_its_model(tiny_model_dir: Path, references) -> None:
    import tempfile

    from voicebatch.synthesis.warm import WarmEngine, WarmSettings

    physical = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
    directory = Path(tempfile.mkdtemp(prefix="vbw-"))
    settings = WarmSettings(directory=directory, idle_s=120)
    files = load_model_files(tiny_model_dir)
    expected = engine_for(tiny_model_dir).synthesize(references, requests(), PARAMS)
    first = WarmEngine(files, device="cuda:0", physical_id=physical, settings=settings)
    try:
        got = first.synthesize(references, requests(), PARAMS)
        second = WarmEngine(files, device="cuda:0", physical_id=physical, settings=settings)
        again = second.synthesize(references, requests(), PARAMS)
        assert second.server["pid"] == first.server["pid"] and second.server["loads"] == 1
        assert second.server["device"] == "cuda:0" and first.socket_path.name == f"engine-gpu-{physical}.sock"
        for a, b, c in zip(got, again, expected, strict=True):
            assert a.frames == b.frames == c.frames
            assert rel(a.mel, c.mel) <= 1e-3 and np.array_equal(a.samples, b.samples)
    finally:
        first.shutdown_server()
