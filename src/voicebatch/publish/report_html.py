"""The run report as one self-contained HTML page: summary, voices, scripts with players, captions
and waveforms, the QA section with each quarantined take's transcript and diff. Every string from
an input is escaped, and the page's CSP allows nothing to load (``default-src 'none'``).
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from voicebatch.publish.report_acx import acx_html

if TYPE_CHECKING:
    from voicebatch.publish.report import Link  # storage key -> href in the page

log = logging.getLogger(__name__)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f} s"


def _rtf(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _vtt_cue_time(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes) // 60:02d}:{int(minutes) % 60:02d}:{rest:06.3f}"


def _track(vtt: str, label: str = "captions") -> str:
    """A captions track carried inline as a data URI: it attaches wherever the page is read
    (an http server, a local file, a presigned page), without cross-origin rules."""
    data = base64.b64encode(vtt.encode("utf-8")).decode("ascii")
    return (
        f"<track kind='captions' label='{html.escape(label)}' srclang='und' default src='data:text/vtt;base64,{data}'>"
    )


def _one_cue(text: str, seconds: float) -> str:
    return f"WEBVTT\n\n00:00:00.000 --> {_vtt_cue_time(seconds)}\n{text.replace('-->', '→')}\n"


def _player(src: str, vtt: str | None, label: str) -> str:
    track = _track(vtt, label) if vtt else ""
    return f"<audio controls preload='metadata' src='{html.escape(src)}'>{track}</audio>"


def _timed_html(timed: Mapping) -> str:
    e = html.escape
    if not timed["flagged"]:
        return f"<p class='timed'>timed script: all {_plural(timed['cues'], 'cue')} fit their slots</p>"
    items = "".join(
        f"<li>cue {c['cue']} ({c['cue_start']:.3f} s): starts {c['late']:.3f} s late, "
        f"lasts {c['overrun']:.3f} s past its slot</li>"
        for c in timed["flagged"]
    )
    return (
        f"<div class='review timed'>timed script: {e(_plural(len(timed['flagged']), 'cue'))} of {timed['cues']} "
        f"did not fit their slots, even at the fastest rate<ul>{items}</ul></div>"
    )


def waveform_svg(waveform: Mapping, title: str) -> str:
    """The envelope as one SVG path, a line at every sentence boundary (a few KB)."""
    peaks, duration = waveform["peaks"], waveform["duration"] or 1.0
    width, height = 900, 64
    if not peaks:
        return ""
    step = width / len(peaks)
    # Whole pixels, and one L for the whole polyline: the path is half the bytes, the same drawing.
    top = [f"{i * step:.0f},{(1 - hi) * height / 2:.0f}" for i, (_, hi) in enumerate(peaks)]
    bottom = [f"{i * step:.0f},{(1 - lo) * height / 2:.0f}" for i, (lo, _) in reversed(list(enumerate(peaks)))]
    points = top + bottom
    lines = "".join(
        f"<line x1='{t / duration * width:.0f}' x2='{t / duration * width:.0f}' y1='0' y2='{height}'/>"
        for t in waveform.get("sentences", [])
    )
    return (
        f"<svg class='waveform' role='img' viewBox='0 0 {width} {height}' width='{width}' height='{height}'>"
        f"<title>waveform of {html.escape(title)}: {duration:.2f} s, a line at every sentence boundary</title>"
        f"<path d='M{points[0]}L{' '.join(points[1:])}Z'/><g>{lines}</g></svg>"
    )


_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
td.n{text-align:right}.notice{background:#fde2e4;border:2px solid #d1495b;padding:.8rem;font-weight:bold}
section.script{border-top:1px solid #ddd;margin-top:1.5rem;padding-top:1rem}nav#contents li{margin:.1rem 0}
pre{background:#f6f6f6;padding:.6rem;max-height:14rem;overflow:auto;font-size:.8rem}
audio{width:100%;max-width:36rem}td audio{min-width:18rem}
svg.waveform{max-width:100%;height:auto;display:block}svg.waveform path{fill:#1f5f8b}
svg.waveform line{stroke:#d1495b;stroke-width:1}.failed{color:#b00020}
.review{background:#fff4d6;border:2px solid #e0a400;padding:.8rem}
del{background:#fde2e4}ins{background:#d9f2d9;text-decoration:none}"""


def _qa_html(report: dict, link: Link) -> list[str]:
    """The QA section: pass rate, re-takes, and each quarantined chunk with a player per take
    and the diff of its transcript against the text."""
    e = html.escape
    qa = report.get("qa") or {}
    if not qa.get("checked") and not qa.get("not_checked"):
        return []
    mode = e(", ".join(qa.get("modes", [])) or "off")
    if qa["checked"]:
        line = (
            f"{qa['passed']} of {_plural(qa['checked'], 'checked chunk')} passed ({qa['pass_rate']:.0%}); "
            f"{_plural(qa['retakes'], 're-take')}; {qa['quarantined']} quarantined; {qa['not_checked']} not checked"
        )
    else:
        line = f"No chunk was checked ({qa['not_checked']} not checked)"
    parts = ["<section id='verification'><h2>Verification</h2>", f"<p id='qa-summary'>{line} (mode: {mode}).</p>"]
    for note in qa.get("notes", []):
        parts.append(f"<p class='notice qa-note'>{e(note)}</p>")
    if qa.get("needs_review"):
        parts.append(
            "<p class='review' id='needs-review'>Published but marked <b>needs_review</b> (a chunk never passed): "
            + ", ".join(f"<a href='#script-{e(s)}'><code>{e(s)}</code></a>" for s in qa["needs_review"])
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
                vtt = _one_cue(
                    chunk["text"], 3600.0
                )  # the take's length is not recorded: the text for its whole length
                player = _player(link(take["audio_key"]), vtt, "text") if take.get("audio_key") else ""
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
    parts.append("</section>")
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


def _qa_cell(row: Mapping) -> str:
    qa = row.get("qa")
    if row["status"] == "held":
        return f"held back: {_plural(len(row.get('quarantined') or ()), 'chunk')} never passed"
    if not qa:
        return "–"
    checked = qa["passed"] + qa["quarantined"]
    return f"{qa['status']} ({qa['passed']}/{checked} passed)" if checked else qa["status"]


def _summary_html(report: dict) -> list[str]:
    e = html.escape
    totals = report["totals"]
    voices_ok, voices_failed = totals["voices_ok"], totals["voices_failed"]
    line = (
        f"{_plural(totals['scripts'], 'script')}: {totals['published']} published, "
        f"{totals['skipped']} already published, {totals['failed']} failed, {totals.get('held', 0)} held back; "
        f"{_plural(voices_ok + voices_failed, 'voice')} ({voices_ok} ok, {voices_failed} failed); "
        f"{_seconds(totals['audio_seconds'])} of audio"
    )
    if totals.get("synthesis_seconds"):
        line += f", synthesized in {_seconds(totals['synthesis_seconds'])}"
    parts = [f"<section id='summary'><h2>Summary</h2><p id='totals'>{line}.</p>"]
    if report["scripts"]:
        parts.append(
            "<table id='summary-table'><tr><th>script</th><th>voices</th><th>duration</th><th>status</th>"
            "<th>QA</th><th>RTF</th></tr>"
        )
        for row in report["scripts"]:
            sid = e(row["script_id"])
            name = f"<a href='#script-{sid}'>{sid}</a>" if row["status"] in ("published", "skipped") else sid
            status = {"skipped": "already published"}.get(row["status"], row["status"])
            parts.append(
                f"<tr><td>{name}</td><td>{e(', '.join(row.get('voices') or []))}</td>"
                f"<td class='n'>{_seconds(row.get('duration'))}</td><td>{e(status)}</td>"
                f"<td>{e(_qa_cell(row))}</td><td class='n'>{_rtf(row.get('rtf'))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</section>")
    return parts


def _contents_html(report: dict, sections: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    items = [f"<li><a href='#{anchor}'>{e(title)}</a></li>" for anchor, title in sections]
    scripts = [s for s in report["scripts"] if s["status"] in ("published", "skipped")]
    if scripts:
        inner = "".join(f"<li><a href='#script-{e(s['script_id'])}'>{e(s['script_id'])}</a></li>" for s in scripts)
        items.append(f"<li><a href='#scripts'>Scripts</a><ul>{inner}</ul></li>")
    return f"<nav id='contents'><h2>Contents</h2><ul>{''.join(items)}</ul></nav>"


def _voices_html(report: dict, link: Link) -> list[str]:
    e = html.escape
    parts = [
        "<section id='voices'><h2>Voices</h2><table id='voices-table'><tr><th>voice</th><th>status</th>"
        "<th>reference clip</th><th>text / reason</th></tr>"
    ]
    for v in report["voices"]:
        clip = f"{v['start']:.2f}–{v['end']:.2f} s" if v.get("start") is not None else ""
        player = ""
        if v.get("reference_key") and v.get("start") is not None:
            vtt = _one_cue(v.get("text") or "", v["end"] - v["start"])
            player = _player(link(v["reference_key"]), vtt, f"reference text of {v['voice']}")
        words = e(v.get("text") or "") if v["status"] == "ok" else f"<span class='failed'>{e(v['reason'] or '')}</span>"
        parts.append(
            f"<tr id='voice-{e(v['voice'])}'><td>{e(v['voice'])}</td><td>{e(v['status'])}</td>"
            f"<td>{clip}{player}</td><td>{words}</td></tr>"
        )
    parts.append("</table></section>")
    return parts


def render_html(report: dict, link: Link, captions: Mapping[str, str] | None = None) -> str:
    """The page: ``link`` turns a storage key into an href (relative for the stored page,
    presigned for a shared one); ``captions`` holds each script's WebVTT."""
    e = html.escape
    captions = captions or {}
    model = report["model"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>voicebatch run {e(report['run_id'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>voicebatch run report</h1><p>DAG <code>{e(report['dag_id'])}</code>, run "
        f"<code>{e(report['run_id'])}</code>, model <code>{e(model.get('name', 'not resolved'))}</code>"
        f"{', finished ' + e(report['timings']['finished_at']) if report.get('timings') else ''}</p>",
    ]
    for failure in report.get("failed_stages", []):
        name = failure["stage"] + (f"[{failure['part']}]" if failure.get("part") else "")
        parts.append(
            f"<p class='notice run-failed'>Run failed: stage <code>{e(name)}</code>: {e(failure['error'])}</p>"
        )
    if report.get("notice"):
        parts.append(f"<p class='notice' id='notice'>Model with {e(report['notice'])}.</p>")
    failures = [(s["script_id"], s["error"]) for s in report["scripts"] if s["status"] == "failed"]
    failures += [(f"voice {v['voice']}", v["reason"]) for v in report["voices"] if v["status"] != "ok"]
    failures += [("refused input", line) for line in report.get("rejected_inputs", [])]
    verification = _qa_html(report, link)
    sections = [("summary", "Summary")]
    sections += [("verification", "Verification")] if verification else []
    sections += [("failures", "Failures")] if failures else []
    sections += [("voices", "Voices")]
    parts.append(_contents_html(report, sections))
    parts += _summary_html(report)
    parts += verification
    if failures:
        parts.append("<section id='failures'><h2>Failures</h2><table id='failures-table'>")
        parts.append("<tr><th>what</th><th>error</th></tr>")
        parts += [f"<tr><td>{e(w)}</td><td class='failed'>{e(r or '')}</td></tr>" for w, r in failures]
        parts.append("</table></section>")
    parts += _voices_html(report, link)
    shown = [s for s in report["scripts"] if s["status"] in ("published", "skipped")]
    if shown:
        parts.append("<h2 id='scripts'>Scripts</h2>")
    for script in shown:
        sid = script["script_id"]
        keys = script["keys"]
        audio = next((k for k in keys if k.rsplit(".", 1)[-1] in ("wav", "flac", "mp3")), None)
        status = "already published" if script["status"] == "skipped" else "published"
        parts.append(f"<section class='script' id='script-{e(sid)}'><h3>{e(sid)}</h3>")
        parts.append(
            f"<p>{status}, {_seconds(script['duration'])}, RTF {_rtf(script['rtf'])}"
            f"{', ' + _plural(script['chunks'], 'chunk') if script.get('chunks') else ''}"
            f"{', voices ' + e(', '.join(script['voices'])) if script.get('voices') else ''}</p>"
        )
        if script.get("timed"):
            parts.append(_timed_html(script["timed"]))
        if audio:
            parts.append(_player(link(audio), captions.get(sid), "subtitles"))
        if script.get("waveform"):
            parts.append(waveform_svg(script["waveform"], sid))
        parts.append("<p>" + " · ".join(f"<a href='{e(link(k))}'>{e(k.rsplit('/', 1)[1])}</a>" for k in keys) + "</p>")
        parts += acx_html(script)
        if captions.get(sid):
            parts.append(f"<details><summary>subtitles</summary><pre>{e(captions[sid])}</pre></details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
