"""What the warm engine, the compiled DiT and verification beside synthesis do on this CPU.

    python benchmarks/bench_floor_cpu.py [--chunks 8] [--nfe 32] [--write benchmarks/RESULTS.md]

The tiny random model (dim 64, depth 2), so the figures say what the machinery costs and saves
around the model, not what F5TTS_v1_Base would do (the GPU check measures that):

- ``compile``: the engine eager, then compiled with Inductor (C++ through gcc on the CPU) in a
  fresh process with an empty compile cache beside the model, then in a second fresh process that
  loads the cache the first saved (benchmarks/gpu/compiled_child.py, the GPU check's own).
- ``warm``: three synthesize tasks, each a fresh process, against one engine server on the CPU
  (the GPU check's warm section), and the cold fixed cost of a task that loads the model itself
  (benchmarks/gpu/fixed_cost.py).
- ``overlap``: synthesis alone, synthesis then verification (pocketsphinx and the signal checks,
  the CPU path), and verification of batch N beside synthesis of batch N+1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "gpu")]

import bench_synthesis as bench  # noqa: E402
import floor  # noqa: E402


def compile_section(model_dir: Path, voices_dir: Path, engine, workload, nfe: int, chunks: int) -> dict:
    eager = bench.run_config(engine, workload, {"mode": "engine", "nfe": nfe, "budget": 16384, "max_batch": None})
    runs = {}
    for name in ("cold cache", "cache beside the model"):
        out = floor.compiled_section(model_dir, voices_dir, "cpu", "inductor", "default", [nfe], 16384, chunks, 4, 3000)
        runs[name] = out
    return {"eager": eager, "compiled": runs}


def overlap_section(engine, workload, nfe: int, chunks: int) -> dict:
    from voicebatch.synthesis.engine import SynthesisParams
    from voicebatch.verify import build_verifier
    from voicebatch.verify.overlap import Events, SharedEngine, synthesize_then_verify
    from voicebatch.verify.settings import VerifySettings
    from voicebatch.verify.takes import verify_chunks

    params = SynthesisParams(nfe_steps=nfe)
    requests = workload.requests[:chunks]
    groups = [[r] for r in requests]  # the CPU engine runs batches of one
    verifier = build_verifier(VerifySettings())
    shared = SharedEngine(engine)

    def synthesize(group):
        return shared.synthesize(workload.references, group, params)

    def verify(group, audio):  # random weights: checks, no re-takes
        references = workload.references
        return verify_chunks(shared, references, group, params, audio, verifier, max_takes=1, random_weights=True)

    verify(groups[0], synthesize(groups[0]))  # warm-up: models loaded
    audio = []
    started = time.perf_counter()
    audio += [synthesize(g) for g in groups]
    alone = time.perf_counter() - started
    started = time.perf_counter()
    for group, result in zip(groups, audio, strict=True):
        verify(group, result)
    checks = time.perf_counter() - started
    timings = {}
    for overlap in (False, True):
        events = Events()
        started = time.perf_counter()
        list(synthesize_then_verify(groups, synthesize, verify, overlap=overlap, events=events))
        timings[overlap] = time.perf_counter() - started
    return {
        "chunks": chunks,
        "verifier": f"{verifier.mode}, {verifier.recognizer.name if verifier.recognizer else 'no recogniser'}",
        "synthesis_alone_s": round(alone, 2),
        "verification_alone_s": round(checks, 2),
        "serial_s": round(timings[False], 2),
        "overlapped_s": round(timings[True], 2),
    }


def markdown(result: dict) -> str:
    c, w, o = result["compile"], result["warm"], result["overlap"]
    lines = [
        f"\n### Warm engine, compiled DiT, verification beside synthesis: CPU ({time.strftime('%Y-%m-%d')})\n",
        f"`python benchmarks/bench_floor_cpu.py --chunks {result['chunks']} --nfe {result['nfe']}`. Machine: "
        f"{result['machine']}, no GPU; load average {result['load']} while it ran (other work shared the "
        "2 cores: expect ±30 %). Model: the tiny random model (DiT 64 × 2), so these are the machinery's costs "
        "and savings, not F5TTS_v1_Base's.\n",
        "| engine | wall s | RTF | compile s (first pass) | graphs compiled / from cache |",
        "|---|---|---|---|---|",
        f"| eager | {c['eager']['wall_s']} | {c['eager']['rtf']} | - | - |",
    ]
    for name, run in c["compiled"].items():
        row, cache = run["runs"][0], run["cache"]
        lines.append(
            f"| Inductor, {name} | {row['wall_s']} | {row['rtf']} | {row['compile_s']} "
            f"| {cache['fxgraph_cache_miss']} / {cache['fxgraph_cache_hit']} |"
        )
    tol = c["compiled"]["cold cache"].get("tolerance", {})
    lines.append(
        f"\nCompiled vs eager, same seeds: mel relative L2 at most {tol.get('mel_rel_l2_max', float('nan')):.1e}, "
        f"same lengths: {tol.get('same_frames')}.\n"
    )
    lines += ["| task (fresh process) | wall s | imports s | synthesis s | fixed s |", "|---|---|---|---|---|"]
    names = ["1: starts the server, which loads the model", "2: model already loaded", "3: model already loaded"]
    for name, task in zip(names, w["tasks"], strict=False):
        lines.append(f"| {name} | {task['wall_s']} | {task['imports_s']} | {task['synthesis_s']} | {task['fixed_s']} |")
    cold = result["cold_fixed"]
    lines.append(
        f"| without a warm engine (benchmarks/gpu/fixed_cost.py: imports, load, warm-up) | - | "
        f"{round(cold['import_torch_s'] + cold['import_f5_and_engine_s'], 2)} | - | {cold['fixed_s']} |\n"
    )
    lines += [
        f"Verification ({o['verifier']}) of {o['chunks']} chunks, one synthesis batch each:\n",
        "| run | wall s |",
        "|---|---|",
        f"| synthesis alone | {o['synthesis_alone_s']} |",
        f"| verification alone | {o['verification_alone_s']} |",
        f"| one after the other | {o['serial_s']} |",
        f"| batch N verified while N+1 synthesizes | {o['overlapped_s']} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--nfe", type=int, default=32)
    parser.add_argument("--write", type=Path, help="append the Markdown to this file")
    parser.add_argument("--only-compile", action="store_true", help="the compile section alone (JSON)")
    args = parser.parse_args()
    from voicebatch.synthesis.engine import SynthesisParams

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, voices_dir = bench.build_inputs(Path(tmp), full=False)
        engine = bench.load_engine(model_dir, "cpu")
        workload = bench.build_workload(
            voices_dir, args.chunks, engine.files.checksum, SynthesisParams(nfe_steps=args.nfe), Path(tmp)
        )
        result = {"chunks": args.chunks, "nfe": args.nfe, "machine": bench.machine("cpu")}
        if args.only_compile:
            print(json.dumps(compile_section(model_dir, voices_dir, engine, workload, args.nfe, args.chunks)))
            return
        result["overlap"] = overlap_section(engine, workload, args.nfe, args.chunks)
        print(json.dumps(result["overlap"]), flush=True)
        result["warm"] = floor.warm_section(model_dir, workload, "cpu", args.nfe, min(4, args.chunks), None, 3000)
        print(json.dumps(result["warm"]), flush=True)
        result["cold_fixed"] = floor.child("fixed_cost.py", str(model_dir), str(voices_dir), "cpu", timeout=900)
        print(json.dumps(result["cold_fixed"]), flush=True)
        result["compile"] = compile_section(model_dir, voices_dir, engine, workload, args.nfe, args.chunks)
        print(json.dumps(result["compile"]), flush=True)
        result["load"] = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    text = markdown(result)
    print(text)
    if args.write:
        with args.write.open("a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
