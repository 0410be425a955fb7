"""The one-call GPU check: every figure a lent GPU should give us, in one process tree.

    bash benchmarks/gpu/run.sh             # on the GPU machine (see benchmarks/gpu/README.md)
    python benchmarks/gpu/check.py --dry-run --out /tmp/out   # the same code on a CPU, tiny model

Sections, in this order, each started only while the time left allows it, timed and written to
``$OUT/gpu-check.json`` as soon as it ends (a run cut short still leaves what it measured):

1. ``ceilings``: a large bf16 matrix product (TFLOP/s) and a device-to-device copy (GB/s).
2. ``model``: F5TTS_v1_Base's architecture with random weights (the released model's compute),
   built in the store's layout and loaded through the engine (load time measured).
3. ``runs``: F5's ``infer_process`` vs the eager engine at NFE 32 and EPSS 7 steps, same chunks
   (benchmarks/bench_synthesis.py's runners), with the useful FLOPs of each run and the floor
   they imply at the measured matrix rate.
4. ``compiled``: the same runs with the DiT's blocks compiled (Inductor; floor.py), in a fresh
   process with the compile cache beside the model, and compiled vs eager with the same seeds.
5. ``warm``: three synthesize tasks, each a fresh process, against one warm engine server.
6. ``overlap``: verification of batch N beside synthesis of batch N+1, against serial.
7. ``precision``: bf16 vs fp16, each against fp32.
8. ``cudagraphs``: the compiled runs with CUDA graphs (``reduce-overhead``).
9. ``summary``: speed-ups, the fixed cost of a task, and the goals met or missed.

Measured on the H200 before, run with ``--sections`` (and always by the dry run): ``tolerance``,
``attention``, ``profile`` (earlier.py), ``fixed_cost`` (a task without a warm engine) and
``compile`` (one fixed-shape forward, eager vs compiled). ``gpu-check.md`` is the section for
benchmarks/RESULTS.md (floor_report.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # bench_synthesis

import bench_synthesis as bench  # noqa: E402 - after the path insert
import floor  # noqa: E402
import floor_report  # noqa: E402
from earlier import attention_section, cuda_time, profile_section, tolerance_section  # noqa: E402

OLD_CHUNKS_PER_TASK = 64  # what a synthesize task held before tasks were sized by GPU time


class Report:
    """Sections as they finish, rewritten to disk after each one."""

    def __init__(self, out: Path, budget_s: float, skip: set[str] | None = None) -> None:
        self.out = out
        self.skip = skip or set()
        self.data: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "sections": {}}
        self.deadline = time.monotonic() + budget_s

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def section(self, name: str, fn: Callable[[], dict], *, needs_s: float = 0.0) -> dict | None:
        if name in self.skip:
            return None
        if self.left() < needs_s:
            self.data["sections"][name] = {"skipped": f"{self.left():.0f} s left, needs {needs_s:.0f} s"}
            self.save()
            return None
        started = time.monotonic()
        print(f"== {name} ({self.left():.0f} s left)", flush=True)
        try:
            result = fn()
        except Exception as error:  # one failed section must not lose the others' figures
            import traceback

            traceback.print_exc()
            result = {"error": f"{type(error).__name__}: {error}"}
        result["section_s"] = round(time.monotonic() - started, 2)
        self.data["sections"][name] = result
        self.save()
        print(json.dumps({name: result}, default=str)[:4000], flush=True)
        return result

    def save(self) -> None:
        (self.out / "gpu-check.json").write_text(json.dumps(self.data, indent=1, default=str))


def ceilings(device: str, dry: bool) -> dict:
    import torch

    n = 1024 if dry else 8192
    dtype = torch.float32 if dry else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = cuda_time(lambda: a @ b, device, repeats=3 if dry else 10)
    size = (2**24 if dry else 2**30) // 4
    src = torch.randn(size, device=device)
    dst = torch.empty_like(src)
    copy_s = cuda_time(lambda: dst.copy_(src), device, repeats=3 if dry else 10)
    out = {
        "matmul": f"{n}x{n}x{n} {dtype}",
        "matmul_tflops": round(2 * n**3 / seconds / 1e12, 1),
        "copy_gb_s": round(2 * src.numel() * 4 / copy_s / 1e9, 1),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        out |= {"gpu": props.name, "sms": props.multi_processor_count, "memory_gb": round(props.total_memory / 1e9, 1)}
    return out


def linear_params(transformer) -> int:
    import torch

    blocks = transformer.transformer_blocks
    return sum(m.weight.numel() for m in blocks.modules() if isinstance(m, torch.nn.Linear))


def useful_flops(engine, workload, nfe: int) -> float:
    """FLOPs a run must do: per item and step, CFG doubles the sequence; linear layers cost
    2 x params per token, attention 4 x n x inner_dim per token and layer (QK^T and PV)."""
    from voicebatch.synthesis.batching import estimate_frames

    transformer = engine.model.transformer
    params = linear_params(transformer)
    depth = len(transformer.transformer_blocks)
    inner = transformer.transformer_blocks[0].attn.inner_dim
    total = 0.0
    for r in workload.requests:
        voice = workload.voices[r.voice]
        n = estimate_frames(voice.samples.shape[0], voice.text, r.text, r.speed)
        total += 2 * nfe * (n * 2 * params + depth * 4 * n * n * inner)
    return total


def add_flops(result: dict, flops: float, peak_tflops: float | None) -> dict:
    result["useful_tflop"] = round(flops / 1e12, 1)
    result["achieved_tflops"] = round(flops / result["wall_s"] / 1e12, 1)
    if peak_tflops:
        result["floor_rtf_at_matmul_peak"] = round(flops / (peak_tflops * 1e12) / result["audio_s"], 5)
    return result


def runs_section(
    engine, workload, nfe_list: list[int], budgets: list[int], peak_tflops: float | None, *, more: bool
) -> dict:
    """F5's infer_process and the eager engine at each NFE and budget; with ``more`` also F5's
    infer_batch_process and the other attention kernel (measured on the H200 already)."""
    out: dict = {"runs": []}
    for nfe in nfe_list:
        configs = [{"mode": "f5_process", "nfe": nfe}] + ([{"mode": "f5_batch", "nfe": nfe}] if more else [])
        configs += [{"mode": "engine", "nfe": nfe, "budget": budget, "max_batch": None} for budget in budgets]
        if more and nfe == nfe_list[0]:  # the other padding-aware kernel, at the default budget
            other = "varlen" if engine.device.startswith("cuda") else "masked"
            variant = {"attention": other, "variant": f"attention {other}"}
            configs.append({"mode": "engine", "nfe": nfe, "budget": budgets[0], "max_batch": None, **variant})
        flops = useful_flops(engine, workload, nfe)
        for config in configs:
            print(f"   {config}", flush=True)
            result = add_flops(bench.run_config(engine, workload, config), flops, peak_tflops)
            out["runs"].append(result)
            print(f"   -> RTF {result['rtf']} wall {result['wall_s']} s", flush=True)
    engine_runs = [r for r in out["runs"] if r["mode"] == "engine" and r["nfe"] == nfe_list[0] and "variant" not in r]
    out["best_budget"] = min(engine_runs, key=lambda r: r["rtf"])["budget"] if engine_runs else None
    return out


def child_json(script: str, *args: str, timeout: float) -> dict:
    """Run one of this folder's probes in a fresh process; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(sections: dict) -> dict:
    """The figures the issue asks for, side by side: speed-ups over F5 and the fixed cost of a
    default synthesize task against that task's GPU time at the measured speed."""
    runs = sections.get("runs", {}).get("runs", [])
    out: dict = {}
    for nfe in sorted({r["nfe"] for r in runs}):
        mine = [r for r in runs if r["nfe"] == nfe]
        base = {r["mode"]: r for r in mine if r["mode"] != "engine"}
        engines = [r for r in mine if r["mode"] == "engine" and "variant" not in r]
        if not engines or "f5_process" not in base:
            continue
        default = next((r for r in engines if r["budget"] == 16384), engines[0])
        best = min(engines, key=lambda r: r["rtf"])
        out[f"nfe_{nfe}"] = {
            "f5_infer_process_rtf": base["f5_process"]["rtf"],
            "f5_infer_batch_process_rtf": base.get("f5_batch", {}).get("rtf"),
            "engine_default_budget_rtf": default["rtf"],
            "engine_best_rtf": best["rtf"],
            "engine_best_budget": best["budget"],
            "audio_s_per_chunk": round(default["audio_s"] / default["chunks"], 2),
            "speedup_default_vs_infer_process": round(base["f5_process"]["rtf"] / default["rtf"], 2),
            "speedup_best_vs_infer_process": round(base["f5_process"]["rtf"] / best["rtf"], 2),
        }
    fixed = sections.get("fixed_cost", {}).get("fixed_s")
    first = out.get(f"nfe_{runs[0]['nfe']}") if runs else None
    if fixed and first:
        from voicebatch.synthesis.batching import DEFAULT_TASK_GPU_SECONDS

        seconds_per_chunk = first["audio_s_per_chunk"]
        old_task_gpu_s = OLD_CHUNKS_PER_TASK * seconds_per_chunk * first["engine_default_budget_rtf"]
        out["task"] = {
            "fixed_s": fixed,
            "old_chunks_per_task": OLD_CHUNKS_PER_TASK,
            "old_task_gpu_s": round(old_task_gpu_s, 2),
            "old_fixed_fraction": round(fixed / (fixed + old_task_gpu_s), 3) if old_task_gpu_s else None,
            "task_gpu_s": DEFAULT_TASK_GPU_SECONDS,
            "fixed_fraction": round(fixed / (fixed + DEFAULT_TASK_GPU_SECONDS), 3),
        }
    out["goals"] = floor_report.goals(sections)
    return out


def markdown(data: dict) -> str:
    """The sections measured before (attention, profile, ...) when they ran: raw, for reading."""
    s = data["sections"]
    lines = []
    att = s.get("attention", {}).get("backends", {})
    if att:
        lines += ["", "| attention | forward ms | extra peak MB | rel. error vs masked |", "|---|---|---|---|"]
        for name, r in att.items():
            if "error" in r:
                lines.append(f"| {name} | {r['error']} | | |")
            else:
                err = r["rel_err_vs_masked_max"]
                lines.append(f"| {name} | {r['forward_ms']} | {r['peak_extra_mb']} | {err:.2e} |")
    for name in ("tolerance", "profile", "fixed_cost", "compile", "summary"):
        if name in s:
            lines.append(f"\n{name}: `{json.dumps(s[name], default=str)}`")
    return "\n".join(lines) + "\n"


DEVICE_SECTIONS = ("ceilings", "model", "runs", "compiled", "warm", "overlap", "precision", "cudagraphs", "summary")
# Measured on the H200 already (benchmarks/RESULTS.md): the dry run keeps them working, a device run
# names them in --sections when it has the time.
MORE_SECTIONS = ("tolerance", "attention", "profile", "fixed_cost", "compile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny model, small sizes: the code paths only")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--chunks", type=int, default=24)  # 32 on the H200 before: F5 alone took 40 s of it
    parser.add_argument("--budgets", default="16384", help="the eager engine's frame budgets (the first: compiled)")
    parser.add_argument("--budget-s", type=float, default=400.0, help="stop starting sections after this")
    parser.add_argument("--sections", default=",".join(DEVICE_SECTIONS), help="sections to run, comma-separated")
    parser.add_argument("--skip", default="", help="sections not to run, comma-separated")
    args = parser.parse_args()
    dry = args.dry_run
    device = "cpu" if dry else args.device
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(DEVICE_SECTIONS + MORE_SECTIONS) if dry else set(filter(None, args.sections.split(",")))
    skip = set(filter(None, args.skip.split(","))) | (set(DEVICE_SECTIONS + MORE_SECTIONS) - wanted)
    report = Report(args.out, 10**6 if dry else args.budget_s, skip=skip - {"ceilings", "model"})
    budgets = [int(b) for b in args.budgets.split(",")]
    chunks = 2 if dry else args.chunks
    nfe_list = [3, 7] if dry else [32, 7]
    if dry:
        budgets = [16384, 32768]
    compile_backend = "eager" if dry else "inductor"  # the dry run: dynamo's tracing, no code generation

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        facts = report.section("ceilings", lambda: ceilings(device, dry))
        state: dict = {}

        def model() -> dict:
            started = time.perf_counter()
            state["dirs"] = bench.build_inputs(tmp_path, full=not dry)
            built = time.perf_counter() - started
            started = time.perf_counter()
            state["engine"] = engine = bench.load_engine(state["dirs"][0], device)
            loaded = time.perf_counter() - started
            report.data["machine"] = bench.machine(engine.device)
            return {
                "name": engine.files.name,
                "dtype": str(engine.dtype),
                "attention": engine.backend,
                "linear_params_m": round(linear_params(engine.model.transformer) / 1e6, 1),
                "build_s": round(built, 1),
                "load_s": round(loaded, 1),
            }

        report.section("model", model)
        if "engine" not in state:
            raise SystemExit("the model did not load: nothing else can run")
        engine = state["engine"]
        model_dir, voices_dir = state["dirs"]
        from voicebatch.synthesis.engine import SynthesisParams

        workload = bench.build_workload(
            voices_dir, chunks, engine.files.checksum, SynthesisParams(nfe_steps=nfe_list[0]), tmp_path
        )
        peak = (facts or {}).get("matmul_tflops")
        more = dry or "attention" in wanted
        report.section("runs", lambda: runs_section(engine, workload, nfe_list, budgets, peak, more=more), needs_s=60)

        def compiled(mode: str, tolerance: int) -> dict:
            timeout = max(60.0, report.left() - 5)
            out = floor.compiled_section(
                model_dir, voices_dir, device, compile_backend, mode, nfe_list, budgets[0], chunks, tolerance, timeout
            )
            for row in out["runs"]:
                add_flops(row, useful_flops(engine, workload, row["nfe"]), peak)
            return out

        report.section("compiled", lambda: compiled("default", 2 if dry else 8), needs_s=90)
        backend = compile_backend if "error" not in report.data["sections"].get("compiled", {"error": 1}) else None
        warm = (model_dir, workload, device, nfe_list[0], 2 if dry else 8, backend)
        report.section("warm", lambda: floor.warm_section(*warm, timeout=max(60.0, report.left())), needs_s=60)
        report.section(
            "overlap",
            lambda: floor.overlap_section(engine, workload, nfe_list[0], 2 if dry else 16, budgets[0], tiny=dry),
            needs_s=45,
        )
        report.section(
            "precision",
            lambda: floor.precision_section(model_dir, workload, device, nfe_list[0], 2 if dry else 4, budgets[0], dry),
            needs_s=45,
        )
        report.section("cudagraphs", lambda: compiled("reduce-overhead" if not dry else "default", 0), needs_s=120)
        # Measured before (H200); the dry run keeps them working.
        count = 2 if dry else 8
        report.section("tolerance", lambda: tolerance_section(engine, workload, nfe_list[0], count), needs_s=30)
        report.section("attention", lambda: attention_section(engine, dry), needs_s=20)
        report.section(
            "profile", lambda: profile_section(engine, workload, nfe_list[0], budgets[0], args.out), needs_s=30
        )
        dirs = (str(model_dir), str(voices_dir))
        report.section("fixed_cost", lambda: child_json("fixed_cost.py", *dirs, device, timeout=300), needs_s=40)
        probe = ("compile_probe.py", str(model_dir), device, "eager" if dry else "inductor")
        report.section("compile", lambda: child_json(*probe, timeout=max(30.0, report.left() - 15)), needs_s=100)
        report.section("summary", lambda: summary(report.data["sections"]), needs_s=float("-inf"))
    pytest_summary = _pytest_summary(args.out / "pytest.txt")
    text = floor_report.markdown(report.data, pytest_summary) + markdown(report.data)
    (args.out / "gpu-check.md").write_text(text)
    print(text)


def _pytest_summary(path: Path) -> str | None:
    """The CUDA tests' last line (run.sh runs them before this script), e.g. ``18 passed, 2 skipped``."""
    try:
        lines = [line.strip("= \n") for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


if __name__ == "__main__":
    main()
