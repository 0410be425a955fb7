"""Does torch.compile pay for F5's DiT? One fixed-shape forward, eager vs compiled.

    python benchmarks/gpu/compile_probe.py MODEL_DIR [DEVICE [BACKEND]]

Prints one JSON line: the eager and compiled forward times (median of 5, device-synchronised)
on an unpadded batch (no mask: the shape a length bucket would give), the compile time, and the
largest difference between the two outputs. The engine does not compile today: a batch's
length changes from batch to batch, so compiling would need length buckets; this probe says
whether that work is worth doing.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    import torch

    from voicebatch.synthesis.engine import Engine
    from voicebatch.synthesis.models import load_model_files

    device = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    engine = Engine(load_model_files(Path(sys.argv[1])), device=device).load()
    transformer = engine.model.transformer
    batch, frames = (8, 1800) if device.startswith("cuda") else (2, 64)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, frames, 100, device=device, dtype=engine.dtype, generator=generator)
    cond = torch.randn(batch, frames, 100, device=device, dtype=engine.dtype, generator=generator)
    text = torch.randint(1, 200, (batch, frames // 4), device=device, generator=generator)
    t = torch.full((), 0.5, device=device, dtype=engine.dtype)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(fn) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def eager():
        return transformer(x=x, cond=cond, text=text, time=t, mask=None, cfg_infer=True, cache=False)

    backend = sys.argv[3] if len(sys.argv) > 3 else "inductor"
    compiled_fn = torch.compile(transformer, backend=backend)

    def compiled():
        return compiled_fn(x=x, cond=cond, text=text, time=t, mask=None, cfg_infer=True, cache=False)

    with torch.inference_mode():
        reference = eager()
        sync()
        eager_s = timed(eager)
        started = time.perf_counter()
        result = compiled()
        sync()
        compile_s = time.perf_counter() - started
        compiled_s = timed(compiled)
    print(
        json.dumps(
            {
                "backend": backend,
                "batch": batch,
                "frames": frames,
                "dtype": str(engine.dtype),
                "eager_ms": round(eager_s * 1000, 2),
                "compiled_ms": round(compiled_s * 1000, 2),
                "speedup": round(eager_s / compiled_s, 3),
                "compile_s": round(compile_s, 1),
                "max_abs_diff": float((result.float() - reference.float()).abs().max()),
            }
        )
    )


if __name__ == "__main__":
    main()
