"""The GPU check's sections for the engine near its floor (check.py runs them): the compiled engine
end to end, its CUDA-graph variant, the warm engine's fixed cost per task, verification beside
synthesis, and bf16 against fp16; and their tables in benchmarks/RESULTS.md's format.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# The figures the engine should reach on an H100 (issue: GPU near the floor).
GOALS = {
    "rtf_nfe_32": 0.022,
    "rtf_epss_7": 0.005,
    "warm_fixed_s": 2.0,
    "verify_overhead": 0.15,
    "compiled_rel_l2": 1e-2,
}


def child(script: str, *args: str, timeout: float, env: dict | None = None) -> dict:
    """One of this folder's scripts in a fresh process; its last stdout line is JSON."""
    command = [sys.executable, str(HERE / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def compiled_section(
    model_dir: Path, voices_dir: Path, device: str, backend: str, mode: str, nfe: list[int], budget: int,
    chunks: int, tolerance: int, timeout: float,
) -> dict:  # fmt: skip
    """The compiled engine's runs in a fresh process with an empty Inductor cache of its own: only
    the compile cache beside the model can carry compiled graphs over from an earlier process."""
    args = [str(model_dir), str(voices_dir), device, "--backend", backend, "--mode", mode]
    args += ["--nfe", ",".join(map(str, nfe)), "--budget", str(budget), "--chunks", str(chunks)]
    with tempfile.TemporaryDirectory(prefix="inductor-") as inductor:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": inductor}
        return child("compiled_child.py", *args, "--tolerance", str(tolerance), timeout=timeout, env=env)


def warm_section(
    model_dir: Path, workload, device: str, nfe: int, chunks: int, backend: str | None, timeout: float
) -> dict:
    """Three synthesize tasks, each a fresh process, against one engine server: the first starts
    it (and pays the load), the next two find the model loaded. ``fixed_s`` is a task's wall time
    less its own synthesis time."""
    import numpy as np

    from voicebatch.synthesis.warm import WarmEngine, WarmSettings

    directory = Path(tempfile.mkdtemp(prefix="vbw-"))
    requests = workload.requests[:chunks]
    used = sorted({r.voice for r in requests})
    np.savez(directory / "inputs.npz", **{v: workload.references[v].samples for v in used})
    spec = {
        "nfe": nfe,
        "references": {v: workload.references[v].text for v in used},
        "chunks": [
            {"key": r.key, "voice": r.voice, "text": r.text, "speed": r.speed, "seed": r.seed} for r in requests
        ],
    }
    (directory / "chunks.json").write_text(json.dumps(spec))
    physical = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] if device.startswith("cuda") else "-"
    args = [str(model_dir), str(directory / "inputs.npz"), str(directory / "chunks.json"), str(directory), device]
    args += [physical, backend or "-"]
    tasks, deadline = [], time.monotonic() + timeout
    try:
        for _ in range(3):
            tasks.append(child("warm_task.py", *args, timeout=max(30.0, deadline - time.monotonic())))
    finally:
        settings = WarmSettings(directory=directory)
        WarmEngine(_files(model_dir), device=device, physical_id=None if physical == "-" else physical,
                   settings=settings).shutdown_server()  # fmt: skip
        log = next(directory.glob("engine-*.log"), None)
        tail = log.read_text(errors="replace").splitlines()[-5:] if log else []
        shutil.rmtree(directory, ignore_errors=True)
    # Each task's fixed cost is its wall time less its own request's synthesis time (the server's
    # measure): on a shared machine the same chunks' compute varies too much from task to task to
    # subtract another task's. The first task's synthesis includes the warm-up (and compile).
    return {
        "chunks": chunks,
        "nfe": nfe,
        "compile": backend,
        "tasks": [{k: v for k, v in t.items() if k != "server"} for t in tasks],
        "server_pids": [t["server"]["pid"] for t in tasks],
        "server_loads_seen": [t["server"]["loads"] for t in tasks],
        "warm_fixed_s": max(t["fixed_s"] for t in tasks[1:]),
        "first_synthesis_over_last_s": round(tasks[0]["synthesis_s"] - tasks[-1]["synthesis_s"], 3),
        "server_log_tail": tail,
    }


def _files(model_dir: Path):
    from voicebatch.synthesis.models import load_model_files

    return load_model_files(model_dir, verify=False)


def overlap_section(engine, workload, nfe: int, chunks: int, budget: int, tiny: bool) -> dict:
    """Synthesis alone, then synthesis + verification one after the other, then verification of
    batch N beside synthesis of batch N+1 (verify/overlap.py), on the same chunks. The
    recogniser is the stand-in of asr_standin.py on the same GPU."""
    import torch
    from asr_standin import WhisperStandIn

    from voicebatch.synthesis.batching import estimate_frames, plan_batches
    from voicebatch.synthesis.buckets import plan_bucketed_batches
    from voicebatch.synthesis.engine import SynthesisParams
    from voicebatch.verify.overlap import Events, SharedEngine, synthesize_then_verify

    params = SynthesisParams(nfe_steps=nfe)
    requests = workload.requests[:chunks]
    refs = workload.references
    frames = [estimate_frames(refs[r.voice].samples.shape[0], refs[r.voice].text, r.text, r.speed) for r in requests]
    # The synthesis batches as run.speak.synthesis_batches makes them (it needs S3 libraries
    # that the GPU machine does not have).
    cap = None if engine.device.startswith("cuda") else 1  # the engine's own rule: batches of one on a CPU
    if engine.buckets:
        batches = plan_bucketed_batches(frames, engine.buckets, budget, cap)
    else:
        batches = plan_batches(frames, budget, cap)
    groups = [[requests[i] for i in batch.items] for batch in batches]
    started = time.perf_counter()
    asr = WhisperStandIn(engine.device, tiny=tiny)
    asr_load = time.perf_counter() - started
    shared = SharedEngine(engine)

    def synthesize(group):
        return shared.synthesize(workload.references, group, params, batch_frames=budget)

    def verify(group, audio):
        return asr.transcribe([a.samples for a in audio], [r.text for r in group])

    def sync() -> None:
        if engine.device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(fn) -> float:
        sync()
        begun = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - begun

    synthesize(groups[0])  # warm-up of both
    verify(groups[0], synthesize(groups[0][:1]))
    audio: list = []
    alone = timed(lambda: audio.extend(synthesize(g) for g in groups))
    checks = timed(lambda: [verify(g, a) for g, a in zip(groups, audio, strict=True)])
    serial = timed(lambda: list(synthesize_then_verify(groups, synthesize, verify, overlap=False)))
    events = Events()
    overlapped = timed(lambda: list(synthesize_then_verify(groups, synthesize, verify, events=events)))
    beside = sum(events.seq("verify_start", i) < events.seq("synthesize_end", i + 1) for i in range(len(groups) - 1))
    return {
        "chunks": chunks,
        "groups": len(groups),
        "nfe": nfe,
        "recognizer": asr.name,
        "recognizer_load_s": round(asr_load, 2),
        "synthesis_alone_s": round(alone, 3),
        "verification_alone_s": round(checks, 3),
        "serial_s": round(serial, 3),
        "overlapped_s": round(overlapped, 3),
        "overhead_serial": round(serial / alone - 1, 3),
        "overhead_overlapped": round(overlapped / alone - 1, 3),
        "groups_checked_beside_the_next": beside,
    }


def precision_section(model_dir: Path, workload, device: str, nfe: int, count: int, budget: int, dry: bool) -> dict:
    """bf16 against fp16 (the time grid in fp32 either way): whole-workload RTF of each, and each
    one's drift from a float32 engine on the same chunks and seeds."""
    import bench_synthesis as bench
    import numpy as np
    import torch

    from voicebatch.synthesis.engine import Engine, SynthesisParams
    from voicebatch.synthesis.models import load_model_files

    files = load_model_files(model_dir)
    params = SynthesisParams(nfe_steps=nfe)
    requests = workload.requests[:count]
    reference = Engine(files, device=device, dtype=torch.float32).load()
    truth = reference.synthesize(workload.references, requests, params, batch_frames=budget)
    del reference
    out: dict = {"nfe": nfe, "chunks_compared": count, "dtypes": {}}
    for dtype in (torch.float16, torch.bfloat16) if not dry else (torch.bfloat16,):
        engine = Engine(files, device=device, dtype=dtype).load()
        got = engine.synthesize(workload.references, requests, params, batch_frames=budget)
        rel = [float(np.linalg.norm(a.mel - b.mel) / np.linalg.norm(b.mel)) for a, b in zip(got, truth, strict=True)]
        row = bench.run_config(engine, workload, {"mode": "engine", "nfe": nfe, "budget": budget, "max_batch": None})
        out["dtypes"][str(dtype).removeprefix("torch.")] = {
            "rtf": row["rtf"],
            "wall_s": row["wall_s"],
            "audio_s": row["audio_s"],
            "mel_rel_l2_vs_fp32_max": max(rel),
            "mel_rel_l2_vs_fp32_mean": sum(rel) / len(rel),
            "same_frames": all(a.frames == b.frames for a, b in zip(got, truth, strict=True)),
        }
        del engine
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return out
