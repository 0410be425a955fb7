"""The engine with its DiT blocks compiled, in a fresh process: end-to-end runs and compiled vs eager.

    python benchmarks/gpu/compiled_child.py MODEL_DIR VOICES_DIR DEVICE --backend inductor
        [--mode default|reduce-overhead] [--nfe 32,7] [--budget 16384] [--chunks 32] [--tolerance 8]

Prints one JSON line: a run row per NFE (bench_synthesis.run_config's, so the rows sit in the same
table as F5's and the eager engine's), the compile cost (the first pass over the workload, which
compiles every shape, minus a timed pass), the compile cache (hits, misses, artifact files loaded
from and saved beside the model), and the same-seed comparison with an eager engine in this
process: each chunk's mel relative L2 and whether its length is the same.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench_synthesis

import bench_synthesis as bench


def tolerance(compiled, eager, workload, nfe: int, count: int, budget: int) -> dict:
    import numpy as np

    from voicebatch.synthesis.engine import SynthesisParams

    params = SynthesisParams(nfe_steps=nfe)
    requests = workload.requests[:count]
    ours = compiled.synthesize(workload.references, requests, params, batch_frames=budget)
    theirs = eager.synthesize(workload.references, requests, params, batch_frames=budget)
    rel = [float(np.linalg.norm(a.mel - b.mel) / np.linalg.norm(b.mel)) for a, b in zip(ours, theirs, strict=True)]
    return {
        "chunks": count,
        "nfe": nfe,
        "same_frames": all(a.frames == b.frames for a, b in zip(ours, theirs, strict=True)),
        "mel_rel_l2_max": max(rel),
        "mel_rel_l2_mean": sum(rel) / len(rel),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("voices_dir", type=Path)
    parser.add_argument("device")
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--mode", default="default")
    parser.add_argument("--nfe", default="32,7")
    parser.add_argument("--budget", type=int, default=16_384)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--tolerance", type=int, default=8, help="chunks compared with eager (0: none)")
    args = parser.parse_args()

    from voicebatch.synthesis.compiled import cache_counters
    from voicebatch.synthesis.engine import Engine, SynthesisParams
    from voicebatch.synthesis.models import load_model_files

    files = load_model_files(args.model_dir)
    engine = Engine(files, device=args.device, compile=args.backend, compile_mode=args.mode).load()
    nfe_list = [int(n) for n in args.nfe.split(",")]
    out: dict = {"backend": args.backend, "mode": args.mode, "runs": [], "machine": bench.machine(engine.device)}
    with tempfile.TemporaryDirectory() as tmp:
        params = SynthesisParams(nfe_steps=nfe_list[0])
        workload = bench.build_workload(args.voices_dir, args.chunks, files.checksum, params, Path(tmp))
        for nfe in nfe_list:
            config = {"mode": "engine", "nfe": nfe, "budget": args.budget, "max_batch": None}
            row = bench.run_config(engine, workload, config)  # warm-up: the whole workload (compiles)
            row["compile_s"] = round(max(0.0, row["warmup_s"] - row["wall_s"]), 1)
            row["compile_mode"] = args.mode
            out["runs"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        out["still_compiled"] = engine.compiled is not None
        out["cache"] = {
            **cache_counters(),
            "loaded": engine.compiled.loaded if engine.compiled else [],
            "saved": engine.compiled.saved if engine.compiled else [],
            "dir": str(engine.compiled.cache_dir) if engine.compiled else None,
        }
        if args.tolerance:
            # Eager with the same buckets: the same batches and padding, so only compiling differs.
            eager = Engine(
                files, device=args.device, dtype=engine.dtype, attention=engine.backend, buckets=engine.buckets
            ).load()
            out["tolerance"] = tolerance(engine, eager, workload, nfe_list[0], args.tolerance, args.budget)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
