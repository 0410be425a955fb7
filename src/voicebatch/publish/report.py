"""The run report: ``report.json`` and ``report.html``.

Built from what was published (manifests, audio, subtitles, timing tables) plus the
outcome of every script and voice, so it can be made by a separate task on any machine.

``report.html`` links every file relative to its own place in the output layout
(``runs/<dag_id>/<run>/report.html`` -> ``../../../audio/...``): the same page works served
by Airflow's API server (the voicebatch plugin streams the run's storage, so its links never
expire), from a local output folder, or behind any static host of the output root. Captions
and waveforms are inline (a WebVTT data URI per player, a small SVG), so nothing else is
fetched. For sharing outside Airflow, ``report.json`` carries presigned GET links and
``share_report`` writes ``report.shared.html`` with presigned links, both with a chosen expiry.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from urllib.parse import quote

from voicebatch.locations.names import key_segment
from voicebatch.locations.retry import retrying
from voicebatch.locations.storage import PRESIGN_SECONDS, Storage
from voicebatch.publish.publishing import json_bytes
from voicebatch.publish.report_acx import acx_summary
from voicebatch.publish.report_html import render_html

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
    text: str | None = None  # the reference clip's text
    reference_key: str | None = None  # the registered reference clip (voices/<voice>/<clip_hash>/reference.wav)


@dataclass(frozen=True, slots=True)
class StageFailure:
    """A stage of the run that failed or never finished, and its error."""

    stage: str  # list_voices | plan | synthesize | publish
    part: str | None  # which synthesize task (its batch spec)
    error: str

    @property
    def name(self) -> str:
        return f"{self.stage}[{self.part}]" if self.part else self.stage


Link = Callable[[str], str]  # storage key -> href in the page


WAVEFORM_POINTS = 240  # envelope buckets: enough for a picture, a few KB of SVG


SHARED_PAGE = "report.shared.html"


def report_prefix(dag_id: str, run_id: str) -> str:
    return f"runs/{dag_id}/{key_segment(run_id)}/"


def relative_link(prefix: str) -> Link:
    """Keys as links relative to a page stored under ``prefix`` (the output layout is kept
    wherever the page is read: the API server's plugin, a local folder, a static host)."""
    up = "../" * prefix.rstrip("/").count("/") + "../" if prefix else ""
    return lambda key: up + quote(key)


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
    run failed); ``rejected`` the inputs refused before reading (one line each); ``expires``
    the life of report.json's presigned links (seconds)."""
    rows = []
    audio_seconds = synthesis_seconds = 0.0
    for outcome in scripts:
        row = {**asdict(outcome), "duration": None, "rtf": None, "keys": [], "links": {}, "qa": None}
        row["quarantined"] = [_take_links(storage, c, expires) for c in outcome.quarantined]
        row.update(voices=[], chunks=None, waveform=None, timed=None, acx=None)
        if outcome.manifest_key and outcome.status in ("published", "skipped"):
            manifest = json.loads(retrying(lambda k=outcome.manifest_key: storage.get_bytes(k)))
            row["keys"] = [o["key"] for o in manifest["outputs"]] + [outcome.manifest_key]
            row["links"] = {k.rsplit("/", 1)[1]: storage.presign(k, expires) for k in row["keys"]}
            row["duration"] = manifest["durations"].get("audio_seconds")
            row["rtf"] = manifest["durations"].get("rtf")
            row["qa"] = manifest.get("qa")
            row["voices"] = list(manifest.get("inputs", {}).get("script", {}).get("voices", []))
            row["chunks"] = len(manifest.get("chunks", []))
            row["waveform"] = _waveform(storage, manifest)
            row["timed"] = timed_summary(manifest.get("timed"))
            row["acx"] = acx_summary(manifest)  # a book: the ACX checker's results per file
            audio_seconds += row["duration"] or 0.0
            if outcome.status == "published":
                synthesis_seconds += manifest["durations"].get("synthesis_seconds") or 0.0
        rows.append(row)
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    report = {
        "schema": "voicebatch.publish.report/1",
        "dag_id": dag_id,
        "run_id": run_id,
        "model": model,
        "notice": RANDOM_WEIGHTS_NOTICE if model.get("random_weights") else None,
        "timings": {"started_at": started_at, "finished_at": finished},
        "status": "failed" if stages else "finished",
        "failed_stages": [{"stage": f.stage, "part": f.part, "error": f.error} for f in stages],
        "rejected_inputs": list(rejected),
        "links_expire_seconds": expires,
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
    report["totals"]["acx_failed"] = sum(bool(r["acx"]) and not r["acx"]["passed"] for r in rows)
    report["totals"]["quarantined_chunks"] = report["qa"]["quarantined"]
    report["files"] = sorted(referenced_keys(report))  # what a server of this report may hand out
    prefix = report_prefix(dag_id, run_id)
    return report, render_html(report, relative_link(prefix), _captions(storage, report))


def timed_summary(timed: Mapping | None) -> dict | None:
    """A timed script's cues, and those that did not fit their slot (late or past it)."""
    if not timed:
        return None
    flagged = [
        {"cue": c["index"] + 1, "cue_start": c["cue_start"], "late": c["late"], "overrun": c["overrun"]}
        for c in timed["cues"]
        if not c["fits"]
    ]
    return {"cues": len(timed["cues"]), "track_end": timed["track_end"], "flagged": flagged}


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


def referenced_keys(report: Mapping) -> set[str]:
    """Every stored object the report links to (what a server of the report may hand out)."""
    prefix = report_prefix(report["dag_id"], report["run_id"])
    keys = {prefix + "report.html", prefix + "report.json"}
    for row in report["scripts"]:
        keys.update(row.get("keys") or ())
        keys.update(t["audio_key"] for c in row.get("quarantined") or () for t in c["takes"] if t.get("audio_key"))
    keys.update(v["reference_key"] for v in report["voices"] if v.get("reference_key"))
    return keys


def publish_report(storage: Storage, report: dict, page: str) -> tuple[str, str]:
    prefix = report_prefix(report["dag_id"], report["run_id"])
    retrying(lambda: storage.put_bytes(prefix + "report.html", page.encode("utf-8"), "text/html; charset=utf-8"))
    retrying(lambda: storage.put_bytes(prefix + "report.json", json_bytes(report), "application/json"))
    return prefix + "report.json", prefix + "report.html"


def share_report(storage: Storage, dag_id: str, run_id: str, expires: int = PRESIGN_SECONDS) -> str:
    """Write ``report.shared.html``, the report with every link presigned for ``expires``
    seconds (at most 7 days: SigV4's limit), for listeners outside Airflow; return a presigned
    link to it. Run again to share again once the links have expired."""
    if not 1 <= expires <= PRESIGN_SECONDS:
        raise ValueError(f"link expiry {expires} s: use 1 s to 7 days ({PRESIGN_SECONDS} s)")
    prefix = report_prefix(dag_id, run_id)
    report = json.loads(storage.get_bytes(prefix + "report.json"))
    page = render_html(report, lambda key: storage.presign(key, expires), _captions(storage, report))
    storage.put_bytes(prefix + SHARED_PAGE, page.encode("utf-8"), "text/html; charset=utf-8")
    return storage.presign(prefix + SHARED_PAGE, expires)


def _waveform(storage: Storage, manifest: dict) -> dict | None:
    """The audio's envelope (min, max per bucket) and the sentence boundaries, for a small SVG."""
    import soundfile as sf

    outputs = {o["key"].rsplit(".", 1)[1]: o["key"] for o in manifest["outputs"]}
    audio_key = next((k for ext, k in outputs.items() if ext in ("wav", "flac", "mp3")), None)
    if audio_key is None:
        return None
    with sf.SoundFile(io.BytesIO(storage.get_bytes(audio_key))) as audio:
        frames, rate = audio.frames, audio.samplerate
        size = max(1, -(-frames // WAVEFORM_POINTS))
        peaks = []
        for block in audio.blocks(blocksize=size, dtype="float32", always_2d=True):  # block by block: long audio
            channel = block[:, 0]
            peaks.append([round(float(channel.min()), 3), round(float(channel.max()), 3)])
    boundaries = _sentence_ends(storage.get_bytes(outputs["csv"]).decode("utf-8")) if "csv" in outputs else []
    return {"duration": round(frames / rate, 3) if rate else 0.0, "peaks": peaks, "sentences": boundaries[:-1]}


def _sentence_ends(table: str) -> list[float]:
    import csv

    # end_s in today's CSV schema; end in older manifests.
    return [float(r.get("end_s") or r["end"]) for r in csv.DictReader(io.StringIO(table)) if r["level"] == "sentence"]


def _captions(storage: Storage, report: Mapping) -> dict[str, str]:
    """script id -> its WebVTT text (for the players' caption tracks)."""
    found = {}
    for row in report["scripts"]:
        vtt = next((k for k in row.get("keys") or () if k.endswith(".vtt")), None)
        if vtt:
            found[row["script_id"]] = retrying(lambda k=vtt: storage.get_bytes(k)).decode("utf-8")
    return found
