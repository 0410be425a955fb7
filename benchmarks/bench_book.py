"""A long book through the pipeline's stages: peak memory and time against the book's length.

    python benchmarks/bench_book.py --hours 0.25 1 2 [--repeat 1]

Each run is a fresh process that writes an EPUB 3 of about the given length (chapters of about
20 minutes, paragraphs of 6-22 word sentences) into a scripts folder, and runs the stages as
the DAG's tasks call them (``voicebatch.run.runs``: list and ingest the voice, plan, synthesize
every batch spec, publish) on local storage. Synthesis is a stand-in engine (no model): each
chunk is a slice of a speech-like signal as long as F5 would make its text, staged as the real
task stages it. Publishing is the real book path (``run_books.publish_book``): chunks read back
one at a time, joined per chapter, mastered to ``acx`` (limiter, room tone, 44.1 kHz), MP3s,
the ACX check on each, the M4B and the read-along EPUB 3.

Reported per run: audio hours, chapters, chunks; plan, synthesize (the stand-in: staging
only) and publish wall seconds; *base* RSS after imports, and the process's peak RSS
(``ru_maxrss``) after each stage. The machine's load average is printed with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_longform import book_text, machine, speechlike

RATE = 24_000
CHAPTER_SECONDS = 20 * 60


def write_epub(path: Path, hours: float, pace: float) -> int:
    """An EPUB 3 of about ``hours`` of narration; returns its chapter count."""
    import re

    sentences = re.findall(r"[^.]+\.", book_text(hours, pace))
    per_chapter = max(1, round(len(sentences) * CHAPTER_SECONDS / (hours * 3600)))
    chapters = [sentences[i : i + per_chapter] for i in range(0, len(sentences), per_chapter)]
    page = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" '
        'xml:lang="en"><head><title>{title}</title></head><body>{body}</body></html>\n'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
            "</container>",
        )
        items, spine, links = [], [], []
        for n, chapter in enumerate(chapters, start=1):
            paragraphs = ["<p>" + " ".join(chapter[i : i + 5]) + "</p>" for i in range(0, len(chapter), 5)]
            title = f"Chapter {n}"
            zf.writestr(f"c{n}.xhtml", page.format(title=title, body=f"<h1>{title}</h1>" + "".join(paragraphs)))
            items.append(f'<item id="c{n}" href="c{n}.xhtml" media-type="application/xhtml+xml"/>')
            spine.append(f'<itemref idref="c{n}"/>')
            links.append(f'<li><a href="c{n}.xhtml">{title}</a></li>')
        zf.writestr(
            "nav.xhtml",
            page.format(
                title="Contents",
                body=f'<nav xmlns:epub="http://www.idpf.org/2007/ops" epub:type="toc"><ol>{"".join(links)}</ol></nav>',
            ),
        )
        zf.writestr(
            "content.opf",
            '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
            'unique-identifier="uid"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:identifier id="uid">urn:uuid:00000000-0000-4000-8000-000000000001</dc:identifier>'
            "<dc:title>The Long Book</dc:title><dc:creator>Ada Example</dc:creator><dc:language>en</dc:language>"
            '<meta property="dcterms:modified">2026-01-01T00:00:00Z</meta></metadata><manifest>'
            '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
            f"{''.join(items)}</manifest><spine>{''.join(spine)}</spine></package>",
        )
    return len(chapters)


class StandIn:
    """Chunk audio as long as F5 would make it, from a speech-like signal (no model)."""

    def __init__(self, pace: float) -> None:
        from voicebatch.synthesis.models import ModelFiles

        self.device, self.pace = "cpu", pace
        self.source = speechlike(30.0)
        self.files = ModelFiles("synthetic", Path("/nonexistent"), {"random_weights": True}, "c" * 64, {})

    def synthesize(self, references, chunks, params, **_):  # type: ignore[no-untyped-def]
        import numpy as np

        from voicebatch.synthesis.engine import ChunkAudio

        out = []
        silence = np.zeros(round(0.25 * RATE), dtype=np.float32)
        for k, chunk in enumerate(chunks):
            n = round(len(chunk.text.encode()) / self.pace * RATE)
            start = (k * 7919) % (self.source.shape[0] - n) if n < self.source.shape[0] else 0
            body = np.resize(self.source[start:], n) * np.float32(0.5 + (k % 9) / 10)
            samples = np.concatenate([silence, body, silence])
            out.append(ChunkAudio(chunk.key, samples, samples.shape[0] // 256, np.zeros((1, 1), dtype=np.float32)))
        return out


def child(hours: float, workdir: Path) -> dict:
    import numpy as np  # noqa: F401  - what the path uses, loaded before the base RSS is taken
    import soundfile as sf
    import soxr  # noqa: F401

    from voicebatch.locations.storage import open_storage
    from voicebatch.run.config import RunConfig
    from voicebatch.run.ingest import ingest_voice, list_voice_names
    from voicebatch.run.layout import staging_prefix
    from voicebatch.run.pipeline import RunSettings
    from voicebatch.run.plan import plan_run
    from voicebatch.run.publish import publish_run
    from voicebatch.run.synthesize import synthesize_batch
    from voicebatch.verify.settings import VerifySettings

    text = "Hello, I am the test voice that reads long books at an easy pace."
    voices, scripts = workdir / "voices", workdir / "scripts"
    (voices / "anna").mkdir(parents=True)
    scripts.mkdir()
    sf.write(voices / "anna" / "take.wav", speechlike(4.5, seed=3), RATE)
    (voices / "anna" / "take.srt").write_text(f"1\n00:00:00,100 --> 00:00:04,400\n{text}\n")
    pace = len(text.encode()) / 4.3  # F5's rule: bytes a second of the reference
    chapters = write_epub(scripts / "long-book.epub", hours, pace)
    settings = RunSettings(verify=VerifySettings(mode="off"))
    config = RunConfig(str(voices), str(scripts), settings)
    out = open_storage(str(workdir / "out"))
    staging = staging_prefix("bench")
    engine = StandIn(pace)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    load = os.getloadavg()[0]
    peaks, times = {}, {}

    def stage(name: str, function):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = function()
        times[name] = round(time.perf_counter() - started, 1)
        peaks[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        return result

    for name in list_voice_names(config, out, staging, open_storage):
        ingest_voice(name, config, out, staging, open_storage)
    planned = stage("plan", lambda: plan_run(config, out, staging, engine.files, open_storage, None))
    stage(
        "synthesize",
        lambda: [synthesize_batch(k, out, staging, engine) for k in planned["batches"]],
    )
    published = stage("publish", lambda: publish_run(out, staging, settings, {"dag_id": "bench", "run_id": "bench"}))
    assert published["published"] == 1, published
    (manifest_key,) = [k for k in out.list("audio/long-book/") if k.endswith("/manifest.json")]
    manifest = json.loads(out.get_bytes(manifest_key))
    return {
        "hours": hours,
        "audio_hours": round(manifest["durations"]["audio_seconds"] / 3600, 3),
        "chapters": chapters,
        "chunks": planned["chunks"],
        "plan_s": times["plan"],
        "synthesize_s": times["synthesize"],
        "publish_s": times["publish"],
        "base_rss_mb": base,
        "peak_rss_mb": peaks,
        "acx_passed": manifest["acx"]["passed"],
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, nargs="+", default=[0.25, 1.0, 2.0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.workdir)))
        return
    print(f"machine: {machine()}", flush=True)
    header = (
        "| audio h | chapters | chunks | plan s | synthesize s | publish s | base RSS MB "
        "| peak RSS MB after plan / synthesize / publish | ACX | load |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1), flush=True)
    for hours in args.hours:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
                env = {**os.environ, "TMPDIR": tmp}
                command = [sys.executable, __file__, "--child", str(hours), "--workdir", tmp]
                result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                if result.returncode:
                    raise SystemExit(f"run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
                r = json.loads(result.stdout.strip().splitlines()[-1])
            p = r["peak_rss_mb"]
            print(
                f"| {r['audio_hours']} | {r['chapters']} | {r['chunks']} | {r['plan_s']} | {r['synthesize_s']} "
                f"| {r['publish_s']} | {r['base_rss_mb']} | {p['plan']} / {p['synthesize']} / {p['publish']} "
                f"| {'pass' if r['acx_passed'] else 'FAIL'} | {r['load'][0]} → {r['load'][1]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
