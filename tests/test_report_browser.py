"""report.html in headless Chromium (Debian's package, driven by Playwright): players and images show."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from voicebatch.pipeline import RunSettings, publish_script_outputs
from voicebatch.report import (
    RANDOM_WEIGHTS_NOTICE,
    ScriptOutcome,
    StageFailure,
    VoiceOutcome,
    build_report,
    publish_report,
)
from voicebatch.storage import open_storage

from browser_helpers import CHROMIUM, CHROMIUM_ARGS
from publish_helpers import chunk_audio, model, plans, voice

ARTIFACTS = Path(__file__).parent.parent / "out" / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_report_html_shows_players_images_subtitles_and_failures(browser, tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "bucket"))
    settings = RunSettings()
    outcomes = []
    for plan in plans(storage, settings):
        audio = chunk_audio(len(plan.requests))
        published = publish_script_outputs(
            storage, plan, audio, {"anna": voice()}, model().lineage(), settings, synthesis_seconds=2.0
        )
        outcomes.append(ScriptOutcome(plan.script.id, "published", plan.output_hash, published.manifest_key))
    outcomes.append(ScriptOutcome("broken", "failed", error="scripts/broken.txt: line 3: unknown voice 'zed'"))
    report, page = build_report(
        storage,
        dag_id="voice_batch",
        run_id="manual__2026-11-25T10:00:00+00:00",
        model={"name": "tiny", "random_weights": True},
        scripts=outcomes,
        voices=[VoiceOutcome("anna", "ok", start=0.0, end=4.0), VoiceOutcome("bob", "error", reason="bob.wav: silent")],
        stages=[StageFailure("synthesize", "0001", "did not finish: no outcome recorded")],
        rejected=["s3://b/voices: unsafe storage key '../x.wav': has a '.' or '..' segment: refused and skipped"],
    )
    json_key, html_key = publish_report(storage, report, page)
    assert json_key == "runs/voice_batch/manual__2026-11-25T10_00_00_00_00/report.json"
    # The published audio's length, read from the WAV files themselves.
    wavs = [k for k in storage.list("audio/") if k.endswith(".wav")]
    audio_seconds = sum(sf.info(io.BytesIO(storage.get_bytes(k))).duration for k in wavs)
    assert len(wavs) == 2 and audio_seconds > 4.0
    totals = json.loads(storage.get_bytes(json_key))["totals"]
    assert abs(totals.pop("audio_seconds") - audio_seconds) <= 0.01
    assert totals == {
        "scripts": 3,
        "published": 2,
        "skipped": 0,
        "failed": 1,
        "voices_ok": 1,
        "voices_failed": 1,
        "synthesis_seconds": 4.0,
        "held": 0,
        "quarantined_chunks": 0,
        "stages_failed": 1,
        "inputs_rejected": 1,
    }
    durations = {r["script_id"]: r["duration"] for r in report["scripts"] if r["status"] == "published"}
    for key in wavs:
        assert abs(durations[key.split("/")[1]] - sf.info(io.BytesIO(storage.get_bytes(key))).duration) <= 0.001
    tab = browser.new_page(viewport={"width": 1100, "height": 1400})
    tab.goto(Path(storage.uri_for(html_key)).as_uri())
    tab.wait_for_load_state("load")
    assert tab.locator("audio").count() == 2
    sources = tab.locator("audio").evaluate_all("els => els.map(e => e.src)")
    assert all(s.startswith("file://") and s.endswith(".wav") for s in sources)
    widths = tab.locator("img").evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
    assert len(widths) == 2 and all(w == 900 for w in widths), widths
    assert RANDOM_WEIGHTS_NOTICE in tab.locator("#notice").inner_text()
    failures = tab.locator("#failures").inner_text()
    assert "unknown voice 'zed'" in failures and "bob.wav: silent" in failures and "'../x.wav'" in failures
    assert tab.locator(".run-failed").inner_text() == (
        "Run failed: stage synthesize[0001]: did not finish: no outcome recorded"
    )
    tab.locator("section#script-intro summary").click()  # subtitles are folded until asked for
    assert "WEBVTT" in tab.locator("section#script-intro pre").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    shutil.copyfile(Path(storage.uri_for(html_key)), ARTIFACTS / "report.html")
