"""The run report: ``report.json`` and a self-contained ``report.html``.

Built from what was published (manifests, audio, subtitles, timing tables) plus the
outcome of every script and voice, so it can be made by a separate task on any machine.
Links are presigned GET URLs: listeners need no credentials and see no raw bucket URL.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from voicebatch.names import key_segment
from voicebatch.publish import json_bytes
from voicebatch.storage import PRESIGN_SECONDS, Storage, retrying

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_NOTICE = "random weights: noise, not a voice"


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    script_id: str
    status: str  # "published" | "skipped" (already published) | "failed" | "held" (unverified, held back)
    output_hash: str | None = None
    manifest_key: str | None = None
    error: str | None = None
    quarantined: tuple[dict, ...] = ()  # chunks that never passed verification, each with its takes


@dataclass(frozen=True, slots=True)
class VoiceOutcome:
    voice: str
    status: str  # "ok" | "error"
    reason: str | None = None
    clip_hash: str | None = None
    start: float | None = None
    end: float | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StageFailure:
    """A stage of the run that failed or never finished, and its error."""

    stage: str  # list_voices | plan | synthesize | publish
    part: str | None  # which synthesize task (its batch spec)
    error: str

    @property
    def name(self) -> str:
        return f"{self.stage}[{self.part}]" if self.part else self.stage


@dataclass(frozen=True, slots=True)
class _Extras:
    waveform_png: bytes | None = field(default=None, repr=False)
    subtitles: str | None = None


def report_prefix(dag_id: str, run_id: str) -> str:
    return f"runs/{dag_id}/{key_segment(run_id)}/"


def build_report(
    storage: Storage,
    *,
    dag_id: str,
    run_id: str,
    model: dict,
    scripts: Sequence[ScriptOutcome],
    voices: Sequence[VoiceOutcome],
    started_at: str | None = None,
    expires: int = PRESIGN_SECONDS,
    stages: Sequence[StageFailure] = (),
    rejected: Sequence[str] = (),
) -> tuple[dict, str]:
    """(report.json document, report.html text). ``stages`` are the stages that failed (the
    run failed); ``rejected`` the inputs refused before reading (one line each)."""
    rows, extras = [], {}
    audio_seconds = synthesis_seconds = 0.0
    for outcome in scripts:
        row = {**asdict(outcome), "duration": None, "rtf": None, "keys": [], "links": {}, "qa": None}
        row["quarantined"] = [_take_links(storage, c, expires) for c in outcome.quarantined]
        if outcome.manifest_key and outcome.status in ("published", "skipped"):
            manifest = json.loads(retrying(lambda k=outcome.manifest_key: storage.get_bytes(k)))
            row["keys"] = [o["key"] for o in manifest["outputs"]] + [outcome.manifest_key]
            row["links"] = {k.rsplit("/", 1)[1]: storage.presign(k, expires) for k in row["keys"]}
            row["duration"] = manifest["durations"].get("audio_seconds")
            row["rtf"] = manifest["durations"].get("rtf")
            row["qa"] = manifest.get("qa")
            audio_seconds += row["duration"] or 0.0
            if outcome.status == "published":
                synthesis_seconds += manifest["durations"].get("synthesis_seconds") or 0.0
            extras[outcome.script_id] = _extras(storage, manifest)
        rows.append(row)
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    report = {
        "schema": "voicebatch.report/1",
        "dag_id": dag_id,
        "run_id": run_id,
        "model": model,
        "notice": RANDOM_WEIGHTS_NOTICE if model.get("random_weights") else None,
        "timings": {"started_at": started_at, "finished_at": finished},
        "status": "failed" if stages else "finished",
        "failed_stages": [{"stage": f.stage, "part": f.part, "error": f.error} for f in stages],
        "rejected_inputs": list(rejected),
        "totals": {
            "scripts": len(rows),
            **{s: sum(r["status"] == s for r in rows) for s in ("published", "skipped", "failed")},
            "voices_ok": sum(v.status == "ok" for v in voices),
            "voices_failed": sum(v.status != "ok" for v in voices),
            "audio_seconds": round(audio_seconds, 2),
            "synthesis_seconds": round(synthesis_seconds, 2),
            "stages_failed": len(stages),
            "inputs_rejected": len(rejected),
        },
        "qa": qa_totals(rows),
        "scripts": rows,
        "voices": [asdict(v) for v in voices],
    }
    report["totals"]["held"] = sum(r["status"] == "held" for r in rows)
    report["totals"]["quarantined_chunks"] = report["qa"]["quarantined"]
    return report, render_html(report, extras)


def qa_totals(rows: Sequence[dict]) -> dict:
    """Pass rate, re-takes and quarantine over the run's verified scripts."""
    sections = [r["qa"] for r in rows if r.get("qa")]
    held = [r for r in rows if r["status"] == "held"]
    checked = sum(q["passed"] + q["quarantined"] for q in sections) + sum(len(r["quarantined"]) for r in held)
    passed = sum(q["passed"] for q in sections)
    quarantined = sum(q["quarantined"] for q in sections) + sum(len(r["quarantined"]) for r in held)
    return {
        "chunks": sum(q["chunks"] for q in sections),
        "checked": checked,
        "passed": passed,
        "quarantined": quarantined,
        "not_checked": sum(q["not_checked"] for q in sections),
        "pass_rate": round(passed / checked, 4) if checked else None,
        "retakes": sum(q["retakes"] for q in sections),
        "needs_review": sorted(r["script_id"] for r in rows if (r.get("qa") or {}).get("needs_review")),
        "held": sorted(r["script_id"] for r in held),
        "notes": sorted({n for q in sections for n in q.get("notes", [])}),
        "modes": sorted({q["settings"].get("effective_mode") or q["settings"]["mode"] for q in sections}),
    }


def _take_links(storage: Storage, chunk: dict, expires: int) -> dict:
    takes = [
        {**t, "link": storage.presign(t["audio_key"], expires) if t.get("audio_key") else None} for t in chunk["takes"]
    ]
    return {**chunk, "takes": takes}


def publish_report(storage: Storage, report: dict, page: str) -> tuple[str, str]:
    prefix = report_prefix(report["dag_id"], report["run_id"])
    retrying(lambda: storage.put_bytes(prefix + "report.html", page.encode("utf-8"), "text/html; charset=utf-8"))
    retrying(lambda: storage.put_bytes(prefix + "report.json", json_bytes(report), "application/json"))
    return prefix + "report.json", prefix + "report.html"


def _extras(storage: Storage, manifest: dict) -> _Extras:
    import soundfile as sf

    outputs = {o["key"].rsplit(".", 1)[1]: o["key"] for o in manifest["outputs"]}
    audio_key = next(k for ext, k in outputs.items() if ext in ("wav", "flac", "mp3"))
    samples, rate = sf.read(io.BytesIO(storage.get_bytes(audio_key)), dtype="float32", always_2d=True)
    boundaries = _sentence_ends(storage.get_bytes(outputs["csv"]).decode("utf-8")) if "csv" in outputs else []
    subtitles = storage.get_bytes(outputs["vtt"]).decode("utf-8") if "vtt" in outputs else None
    return _Extras(waveform_png(samples[:, 0], rate, boundaries, manifest["script_id"]), subtitles)


def _sentence_ends(table: str) -> list[float]:
    import csv

    # end_s since the CSV schema of issue 10; end before it.
    return [float(r.get("end_s") or r["end"]) for r in csv.DictReader(io.StringIO(table)) if r["level"] == "sentence"]


def waveform_png(samples: np.ndarray, rate: int, boundaries: Sequence[float], title: str) -> bytes:
    """The waveform with a line at every sentence boundary (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    step = max(1, samples.shape[0] // 4000)  # an envelope is enough for a picture
    times = np.arange(0, samples.shape[0], step) / rate
    figure, axes = plt.subplots(figsize=(9, 1.8), dpi=100)
    try:
        axes.plot(times, samples[::step], linewidth=0.6, color="#1f5f8b")
        for t in boundaries[:-1]:
            axes.axvline(t, color="#d1495b", linewidth=0.8)
        axes.set_xlim(0, samples.shape[0] / rate)
        axes.set_ylim(-1, 1)
        axes.set_yticks([])
        axes.set_xlabel("seconds")
        axes.set_title(title, fontsize=9, loc="left")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()


_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.notice{background:#fde2e4;border:2px solid #d1495b;padding:.8rem;font-weight:bold}
section.script{border-top:1px solid #ddd;margin-top:1.5rem;padding-top:1rem}
pre{background:#f6f6f6;padding:.6rem;max-height:14rem;overflow:auto;font-size:.8rem}
img{max-width:100%}.failed{color:#b00020}.review{background:#fff4d6;border:2px solid #e0a400;padding:.8rem}
del{background:#fde2e4}ins{background:#d9f2d9;text-decoration:none}"""


def _qa_html(report: dict) -> list[str]:
    """The QA section: pass rate, re-takes, and each quarantined chunk with a player per take
    and the diff of its transcript against the text."""
    e = html.escape
    qa = report.get("qa") or {}
    if not qa.get("checked") and not qa.get("not_checked"):
        return []
    rate = "–" if qa.get("pass_rate") is None else f"{qa['pass_rate']:.0%}"
    parts = [
        "<h2>Verification</h2>",
        f"<p id='qa-summary'>{qa['passed']} of {qa['checked']} checked chunks passed ({rate}); "
        f"{qa['retakes']} re-takes; {qa['quarantined']} quarantined; {qa['not_checked']} not checked "
        f"(mode: {e(', '.join(qa.get('modes', [])) or 'off')}).</p>",
    ]
    for note in qa.get("notes", []):
        parts.append(f"<p class='notice qa-note'>{e(note)}</p>")
    if qa.get("needs_review"):
        parts.append(
            "<p class='review' id='needs-review'>Published but marked <b>needs_review</b> (a chunk never passed): "
            + ", ".join(f"<code>{e(s)}</code>" for s in qa["needs_review"])
            + "</p>"
        )
    if qa.get("held"):
        parts.append(
            "<p class='notice' id='held'>Held back, not published (publish_unverified is off): "
            + ", ".join(f"<code>{e(s)}</code>" for s in qa["held"])
            + "</p>"
        )
    chunks = [(s["script_id"], c) for s in report["scripts"] for c in s.get("quarantined") or []]
    if chunks:
        parts.append("<table id='quarantine'><tr><th>script</th><th>chunk</th><th>takes</th></tr>")
        for script_id, chunk in chunks:
            cells = []
            for take in chunk["takes"]:
                kept = " (kept)" if take["take"] == chunk["kept_take"] else ""
                player = f"<audio controls preload='none' src='{e(take['link'])}'></audio>" if take.get("link") else ""
                cer = "–" if take.get("cer") is None else f"{take['cer']:.2f}"
                reasons = "; ".join(take.get("reasons") or [])
                cells.append(
                    f"<div class='take'><b>take {take['take']}{kept}</b> seed {take['seed']}, CER {cer} "
                    f"{player}<br>{_diff_html(take.get('diff') or [], take.get('transcript'))}"
                    f"<br><small>{e(reasons)}</small></div>"
                )
            text = f"#{chunk['index']}: {e(chunk['text'])}"
            parts.append(f"<tr><td>{e(script_id)}</td><td>{text}</td><td>{''.join(cells)}</td></tr>")
        parts.append("</table>")
    return parts


def _diff_html(diff: Sequence[Sequence[str]], transcript: str | None) -> str:
    """What the recogniser heard, word errors marked: <del> text it missed, <ins> what it heard instead."""
    e = html.escape
    if transcript is None:
        return "<i>no transcript (content not checked)</i>"
    marks = []
    for op, expected, heard in diff:
        if op in ("delete", "substitute") and expected:
            marks.append(f"<del>{e(expected)}</del>")
        if op in ("insert", "substitute") and heard:
            marks.append(f"<ins>{e(heard)}</ins>")
    heard_text = e(transcript) if transcript else "<i>(nothing recognised)</i>"
    return f"heard: “{heard_text}”" + (f" — errors: {' '.join(marks)}" if marks else "")


def render_html(report: dict, extras: dict[str, _Extras]) -> str:
    e = html.escape
    totals = report["totals"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>voicebatch run {e(report['run_id'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>voicebatch run report</h1><p>DAG <code>{e(report['dag_id'])}</code>, run "
        f"<code>{e(report['run_id'])}</code>, model <code>{e(report['model'].get('name', 'not resolved'))}</code></p>",
    ]
    for failure in report.get("failed_stages", []):
        name = failure["stage"] + (f"[{failure['part']}]" if failure.get("part") else "")
        parts.append(
            f"<p class='notice run-failed'>Run failed: stage <code>{e(name)}</code>: {e(failure['error'])}</p>"
        )
    if report.get("notice"):
        parts.append(f"<p class='notice' id='notice'>Model with {e(report['notice'])}.</p>")
    parts.append(
        f"<p>{totals['scripts']} scripts: {totals['published']} published, {totals['skipped']} already published, "
        f"{totals['failed']} failed, {totals.get('held', 0)} held back; "
        f"{totals['voices_ok']} voices ok, {totals['voices_failed']} failed; "
        f"{totals['audio_seconds']} s of audio.</p>"
    )
    parts += _qa_html(report)
    failures = [(s["script_id"], s["error"]) for s in report["scripts"] if s["status"] == "failed"]
    failures += [(f"voice {v['voice']}", v["reason"]) for v in report["voices"] if v["status"] != "ok"]
    failures += [("refused input", line) for line in report.get("rejected_inputs", [])]
    if failures:
        parts.append("<h2>Failures</h2><table id='failures'><tr><th>what</th><th>error</th></tr>")
        parts += [f"<tr><td>{e(w)}</td><td class='failed'>{e(r or '')}</td></tr>" for w, r in failures]
        parts.append("</table>")
    for script in report["scripts"]:
        if script["status"] in ("failed", "held"):
            continue
        extra = extras.get(script["script_id"], _Extras())
        links = script["links"]
        audio = next((u for n, u in links.items() if n.rsplit(".", 1)[-1] in ("wav", "flac", "mp3")), None)
        parts.append(f"<section class='script' id='script-{e(script['script_id'])}'><h2>{e(script['script_id'])}</h2>")
        parts.append(f"<p>{e(script['status'])}, {script['duration']} s, RTF {script['rtf']}</p>")
        if audio:
            parts.append(f"<audio controls preload='none' src='{e(audio)}'></audio>")
        if extra.waveform_png:
            data = base64.b64encode(extra.waveform_png).decode("ascii")
            parts.append(f"<img alt='waveform of {e(script['script_id'])}' src='data:image/png;base64,{data}'>")
        parts.append("<p>" + " · ".join(f"<a href='{e(u)}'>{e(n)}</a>" for n, u in links.items()) + "</p>")
        if extra.subtitles:
            parts.append(f"<details><summary>subtitles</summary><pre>{e(extra.subtitles)}</pre></details>")
        parts.append("</section>")
    parts.append("<h2>Voices</h2><table id='voices'><tr><th>voice</th><th>status</th><th>clip</th><th>reason</th></tr>")
    for v in report["voices"]:
        clip = f"{v['start']:.2f}–{v['end']:.2f} s" if v.get("start") is not None else ""
        parts.append(
            f"<tr><td>{e(v['voice'])}</td><td>{e(v['status'])}</td><td>{clip}</td><td>{e(v['reason'] or '')}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts)
