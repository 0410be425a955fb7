"""Synthesis throughput: F5-TTS's own inference vs the voicebatch engine, same texts and seeds.

    python benchmarks/bench_synthesis.py                      # CPU, tiny random model
    python benchmarks/bench_synthesis.py --full --device cuda # GPU, F5TTS_v1_Base architecture
    python benchmarks/bench_synthesis.py --write benchmarks/RESULTS.md

Runs, each on the same chunks (the demo scripts split by voicebatch, cycled with fresh seeds
when more chunks are asked for than the demo has):

(a) ``f5_process``: F5-TTS's ``infer_process`` — what its CLI and API call — once per run of
    one voice at one speed, given the text of those chunks joined (F5 re-chunks it by its own
    rule). torchaudio >= 2.9 reads audio through torchcodec/FFmpeg, which the machines here
    lack, so ``torchaudio.load`` is routed to soundfile for the call; nothing else changes.
(b) ``f5_batch``: F5-TTS's ``infer_batch_process`` on voicebatch's own chunks (what
    ``infer_process`` runs after chunking; batch-1 ``sample`` calls on its thread pool).
(c) ``engine``: voicebatch's engine, every chunk of every script in shared batches within a
    frame budget (the default 16,384 unless ``--budgets`` says otherwise).

All use the same model object and weights. Audio seconds count generated frames before
joining, the same measure for all. On the CPU each configuration runs in its own process
(its peak RSS is its own); ``--same-process`` runs them in one (what the GPU check does:
one model load, GPU peak memory reset per configuration). A two-chunk warm-up runs first.
``--full`` builds the full-size F5TTS_v1_Base architecture and Vocos with random weights:
the compute is the released model's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUDGETS = "16384"


def machine(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if device.startswith("cuda"):
        text += f", {torch.cuda.get_device_name(0)}"
    return text


@dataclass
class Workload:
    """The chunks every run speaks, grouped by script (F5 runs script after script)."""

    voices: dict
    references: dict
    jobs: list  # [(script name, [ChunkRequest, ...])]
    reference_files: dict = field(default_factory=dict)  # voice -> 24 kHz WAV of its clip

    @property
    def requests(self) -> list:
        return [r for _, requests in self.jobs for r in requests]


def build_workload(voices_dir: Path, chunks: int, model_checksum: str, params, tmp: Path) -> Workload:
    import soundfile as sf

    from voicebatch.inputs.scripts import load_scripts
    from voicebatch.inputs.vocab import load_vocabulary
    from voicebatch.inputs.voices import prepare_voices
    from voicebatch.keys import chunk_seed
    from voicebatch.synthesis.engine import ChunkRequest, Reference
    from voicebatch.synthesis.jobs import plan_requests

    voices, _ = prepare_voices(voices_dir, vocab=load_vocabulary())
    scripts, problems = load_scripts(ROOT / "include" / "scripts", set(voices), load_vocabulary())
    if problems:
        raise SystemExit(f"demo scripts have problems: {problems[0]}")
    planned = plan_requests(scripts, voices, params, model_checksum, seed=0)
    jobs, taken, cycle = [], 0, 0
    while taken < chunks:
        for script, _, requests in planned:
            if taken >= chunks:
                break
            picked = requests[: chunks - taken]
            if cycle:  # a second pass over the demo: same texts, fresh keys and seeds
                picked = [
                    ChunkRequest(f"{r.key}-{cycle}", r.voice, r.text, r.speed, chunk_seed(cycle, r.key)) for r in picked
                ]
            jobs.append((f"{script.id}#{cycle}", picked))
            taken += len(picked)
        cycle += 1
    references = {n: Reference(n, v.samples, v.text) for n, v in voices.items()}
    files = {}
    for name, voice in voices.items():
        files[name] = tmp / f"{name}.wav"
        sf.write(files[name], voice.samples, 24_000, subtype="FLOAT")
    return Workload(voices, references, jobs, files)


@contextlib.contextmanager
def soundfile_torchaudio_load() -> Iterator[None]:
    """``torchaudio.load`` through soundfile for F5's ``infer_process`` (see the docstring)."""
    import soundfile as sf
    import torch
    import torchaudio

    def load(path, *args, **kwargs):
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate

    real = torchaudio.load
    torchaudio.load = load
    try:
        yield
    finally:
        torchaudio.load = real


def voice_runs(requests: list) -> list[tuple[str, float, list[str]]]:
    """F5 speaks one voice at one speed per call: a script's chunks as such runs."""
    runs: list[tuple[str, float, list[str]]] = []
    for r in requests:
        if runs and runs[-1][:2] == (r.voice, r.speed):
            runs[-1][2].append(r.text)
        else:
            runs.append((r.voice, r.speed, [r.text]))
    return runs


@contextlib.contextmanager
def f5_attention(engine) -> Iterator[None]:
    """F5's own attention processors in the engine's model for the F5 runs (batch 1: no mask,
    the same SDPA call as the engine's; restored afterwards)."""
    from f5_tts.model.modules import AttnProcessor

    blocks = engine.model.transformer.transformer_blocks
    ours = [block.attn.processor for block in blocks]
    for block, processor in zip(blocks, ours, strict=True):
        block.attn.processor = AttnProcessor(pe_attn_head=processor.pe_attn_head, attn_mask_enabled=False)
    try:
        yield
    finally:
        for block, processor in zip(blocks, ours, strict=True):
            block.attn.processor = processor


def f5_runner(engine, workload: Workload, nfe: int, api: str) -> Callable[[list], float]:
    """A function speaking ``jobs`` with F5's own inference; returns audio seconds."""
    import torch
    from f5_tts.infer import utils_infer

    def speak(jobs: list) -> float:
        with f5_attention(engine):
            return _speak(jobs)

    def _speak(jobs: list) -> float:
        audio = 0.0
        quiet = io.StringIO()  # F5 prints every chunk it makes
        for _, requests in jobs:
            for voice, speed, texts in voice_runs(requests):
                torch.manual_seed(0)
                with contextlib.redirect_stdout(quiet):
                    if api == "process":
                        with soundfile_torchaudio_load():
                            _, _, mel = utils_infer.infer_process(
                                str(workload.reference_files[voice]),
                                workload.voices[voice].text,
                                " ".join(texts),
                                engine.model,
                                engine.vocoder,
                                show_info=lambda *_: None,
                                progress=None,
                                nfe_step=nfe,
                                speed=speed,
                                device=engine.device,
                            )
                    else:
                        ref = torch.from_numpy(workload.voices[voice].samples)[None]
                        _, _, mel = next(
                            utils_infer.infer_batch_process(
                                (ref, 24_000),
                                workload.voices[voice].text,
                                texts,
                                engine.model,
                                engine.vocoder,
                                progress=None,
                                nfe_step=nfe,
                                speed=speed,
                                device=engine.device,
                            )
                        )
                # Generated mel frames: the same measure as the engine's (chunk audio before joining).
                audio += mel.shape[1] * 256 / 24_000
        return audio

    return speak


def engine_runner(engine, workload: Workload, params, budget: int, max_batch: int | None) -> Callable[[list], float]:
    def speak(jobs: list) -> float:
        every = [r for _, requests in jobs for r in requests]
        out = engine.synthesize(workload.references, every, params, batch_frames=budget, max_batch=max_batch)
        return sum(a.samples.shape[0] for a in out) / 24_000

    return speak


def measure(engine, speak: Callable[[list], float], workload: Workload, *, full_warmup: bool = False) -> dict:
    """Warm up on two chunks (or, for a compiled engine, the whole workload: every batch shape
    compiles once), then time the whole workload (device synchronised)."""
    import torch

    cuda = engine.device.startswith("cuda")
    warm = workload.jobs if full_warmup else [(workload.jobs[0][0], workload.jobs[0][1][:2])]
    started = time.perf_counter()
    speak(warm)
    if cuda:
        torch.cuda.synchronize()
    warmup_s = time.perf_counter() - started
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    audio = speak(workload.jobs)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    return {
        "chunks": len(workload.requests),
        "audio_s": round(audio, 2),
        "wall_s": round(wall, 3),
        "rtf": round(wall / audio, 5),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "gpu_max_alloc_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "warmup_s": round(warmup_s, 2),
    }


def run_config(engine, workload: Workload, config: dict) -> dict:
    """One configuration: {"mode": f5_process|f5_batch|engine, "nfe", "budget", "max_batch",
    "attention" (engine: swap the attention backend for this run)}."""
    from voicebatch.synthesis import attention
    from voicebatch.synthesis.engine import SynthesisParams

    params = SynthesisParams(nfe_steps=config["nfe"])
    backend = engine.backend
    if config["mode"] == "engine":
        speak = engine_runner(engine, workload, params, config["budget"], config.get("max_batch"))
        backend = config.get("attention") or engine.backend
    else:
        speak = f5_runner(engine, workload, config["nfe"], config["mode"].removeprefix("f5_"))
    if backend != engine.backend:
        attention.install(engine.model.transformer, backend)
    try:
        result = measure(engine, speak, workload, full_warmup=bool(engine.compile))
    finally:
        if backend != engine.backend:
            attention.install(engine.model.transformer, engine.backend)
    return {
        **config,
        **result,
        "device": engine.device,
        "model": engine.files.name,
        "attention": backend,
        "compiled": engine.compile,
    }


def configs(args: argparse.Namespace) -> list[dict]:
    out = [{"mode": "f5_process", "nfe": args.nfe}, {"mode": "f5_batch", "nfe": args.nfe}]
    for budget in args.budgets.split(","):
        for b in args.batches.split(","):
            max_batch = None if b in ("", "auto") else int(b)
            out.append({"mode": "engine", "nfe": args.nfe, "budget": int(budget), "max_batch": max_batch})
    return out


def load_engine(model_dir: Path, device: str, attention: str | None = None, compile: str | None = None):
    from voicebatch.synthesis.engine import Engine
    from voicebatch.synthesis.models import load_model_files

    return Engine(load_model_files(model_dir), device=device, attention=attention, compile=compile).load()


def child(args: argparse.Namespace) -> None:
    """One configuration in this process (the parent reads the JSON line it prints)."""
    engine = load_engine(Path(args.model_dir), args.device, args.attention, args.compile)
    config = json.loads(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        from voicebatch.synthesis.engine import SynthesisParams

        workload = build_workload(
            Path(args.voices), args.chunks, engine.files.checksum, SynthesisParams(nfe_steps=config["nfe"]), Path(tmp)
        )
        result = run_config(engine, workload, config)
    print(json.dumps({**result, "machine": machine(engine.device)}))


def build_inputs(tmp: Path, full: bool) -> tuple[Path, Path]:
    from voicebatch.synthesis.tiny import FULL_VOCOS, build_random_model, build_tiny_model, v1_base_arch

    model_dir, voices_dir = tmp / "model", tmp / "voices"
    if full:
        build_random_model(model_dir, v1_base_arch(), FULL_VOCOS, "F5TTS_v1_Base-architecture-random")
    else:
        build_tiny_model(model_dir)
    subprocess.run(
        [sys.executable, str(ROOT / "include" / "build_demo_voices.py"), "--out", str(voices_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return model_dir, voices_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="F5TTS_v1_Base architecture (random weights)")
    parser.add_argument("--nfe", type=int, default=32)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--budgets", default=DEFAULT_BUDGETS, help="engine frame budgets, comma-separated")
    parser.add_argument("--batches", default="1,8,32", help="engine batch-size caps ('auto': none), comma-separated")
    parser.add_argument("--attention", help="engine attention backend (default: the engine's choice)")
    parser.add_argument("--compile", help="torch.compile backend for the engine's DiT (e.g. inductor)")
    parser.add_argument("--same-process", action="store_true", help="all configurations in one process")
    parser.add_argument("--write", type=Path, help="append the results table to this Markdown file")
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--voices", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config:
        child(args)
        return

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, voices_dir = build_inputs(Path(tmp), args.full)
        if args.same_process:
            from voicebatch.synthesis.engine import SynthesisParams

            engine = load_engine(model_dir, args.device, args.attention, args.compile)
            params = SynthesisParams(nfe_steps=args.nfe)
            workload = build_workload(voices_dir, args.chunks, engine.files.checksum, params, Path(tmp))
            for config in configs(args):
                results.append({**run_config(engine, workload, config), "machine": machine(engine.device)})
                print(json.dumps(results[-1]), flush=True)
        else:
            for config in configs(args):
                command = [sys.executable, __file__, "--config", json.dumps(config), "--device", args.device]
                command += ["--chunks", str(args.chunks), "--model-dir", str(model_dir), "--voices", str(voices_dir)]
                if args.attention:
                    command += ["--attention", args.attention]
                if args.compile:
                    command += ["--compile", args.compile]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    table = render(results)
    print(table)
    if args.write:
        with args.write.open("a", encoding="utf-8") as f:
            f.write(table)


RUN_NAMES = {"f5_process": "F5 infer_process", "f5_batch": "F5 infer_batch_process", "engine": "voicebatch engine"}


def render(results: list[dict], title: str | None = None) -> str:
    base = next((r for r in results if r["mode"] == "f5_process"), results[0])
    first = results[0]
    lines = [
        f"\n### {title or first['model']} on {first['device']}, {first['chunks']} chunks "
        f"({time.strftime('%Y-%m-%d')})\n",
        f"Machine: {first['machine']}\n",
        "| run | NFE | budget (frames) | max batch | attention | audio s | wall s | RTF | speed-up vs infer_process "
        "| peak RSS MB | GPU max alloc MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        engine = r["mode"] == "engine"
        speedup = base["rtf"] / r["rtf"] if r["rtf"] else float("nan")
        lines.append(
            f"| {RUN_NAMES[r['mode']]} | {r['nfe']} | {r.get('budget') if engine else '-'} "
            f"| {(r.get('max_batch') or 'none') if engine else 1} | {r['attention'] if engine else 'F5 SDPA'} "
            f"| {r['audio_s']} | {r['wall_s']} | {r['rtf']} | {speedup:.2f}x "
            f"| {r['peak_rss_mb']} | {r['gpu_max_alloc_mb'] if r['gpu_max_alloc_mb'] is not None else '-'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
