"""Sections of the GPU check measured on the H200 before (benchmarks/RESULTS.md): one DiT forward
per attention backend, batched vs one-by-one tolerance, and a torch.profiler breakdown. A device run
names them in ``check.py --sections`` when it has the time; the dry run runs them always.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path


def cuda_time(fn: Callable[[], object], device: str, repeats: int = 5) -> float:
    """Median seconds of ``fn`` after one warm-up, device-synchronised."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def attention_section(engine, dry: bool) -> dict:
    """One DiT forward on a padded batch per backend: time, memory, agreement with singles."""
    import torch

    from voicebatch.synthesis import attention

    transformer = engine.model.transformer
    device, dtype = engine.device, engine.dtype
    lengths = [120, 100, 90, 84] if dry else [1900, 1750, 1600, 1500, 1450, 1400, 1350, 1333] * 2
    n, b = max(lengths), len(lengths)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(b, n, 100, device=device, dtype=dtype, generator=generator)
    cond = torch.randn(b, n, 100, device=device, dtype=dtype, generator=generator)
    text = torch.randint(1, 200, (b, n // 4), device=device, generator=generator)
    t = torch.full((), 0.5, device=device, dtype=dtype)
    positions = torch.arange(n, device=device)
    mask = torch.stack([positions < length for length in lengths])
    backends = ["sliced", "masked"]
    if device.startswith("cuda"):
        backends = ["varlen", *backends] + (["flash_attn"] if attention.flash_attn_usable() else [])

    def forward(batch_x, batch_cond, batch_text, batch_mask, lens):
        attention.set_lengths(transformer, tuple(lens) if batch_mask is not None else None)
        try:
            return transformer(
                x=batch_x, cond=batch_cond, text=batch_text, time=t, mask=batch_mask, cfg_infer=True, cache=False
            )
        finally:
            attention.set_lengths(transformer, None)

    out: dict = {"batch": b, "lengths": lengths, "backends": {}, "reference": "masked (F5's own semantics)"}
    results = {}
    with torch.inference_mode():
        for backend in ["masked", *[name for name in backends if name != "masked"]]:
            processors = attention.install(transformer, backend)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated() if device.startswith("cuda") else 0
            try:
                results[backend] = forward(x, cond, text, mask, lengths)
                seconds = cuda_time(lambda: forward(x, cond, text, mask, lengths), device, repeats=3 if dry else 5)
            except torch.OutOfMemoryError as error:
                out["backends"][backend] = {"error": f"out of memory: {str(error)[:200]}"}
                continue
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.startswith("cuda") else None
            errors = []
            if "masked" in results:
                for i, length in enumerate(lengths):  # valid positions of both CFG halves of item i
                    ours = results[backend][[i, i + b], :length].float()
                    theirs = results["masked"][[i, i + b], :length].float()
                    errors.append(float((ours - theirs).norm() / theirs.norm()))
            out["backends"][backend] = {
                "forward_ms": round(seconds * 1000, 2),
                "peak_extra_mb": round(peak, 1) if peak is not None else None,
                "rel_err_vs_masked_max": max(errors) if errors else None,
                "calls": dict(processors[0].calls),
            }
    attention.install(transformer, engine.backend)
    return out


def tolerance_section(engine, workload, nfe: int, count: int) -> dict:
    import numpy as np

    from voicebatch.synthesis.engine import SynthesisParams

    params = SynthesisParams(nfe_steps=nfe)
    requests = workload.requests[:count]
    # An explicit batch cap: on a CPU the engine would otherwise run batches of one.
    batched = engine.synthesize(workload.references, requests, params, max_batch=count)
    single = [engine.synthesize(workload.references, [r], params)[0] for r in requests]
    rel, peak = [], []
    for a, b in zip(batched, single, strict=True):
        assert a.frames == b.frames, "batched and single chunks must have the same length"
        rel.append(float(np.linalg.norm(a.mel - b.mel) / np.linalg.norm(b.mel)))
        peak.append(float(np.abs(a.mel - b.mel).max()))
    again = engine.synthesize(workload.references, requests, params, max_batch=count)
    repeatable = all(np.array_equal(a.samples, b.samples) for a, b in zip(batched, again, strict=True))
    return {
        "chunks": count,
        "dtype": str(engine.dtype),
        "mel_rel_l2_max": max(rel),
        "mel_rel_l2_mean": sum(rel) / len(rel),
        "mel_abs_max": max(peak),
        "same_seed_same_samples": repeatable,
    }


def profile_section(engine, workload, nfe: int, budget: int, out_dir: Path) -> dict:
    """Where device time goes: kernel time by kind over one engine run (CUDA activity only,
    which keeps the profiler's own cost out of the wall time), against the run's wall time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from voicebatch.synthesis.engine import SynthesisParams

    params = SynthesisParams(nfe_steps=nfe)
    requests = workload.requests[: min(len(workload.requests), 16)]
    cuda = engine.device.startswith("cuda")
    engine.synthesize(workload.references, requests[:2], params, batch_frames=budget)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]) as prof:
        engine.synthesize(workload.references, requests, params, batch_frames=budget)
        if cuda:
            torch.cuda.synchronize()
    wall = time.perf_counter() - started
    events = prof.key_averages()
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    (out_dir / "profile.txt").write_text(events.table(sort_by=sort, row_limit=40, max_name_column_width=90))
    categories: dict[str, float] = {}
    busy_us = 0.0
    for e in events:
        if cuda and e.device_type != torch.autograd.DeviceType.CUDA:
            continue  # CPU-side rows repeat their kernels' time
        us = (e.self_device_time_total if cuda else e.self_cpu_time_total) or 0.0
        name = e.key.lower()
        if any(k in name for k in ("gemm", "cutlass", "xmma", "nvjet", "addmm", "matmul", "sm90")):
            kind = "matmul"
        elif any(k in name for k in ("flash", "fmha", "attention", "varlen", "sdpa")):
            kind = "attention"
        elif any(k in name for k in ("conv", "fft", "istft")):
            kind = "convolution/fft (vocoder, conv embeddings)"
        elif "memcpy" in name or "memset" in name:
            kind = "copies"
        elif "cat" in name:
            kind = "concatenation"
        else:
            kind = "elementwise/norm/other"
        categories[kind] = categories.get(kind, 0.0) + us
        busy_us += us
    return {
        "chunks": len(requests),
        "wall_s": round(wall, 3),
        "device_busy_s": round(busy_us / 1e6, 3),
        "device_busy_fraction": round(busy_us / 1e6 / wall, 3) if cuda else None,
        "by_kind_s": {k: round(v / 1e6, 3) for k, v in sorted(categories.items(), key=lambda kv: -kv[1])},
    }
