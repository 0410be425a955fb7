"""Synthesis throughput: F5-TTS's own inference vs the voicebatch engine, same chunks and seeds.

    python benchmarks/bench_synthesis.py                      # CPU, tiny random model
    python benchmarks/bench_synthesis.py --full --device cuda # GPU, F5TTS_v1_Base architecture
    python benchmarks/bench_synthesis.py --write benchmarks/RESULTS.md

(a) ``f5``: F5-TTS's ``infer_batch_process`` (what ``infer_process`` runs after loading the
    reference and chunking), one script after another; each chunk is a batch-1 ``sample``
    on F5's thread pool. ``infer_process`` itself cannot be called here: it loads the
    reference with ``torchaudio.load``, which needs FFmpeg through torchcodec.
(b) ``engine``: voicebatch's engine, every chunk of every script in shared batches of at
    most B items (B = 1, 8, 32).

Both use the same model object and weights, the same chunks (the demo scripts split by
voicebatch) and NFE. Each configuration runs in its own process so the peak memory is its
own; a two-chunk warm-up runs before the clock starts. ``--full`` builds the full-size
F5TTS_v1_Base architecture and Vocos with random weights: the compute is the same as the
released model's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def prepare_inputs(voices_dir: Path):
    from voicebatch.scripts import load_scripts
    from voicebatch.vocab import load_vocabulary
    from voicebatch.voices import prepare_voices

    voices, _ = prepare_voices(voices_dir, vocab=load_vocabulary())
    scripts, problems = load_scripts(ROOT / "include" / "scripts", set(voices), load_vocabulary())
    if problems:
        raise SystemExit(f"demo scripts have problems: {problems[0]}")
    return voices, scripts


def run_one(args: argparse.Namespace) -> dict:
    import torch

    from voicebatch.synthesis.engine import Engine, Reference, SynthesisParams
    from voicebatch.synthesis.jobs import plan_requests
    from voicebatch.synthesis.models import load_model_files

    voices, scripts = prepare_inputs(Path(args.voices))
    limit = args.chunks
    files = load_model_files(Path(args.model_dir))
    engine = Engine(files, device=args.device).load()
    params = SynthesisParams(nfe_steps=args.nfe)
    planned = plan_requests(scripts, voices, params, files.checksum, seed=0)
    # The first `limit` chunks, kept grouped by script (F5 runs script after script).
    jobs, taken = [], 0
    for script, _, requests in planned:
        if taken >= limit:
            break
        jobs.append((script, requests[: limit - taken]))
        taken += len(jobs[-1][1])
    references = {n: Reference(n, v.samples, v.text) for n, v in voices.items()}
    warm = jobs[0][1][:2]
    cuda = engine.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    if args.mode == "f5":
        from f5_tts.infer.utils_infer import infer_batch_process

        def f5_script(voice: str, texts: list[str], speed: float, seed: int) -> float:
            ref = torch.from_numpy(voices[voice].samples)[None]
            torch.manual_seed(seed)
            _, _, mel = next(
                infer_batch_process(
                    (ref, 24_000),
                    voices[voice].text,
                    texts,
                    engine.model,
                    engine.vocoder,
                    progress=None,
                    nfe_step=args.nfe,
                    speed=speed,
                    device=engine.device,
                )
            )
            # Generated mel frames: the same measure as the engine's (chunk audio before joining).
            return mel.shape[1] * 256 / 24_000

        f5_script(warm[0].voice, [r.text for r in warm], warm[0].speed, 0)
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        audio = 0.0
        for _script, requests in jobs:
            # F5 speaks one voice at one speed per call: split scripts into such runs.
            runs: list[tuple[str, float, list[str]]] = []
            for r in requests:
                if runs and runs[-1][:2] == (r.voice, r.speed):
                    runs[-1][2].append(r.text)
                else:
                    runs.append((r.voice, r.speed, [r.text]))
            for voice, speed, texts in runs:
                audio += f5_script(voice, texts, speed, 0)
        sync()
        wall = time.perf_counter() - started
    else:
        every = [r for _, requests in jobs for r in requests]
        engine.synthesize(references, warm, params, max_batch=args.batch)
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        out = engine.synthesize(references, every, params, batch_frames=10**9, max_batch=args.batch)
        # (max_batch given explicitly: the CPU default of 1 is what this benchmark measures against)
        sync()
        wall = time.perf_counter() - started
        audio = sum(a.samples.shape[0] for a in out) / 24_000
    return {
        "mode": args.mode,
        "batch": args.batch if args.mode == "engine" else 1,
        "chunks": taken,
        "audio_s": round(audio, 2),
        "wall_s": round(wall, 2),
        "rtf": round(wall / audio, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "gpu_max_alloc_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "device": engine.device,
        "model": files.name,
        "nfe": args.nfe,
        "machine": machine(engine.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="F5TTS_v1_Base architecture (random weights)")
    parser.add_argument("--nfe", type=int, default=32)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--write", type=Path, help="append the results table to this Markdown file")
    parser.add_argument("--mode", choices=("f5", "engine"), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--voices", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # a child process: one configuration
        print(json.dumps(run_one(args)))
        return

    from voicebatch.synthesis.tiny import FULL_VOCOS, build_random_model, build_tiny_model, v1_base_arch

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, voices_dir = Path(tmp) / "model", Path(tmp) / "voices"
        if args.full:
            build_random_model(model_dir, v1_base_arch(), FULL_VOCOS, "F5TTS_v1_Base-architecture-random")
        else:
            build_tiny_model(model_dir)
        subprocess.run(
            [sys.executable, str(ROOT / "include" / "build_demo_voices.py"), "--out", str(voices_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        configs = [("f5", 1)] + [("engine", int(b)) for b in args.batches.split(",")]
        results = []
        for mode, batch in configs:
            command = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--batch",
                str(batch),
                "--device",
                args.device,
                "--nfe",
                str(args.nfe),
                "--chunks",
                str(args.chunks),
                "--model-dir",
                str(model_dir),
                "--voices",
                str(voices_dir),
            ]
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode != 0:
                raise SystemExit(f"{mode} batch {batch} failed:\n{child.stderr[-3000:]}")
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    table = render(results)
    print(table)
    if args.write:
        with args.write.open("a", encoding="utf-8") as f:
            f.write(table)


def render(results: list[dict]) -> str:
    base = results[0]["wall_s"]
    first = results[0]
    lines = [
        f"\n### {first['model']} on {first['device']}, NFE {first['nfe']}, {first['chunks']} chunks "
        f"({time.strftime('%Y-%m-%d')})\n",
        f"Machine: {first['machine']}\n",
        "| run | batch | audio s | wall s | RTF | speed-up vs F5 | peak RSS MB | GPU max alloc MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        name = "F5 infer_batch_process" if r["mode"] == "f5" else "voicebatch engine"
        lines.append(
            f"| {name} | {r['batch']} | {r['audio_s']} | {r['wall_s']} | {r['rtf']} | {base / r['wall_s']:.2f}x "
            f"| {r['peak_rss_mb']} | {r['gpu_max_alloc_mb'] if r['gpu_max_alloc_mb'] is not None else '-'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
