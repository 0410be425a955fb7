"""Long-form assembly and rendering: peak memory and time for 1 hour vs 10 hours.

    python benchmarks/bench_longform.py --hours 1 10 --repeat 2 [--format wav] [--before REF --before-hours 0.1 0.25]

Each run is a fresh process that plans a script of the given length (a book's worth of
sentences, chunked by F5's rule for a 4-second reference) and publishes it through the real
path, ``pipeline.publish_script_outputs`` to local storage: the chunk audio comes from a
generator (synthetic, no model: slices of a speech-like 30-second signal, each chunk as long
as F5 would make its text, at its own level, with silent margins to trim), is joined to disk
while its loudness and true peak are measured, rendered block by block to the published WAV
(-16 LUFS, -1 dBTP), and uploaded with its subtitles, timing table and manifest.

Reported per run: audio hours, chunks, words; *assembly* (joining to disk and measuring),
*render* (gain, encoding, output loudness, subtitles and CSV), *publish* (upload and
manifest) in wall seconds; *base* RSS after imports and planning, *peak* RSS of the process
(``ru_maxrss``). ``--before REF`` runs the same workload on an older checkout (``git archive
REF``), whose ``assemble`` re-concatenated the output for every chunk and rendered in memory.
The machine's load average is printed with every run: the figures are wall times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 24_000
PROSE = (
    "the quiet river carried every small boat past the old mill and far beyond the hills where "
    "nobody had walked since the long winter began and the lamps in the village went dark"
)


def book_text(hours: float, pace: float) -> str:
    """About ``hours`` of narration at ``pace`` characters a second, sentences of 6-22 words."""
    words = PROSE.split()
    parts, size, n = [], 0, 0
    while size < hours * 3600 * pace:
        sentence = " ".join(words[(n * 7 + i) % len(words)] for i in range(6 + n % 17)).capitalize() + "."
        parts.append(sentence)
        size += len(sentence) + 1
        n += 1
    return " ".join(parts)


def speechlike(seconds: float, seed: int = 11):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2  # ~8 syllables a second
    voiced = 0.6 * np.sin(2 * np.pi * 140 * t) + 0.3 * np.sin(2 * np.pi * 280 * t)
    return ((voiced + 0.2 * rng.standard_normal(t.shape[0])) * syllables * 0.2).astype(np.float32)


def child(hours: float, audio_format: str, workdir: Path) -> dict:
    """One measured run, in this (fresh) process."""
    import numpy as np
    import pandas  # noqa: F401  - every library the path uses, loaded before the base RSS is taken
    import pyloudnorm  # noqa: F401
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    import voicebatch.run.pipeline as pipeline
    from voicebatch.inputs.scripts import Script, ScriptPart
    from voicebatch.inputs.voices import PreparedVoice
    from voicebatch.locations.storage import open_storage
    from voicebatch.render.outputs import OutputOptions
    from voicebatch.run.pipeline import RunSettings, plan_scripts, publish_script_outputs
    from voicebatch.synthesis.models import ModelFiles

    # A 4-second reference speaking 15 characters a second: F5's rule makes 18-second chunks.
    text = "Hello, I am the test voice that reads long books at an easy pace."
    voice = PreparedVoice("anna", speechlike(4.0, seed=3), text[:60], "clip", {"window": {}})
    pace = len(voice.text.encode()) / voice.duration  # F5's rule: bytes a second of the reference
    model = ModelFiles("synthetic", workdir, {"random_weights": True}, "c" * 64, {"m": {"sha256": "a" * 64}})
    settings = RunSettings(options=OutputOptions(audio_format=audio_format))
    script = Script("book", "book.txt", (ScriptPart("anna", book_text(hours, pace)),))
    (plan,) = plan_scripts([script], {"anna": voice}, model.checksum, settings)
    source = speechlike(30.0)
    silence = np.zeros(round(0.25 * RATE), dtype=np.float32)

    def chunk_audio():
        for k, chunk in enumerate(plan.chunks):
            n = round(len(chunk.text.encode()) / pace * RATE)
            start = (k * 7919) % (source.shape[0] - n) if n < source.shape[0] else 0
            body = np.resize(source[start:], n) * (0.5 + (k % 9) / 10)
            yield np.concatenate([silence, body, silence])

    phases: dict[str, float] = {}
    peaks: dict[str, int] = {}

    def timed(name: str, function):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
                peaks[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

        return run

    # The phases of the real path, timed where publish_script_outputs calls them.
    for name in ("assemble_to_file", "render_files", "assemble", "render_outputs"):
        if hasattr(pipeline, name):
            setattr(pipeline, name, timed(name, getattr(pipeline, name)))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()[0]
    out = open_storage(str(workdir / "out"))
    started = time.perf_counter()
    published = publish_script_outputs(out, plan, chunk_audio(), {"anna": voice}, model.lineage(), settings)
    total = time.perf_counter() - started
    manifest = json.loads(out.get_bytes(published.manifest_key))
    assembly = phases.get("assemble_to_file", phases.get("assemble", 0.0))
    render = phases.get("render_files", phases.get("render_outputs", 0.0))
    return {
        "hours": hours,
        "audio_hours": round(manifest["durations"]["audio_seconds"] / 3600, 3),
        "chunks": len(plan.chunks),
        "words": len(script.parts[0].text.split()),
        "assembly_s": round(assembly, 1),
        "render_s": round(render, 1),
        "publish_s": round(total - assembly - render, 1),
        "total_s": round(total, 1),
        "base_rss_mb": base // 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "loudness": manifest["loudness"],
        "peak_rss_mb_after": peaks,
    }


def run_one(hours: float, audio_format: str, src: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-longform-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(src), "TMPDIR": tmp}
        command = [sys.executable, __file__, "--child", str(hours), "--format", audio_format, "--workdir", tmp]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode:
            raise SystemExit(f"run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def older_tree(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--format", default="wav", choices=["wav", "flac", "mp3"])
    parser.add_argument("--before", help="a git ref to run the same workload on (e.g. one before linear joining)")
    parser.add_argument("--before-hours", type=float, nargs="+", default=[0.1, 0.25])
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.format, args.workdir)))
        return

    print(f"machine: {machine()}; format {args.format}", flush=True)
    header = (
        "| code | audio h | chunks | words | assembly s | render s | publish s | total s "
        "| base RSS MB | peak RSS MB | load |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    rows: dict[tuple[str, float], list[dict]] = {}
    plans = [("after", ROOT / "src", h) for h in args.hours]
    with tempfile.TemporaryDirectory(prefix="bench-before-") as old:
        if args.before:
            source = older_tree(args.before, Path(old))
            plans = [(f"before ({args.before[:10]})", source, h) for h in args.before_hours] + plans
        for _ in range(args.repeat):
            for label, src, hours in plans:
                r = run_one(hours, args.format, src)
                rows.setdefault((label, hours), []).append(r)
                print(
                    f"| {label} | {r['audio_hours']} | {r['chunks']} | {r['words']} | {r['assembly_s']} | "
                    f"{r['render_s']} | {r['publish_s']} | {r['total_s']} | {r['base_rss_mb']} | {r['peak_rss_mb']} | "
                    f"{r['load_before']}→{r['load_after']} |",
                    flush=True,
                )
    if len(args.hours) > 1:
        short, long = rows[("after", min(args.hours))], rows[("after", max(args.hours))]
        for key in ("peak_rss_mb", "assembly_s", "render_s", "total_s"):
            ratio = statistics.median(r[key] for r in long) / statistics.median(r[key] for r in short)
            print(f"{key}: {max(args.hours) / min(args.hours):g}x the length -> {ratio:.2f}x (medians)")


if __name__ == "__main__":
    main()
