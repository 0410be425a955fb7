"""The one-call GPU check (benchmarks/gpu/run.sh) on this CPU, so it cannot rot between the rare
sessions that are lent a GPU.

The dry run takes every step the device run takes — the import check, the CUDA tests (skipped
here), every section of check.py — with the tiny model and small sizes, and under a simulation
of the GPU machine's package set (benchmarks/gpu/device_guard): only the packages that machine
has (device-packages.txt) and the wheels we carry (wheels.txt) import, so a package missing
from wheels.txt fails here instead of in a device call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "benchmarks" / "gpu"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("gpu-check")
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "VOICEBATCH_DEVICE_PACKAGES": f"{GPU / 'device-packages.txt'}{os.pathsep}{GPU / 'wheels.txt'}",
    }
    done = subprocess.run(
        ["bash", str(GPU / "run.sh"), "--dry-run"], env=env, capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out, done.stdout


def test_every_section_ran_and_wrote_its_figures(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    data = json.loads((out / "gpu-check.json").read_text())
    sections = data["sections"]
    expected = {"ceilings", "model", "runs", "compiled", "warm", "overlap", "precision", "cudagraphs", "summary"}
    expected |= {"attention", "tolerance", "profile", "fixed_cost", "compile"}  # the dry run runs every section
    assert expected <= set(sections), sorted(sections)
    failed = {
        name: s.get("error") or s.get("skipped") for name, s in sections.items() if "error" in s or "skipped" in s
    }
    assert not failed, failed
    assert {"gpu-check.md", "profile.txt", "machine.txt", "pytest.txt"} <= {p.name for p in out.iterdir()}


def test_the_compiled_engine_runs_both_step_counts_and_matches_eager(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    sections = json.loads((out / "gpu-check.json").read_text())["sections"]
    for name in ("compiled", "cudagraphs"):
        runs = sections[name]["runs"]
        assert [r["nfe"] for r in runs] == [3, 7] and all(r["compiled"] for r in runs)
        assert sections[name]["still_compiled"], "the compiled forward did not fall back to eager"
    tolerance = sections["compiled"]["tolerance"]
    assert tolerance["same_frames"] and tolerance["mel_rel_l2_max"] < 1e-4  # float32 on the CPU


def test_the_warm_engine_serves_three_task_processes_from_one_server(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    warm = json.loads((out / "gpu-check.json").read_text())["sections"]["warm"]
    assert len(set(warm["server_pids"])) == 1 and warm["server_loads_seen"] == [0, 1, 1]
    assert not any(task["torch_imported"] for task in warm["tasks"]), "a task's process needs no torch"
    assert warm["warm_fixed_s"] == max(t["fixed_s"] for t in warm["tasks"][1:])


def test_verification_beside_synthesis_and_precision_are_measured(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    sections = json.loads((out / "gpu-check.json").read_text())["sections"]
    overlap = sections["overlap"]
    assert overlap["groups"] == 2 and overlap["synthesis_alone_s"] > 0 and overlap["overlapped_s"] > 0
    assert overlap["overhead_overlapped"] == pytest.approx(
        overlap["overlapped_s"] / overlap["synthesis_alone_s"] - 1, abs=1e-2
    )
    bf16 = sections["precision"]["dtypes"]["bfloat16"]
    assert bf16["same_frames"] and bf16["rtf"] > 0 and bf16["mel_rel_l2_vs_fp32_max"] < 0.5
    goals = sections["summary"]["goals"]
    assert set(goals) == {"rtf_nfe_32", "rtf_epss_7", "warm_fixed_s", "verify_overhead", "compiled_rel_l2"}
    assert goals["rtf_nfe_32"]["measured"] is None, "the dry run has no NFE 32"
    assert goals["verify_overhead"]["measured"] == overlap["overhead_overlapped"]


def test_the_markdown_is_a_results_section_naming_the_device(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    text = (out / "gpu-check.md").read_text()
    assert text.lstrip().startswith("### GPU: CPU (dry run), tiny-random-dit64x2 (random weights),")
    for part in ("| run | NFE | budget (frames) | compiled |", "**Compiled vs eager**", "**Warm engine**"):
        assert part in text
    for part in ("**Verification beside synthesis**", "**Precision**", "**Goals**", "| torch.compile (eager) |"):
        assert part in text


def test_runs_compare_f5_infer_process_batch_process_and_engine_budgets_at_both_nfe(
    dry_run: tuple[Path, str],
) -> None:
    out, _ = dry_run
    runs = json.loads((out / "gpu-check.json").read_text())["sections"]["runs"]["runs"]
    seen = {(r["mode"], r["nfe"], r.get("budget")) for r in runs}
    for nfe in (3, 7):  # the dry run's stand-ins for NFE 32 and EPSS 7
        assert ("f5_process", nfe, None) in seen and ("f5_batch", nfe, None) in seen
        assert {b for m, n, b in seen if m == "engine" and n == nfe} == {16384, 32768}
    assert any(r.get("variant") == "attention masked" for r in runs), "the other attention kernel at the default budget"
    for r in runs:
        assert r["audio_s"] > 0 and r["wall_s"] > 0 and r["rtf"] == pytest.approx(r["wall_s"] / r["audio_s"], rel=1e-2)


def test_attention_backends_agree_with_f5s_masked_attention(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    backends = json.loads((out / "gpu-check.json").read_text())["sections"]["attention"]["backends"]
    assert set(backends) == {"masked", "sliced"}  # the CPU's; the GPU adds varlen (and flash_attn)
    assert backends["sliced"]["rel_err_vs_masked_max"] < 1e-4  # float32
    assert "sliced" in backends["sliced"]["calls"] and "masked" in backends["masked"]["calls"]


def test_batched_synthesis_matches_one_by_one_and_the_fixed_cost_is_measured(dry_run: tuple[Path, str]) -> None:
    out, _ = dry_run
    sections = json.loads((out / "gpu-check.json").read_text())["sections"]
    assert sections["tolerance"]["mel_abs_max"] < 1e-3 and sections["tolerance"]["same_seed_same_samples"]
    fixed = sections["fixed_cost"]
    assert fixed["model_load_s"] > 0 and fixed["first_chunk_s"] > 0
    assert fixed["fixed_s"] >= fixed["import_torch_s"] + fixed["model_load_s"]
    task = sections["summary"]["task"]
    assert task["fixed_s"] == fixed["fixed_s"] and task["task_gpu_s"] == 150.0
    assert task["fixed_fraction"] == pytest.approx(fixed["fixed_s"] / (fixed["fixed_s"] + 150.0), abs=1e-3)


def test_cuda_tests_were_collected_and_skipped_without_a_gpu(dry_run: tuple[Path, str]) -> None:
    out, stdout = dry_run
    report = (out / "pytest.txt").read_text()
    assert "skipped" in report and "failed" not in report and "error" not in report.lower()
    assert "imports ok" in stdout


def test_the_wheel_list_fits_the_device_tool_and_pins_the_locked_versions() -> None:
    locked = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            locked[name.lower().replace("_", "-")] = version.strip()
    for line in (GPU / "wheels.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert locked.get(name.lower().replace("_", "-")) == version, f"{line} is not the locked version"
