"""A book's ACX results in the run report: from its manifest's ``acx`` section (the checker's
report per file, ``mastering.acx``) to the report's row and a table in its page."""

from __future__ import annotations

import html
from collections.abc import Mapping


def acx_summary(manifest: Mapping) -> dict | None:
    """The row's ``acx``: required (the profile is acx), passed, and each file's figures and
    failed rules; None for a script (no ``acx`` section)."""
    acx = manifest.get("acx")
    if not acx:
        return None
    files = [
        {
            "file": r["path"],
            "passed": r["passed"],
            "rms_dbfs": r["rms_dbfs"],
            "true_peak_dbtp": r["true_peak_dbtp"],
            "noise_floor_dbfs": r["noise_floor_dbfs"],
            "head_seconds": r["head_seconds"],
            "tail_seconds": r["tail_seconds"],
            "duration": r["duration"],
            "failed": [f"{x['rule']}: {x['measured']} (needs {x['required']})" for x in r["rules"] if not x["passed"]],
        }
        for r in acx["files"]
    ]
    return {"required": acx["required"], "passed": acx["passed"], "files": files}


def acx_html(row: Mapping) -> list[str]:
    """A table of the book's files against ACX's rules (nothing for a script)."""
    acx = row.get("acx")
    if not acx:
        return []
    e = html.escape
    verdict = "every file passes ACX's rules" if acx["passed"] else "some files fail ACX's rules"
    parts = [
        f"<p class='{'' if acx['passed'] else 'failed'}'>ACX check: {verdict}</p>",
        "<table class='acx'><tr><th>file</th><th>ACX</th><th>RMS dBFS</th><th>true peak dBTP</th>"
        "<th>noise floor dBFS</th><th>head s</th><th>tail s</th><th>failed rules</th></tr>",
    ]
    for f in acx["files"]:
        parts.append(
            f"<tr><td>{e(f['file'])}</td><td>{'pass' if f['passed'] else 'FAIL'}</td>"
            f"<td class='n'>{f['rms_dbfs']:.1f}</td><td class='n'>{f['true_peak_dbtp']:.1f}</td>"
            f"<td class='n'>{f['noise_floor_dbfs']:.1f}</td><td class='n'>{f['head_seconds']:.2f}</td>"
            f"<td class='n'>{f['tail_seconds']:.2f}</td><td class='failed'>{e('; '.join(f['failed']))}</td></tr>"
        )
    parts.append("</table>")
    return parts
