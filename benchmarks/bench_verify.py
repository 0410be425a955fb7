"""Synthesis alone vs synthesis + verification, on the same chunks.

    python benchmarks/bench_verify.py --chunks 16 --nfe 32 [--device cpu] [--write benchmarks/RESULTS.md]

The engine speaks the first N chunks of the demo scripts (the English ones: pocketsphinx
checks English) with the given model (default: the tiny random model, built on the fly),
then ``verify_chunks`` checks every take (silero-vad signal checks, pocketsphinx content
check, forced alignment of passing takes). A model with random weights gets no re-takes,
so its row measures one check per chunk, on noise. The third row checks real speech
(the same chunk texts spoken by espeak-ng at the voice's rate): the cost per chunk when
takes pass and are aligned. Wall times are medians of ``--repeat`` runs in one process,
after a warm-up (models loaded).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_synthesis import machine, prepare_inputs  # noqa: E402  (sibling script, read-only)


def espeak(text: str, wpm: int):
    import io

    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "-s", str(wpm), "--stdout", text], capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, rate, 24_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--nfe", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-dir", type=Path, help="a model directory (default: build the tiny random model)")
    parser.add_argument("--voices", type=Path, help="demo voices (default: build them)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()

    import numpy as np

    from voicebatch.synthesis.engine import ChunkAudio, Engine, Reference, SynthesisParams
    from voicebatch.synthesis.jobs import plan_requests
    from voicebatch.synthesis.models import load_model_files
    from voicebatch.synthesis.tiny import build_tiny_model
    from voicebatch.verify import VerifySettings, build_verifier
    from voicebatch.verify.takes import verify_chunks
    from voicebatch.verify.text import guess_language

    with tempfile.TemporaryDirectory() as tmp:
        files = load_model_files(args.model_dir) if args.model_dir else build_tiny_model(Path(tmp, "tiny"))
        voices_dir = args.voices
        if voices_dir is None:
            voices_dir = Path(tmp, "voices")
            subprocess.run(
                [sys.executable, str(ROOT / "include" / "build_demo_voices.py"), "--out", str(voices_dir)],
                check=True,
                capture_output=True,
            )
        voices, scripts = prepare_inputs(voices_dir)
        params = SynthesisParams(nfe_steps=args.nfe)
        planned = plan_requests(scripts, voices, params, files.checksum, seed=0)
        requests = [r for _, _, rs in planned for r in rs if guess_language(r.text) == "en"][: args.chunks]
        references = {n: Reference(n, v.samples, v.text) for n, v in voices.items()}
        engine = Engine(files, device=args.device).load()
        verifier = build_verifier(VerifySettings(max_takes=3))

        def synthesize() -> list:
            return engine.synthesize(references, requests, params)

        def synthesize_and_verify() -> list:
            audio = engine.synthesize(references, requests, params)
            return verify_chunks(
                engine,
                references,
                requests,
                params,
                audio,
                verifier,
                max_takes=3,
                random_weights=files.random_weights,
            )

        rates = {n: len(v.text.encode()) / v.duration for n, v in voices.items()}
        spoken = []
        for r in requests:
            wpm = int(max(80, min(260, 160 * rates[r.voice] / 14.6 * r.speed)))  # espeak at the voice's rate
            samples = espeak(r.text, wpm).astype(np.float32)
            frames = samples.size // 256
            spoken.append(ChunkAudio(r.key, samples[: frames * 256], frames, np.zeros((100, frames), np.float32)))

        def verify_speech() -> list:
            return verify_chunks(
                engine, references, requests, params, spoken, verifier, max_takes=1, random_weights=False
            )

        synthesize_and_verify()  # warm-up: models loaded, caches filled
        verify_speech()
        rows = []
        audio_seconds = sum(a.samples.size for a in synthesize()) / 24_000
        speech_seconds = sum(a.samples.size for a in spoken) / 24_000
        outcome = {}
        for label, run, seconds in (
            ("synthesis only", synthesize, audio_seconds),
            ("synthesis + verify (asr, max_takes 3)", synthesize_and_verify, audio_seconds),
            ("verify only, espeak-ng speech of the same texts", verify_speech, speech_seconds),
        ):
            walls = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = run()
                walls.append(time.perf_counter() - started)
            wall = statistics.median(walls)
            if label != "synthesis only":
                outcome[label] = {
                    s: sum(c.status == s for c in result) for s in ("passed", "quarantined", "not_checked")
                }
                outcome[label]["retakes"] = sum(len(c.takes) - 1 for c in result)
            rows.append((label, round(seconds, 1), round(wall, 2), round(wall / seconds, 4)))
            print(rows[-1], outcome.get(label), flush=True)
        base = rows[0][2]
        lines = [
            f"### {files.name} on {args.device}, NFE {args.nfe}, {len(requests)} chunks ({time.strftime('%Y-%m-%d')})",
            "",
            f"Machine: {machine(args.device)}.",
            "",
            "| run | audio s | wall s | RTF | vs synthesis only | chunks passed / quarantined / re-takes |",
            "|---|---|---|---|---|---|",
        ]
        for label, seconds, wall, rtf in rows:
            o = outcome.get(label)
            result = f"{o['passed']} / {o['quarantined']} / {o['retakes']}" if o else "-"
            lines.append(f"| {label} | {seconds} | {wall} | {rtf} | {wall / base:.2f}x | {result} |")
        table = "\n".join(lines) + "\n"
        print(table)
        if args.write:
            with args.write.open("a") as handle:
                handle.write("\n" + table)


if __name__ == "__main__":
    main()
