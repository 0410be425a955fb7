"""The GPU check's figures as a section of benchmarks/RESULTS.md (same headings and table shapes
as the sections already there), and the goals the figures meet or miss."""

from __future__ import annotations

import time

import bench_synthesis as bench
from floor import GOALS


def goals(sections: dict) -> dict:
    """Each goal with its measured figure (None when its section did not run) and whether it is met."""
    rows = sections.get("runs", {}).get("runs", []) + _compiled_rows(sections)
    engine = [r for r in rows if r["mode"] == "engine"]

    def best(nfe: int) -> float | None:
        found = [r["rtf"] for r in engine if r["nfe"] == nfe]
        return min(found) if found else None

    tolerance = sections.get("compiled", {}).get("tolerance", {})
    measured = {
        "rtf_nfe_32": best(32),
        "rtf_epss_7": best(7),
        "warm_fixed_s": sections.get("warm", {}).get("warm_fixed_s"),
        "verify_overhead": sections.get("overlap", {}).get("overhead_overlapped"),
        "compiled_rel_l2": tolerance.get("mel_rel_l2_max") if tolerance.get("same_frames") else None,
    }
    return {
        name: {"goal": GOALS[name], "measured": value, "met": None if value is None else value <= GOALS[name]}
        for name, value in measured.items()
    }


def _compiled_rows(sections: dict) -> list[dict]:
    rows = []
    for name in ("compiled", "cudagraphs"):
        for row in sections.get(name, {}).get("runs", []):
            graphs = ", CUDA graphs" if row.get("compile_mode") == "reduce-overhead" else ""
            rows.append({**row, "compiled_as": f"torch.compile ({row['compiled']}{graphs})"})
    return rows


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
    return out


def markdown(data: dict, pytest_summary: str | None = None) -> str:
    s = data["sections"]
    facts, model = s.get("ceilings", {}), s.get("model", {})
    gpu = facts.get("gpu") or "CPU (dry run)"
    lines = [f"\n### GPU: {gpu}, {model.get('name', '?')} (random weights), {time.strftime('%Y-%m-%d')}\n"]
    lines.append(
        f"`bash benchmarks/gpu/run.sh` in one device call ({data.get('machine', '?')}). Measured ceilings: "
        f"{facts.get('matmul_tflops')} TFLOP/s ({facts.get('matmul')}), copy {facts.get('copy_gb_s')} GB/s."
        + (f" CUDA tests: {pytest_summary}." if pytest_summary else "")
        + "\n"
    )
    rows = s.get("runs", {}).get("runs", []) + _compiled_rows(s)
    if rows:
        lines.append(f"**Runs** ({rows[0]['chunks']} chunks of the demo scripts, {rows[0]['audio_s']} s of audio):\n")
        table = []
        for r in rows:
            base = next((x for x in rows if x["mode"] == "f5_process" and x["nfe"] == r["nfe"]), None)
            engine = r["mode"] == "engine"
            table.append(
                [
                    bench.RUN_NAMES[r["mode"]],
                    r["nfe"] if r["nfe"] != 7 else "7 (EPSS)",
                    r.get("budget") if engine else None,
                    r.get("compiled_as", "no") if engine else "-",
                    r["attention"] if engine else "F5 SDPA",
                    r["audio_s"],
                    r["wall_s"],
                    f"**{r['rtf']}**" if r.get("compiled_as") else r["rtf"],
                    f"{base['rtf'] / r['rtf']:.2f}x" if base else None,
                    r.get("achieved_tflops"),
                    r.get("floor_rtf_at_matmul_peak"),
                    r.get("compile_s"),
                    r.get("gpu_max_alloc_mb"),
                ]
            )
        header = ["run", "NFE", "budget (frames)", "compiled", "attention", "audio s", "wall s", "RTF"]
        header += ["vs infer_process", "achieved TFLOP/s", "floor RTF", "compile s", "GPU max alloc MB"]
        lines += [*_table(header, table), ""]
    lines += _compiled_text(s) + _warm_text(s) + _overlap_text(s) + _precision_text(s)
    lines.append("**Goals** (issue: GPU near the floor):\n")
    met = goals(s)
    lines += _table(
        ["figure", "goal", "measured", "met"],
        [
            [k, v["goal"], v["measured"], {True: "yes", False: "**no**", None: "not measured"}[v["met"]]]
            for k, v in met.items()
        ],
    )
    return "\n".join(lines) + "\n"


def _compiled_text(s: dict) -> list[str]:
    compiled = s.get("compiled", {})
    if "tolerance" not in compiled:
        return []
    t, cache = compiled["tolerance"], compiled.get("cache", {})
    first = compiled["runs"][0] if compiled.get("runs") else {}
    return [
        f"**Compiled vs eager** (same seeds, {t['chunks']} chunks, NFE {t['nfe']}): mel relative L2 at most "
        f"{t['mel_rel_l2_max']:.2e} (mean {t['mel_rel_l2_mean']:.2e}), same lengths: {t['same_frames']}. "
        f"Compile: {cache.get('fxgraph_cache_miss')} graphs compiled in the first pass ({first.get('compile_s')} s), "
        f"{cache.get('fxgraph_cache_hit')} found in the cache; {len(cache.get('loaded', []))} artifact file(s) "
        f"loaded from beside the model, {len(cache.get('saved', []))} saved there.\n"
    ]


def _warm_text(s: dict) -> list[str]:
    warm = s.get("warm", {})
    if "tasks" not in warm:
        return []
    names = ["1 (starts the server)", "2", "3"]
    rows = [
        [name, t["wall_s"], t["imports_s"], t["synthesis_s"], t["fixed_s"], loads]
        for name, t, loads in zip(names, warm["tasks"], warm["server_loads_seen"], strict=False)
    ]
    lines = [
        f"**Warm engine** (each task a fresh process; {warm['chunks']} chunks a task, NFE {warm['nfe']}, "
        f"compile {warm['compile'] or 'off'}; fixed = wall - the task's own synthesis time, as the server "
        f"measured it; the first task's synthesis took {warm['first_synthesis_over_last_s']} s more than the "
        "last one's: warm-up and compile):\n"
    ]
    lines += _table(["task", "wall s", "imports s", "synthesis s", "fixed s", "models loaded before it"], rows)
    return [*lines, ""]


def _overlap_text(s: dict) -> list[str]:
    o = s.get("overlap", {})
    if "overlapped_s" not in o:
        return []
    lines = [
        f"**Verification beside synthesis** ({o['chunks']} chunks in {o['groups']} synthesis batches, NFE {o['nfe']}; "
        f"recogniser: {o['recognizer']}, loaded in {o['recognizer_load_s']} s):\n"
    ]
    rows = [
        ["synthesis alone", o["synthesis_alone_s"], None],
        ["verification alone", o["verification_alone_s"], None],
        ["one after the other", o["serial_s"], f"+{o['overhead_serial'] * 100:.1f} %"],
        ["batch N checked while N+1 synthesizes", o["overlapped_s"], f"+{o['overhead_overlapped'] * 100:.1f} %"],
    ]
    return [*lines, *_table(["run", "wall s", "vs synthesis alone"], rows), ""]


def _precision_text(s: dict) -> list[str]:
    p = s.get("precision", {})
    if not p.get("dtypes"):
        return []
    rows = [
        [name, d["rtf"], f"{d['mel_rel_l2_vs_fp32_max']:.2e}", f"{d['mel_rel_l2_vs_fp32_mean']:.2e}", d["same_frames"]]
        for name, d in p["dtypes"].items()
    ]
    lines = [f"**Precision** (eager, NFE {p['nfe']}, time grid in fp32; drift on {p['chunks_compared']} chunks):\n"]
    return [*lines, *_table(["dtype", "RTF", "mel rel. L2 vs fp32, max", "mean", "same lengths"], rows), ""]
