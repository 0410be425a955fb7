"""report.html in headless Chromium (Debian's package, driven by Playwright): players and images show."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from voicebatch.locations.storage import open_storage
from voicebatch.publish.publishing import publish_voice
from voicebatch.publish.report import (
    RANDOM_WEIGHTS_NOTICE,
    ScriptOutcome,
    StageFailure,
    VoiceOutcome,
    build_report,
    publish_report,
)
from voicebatch.run.pipeline import RunSettings, publish_script_outputs

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


def published_report(tmp_path: Path):
    """Two published scripts, a failed one, a good and a bad voice, a failed stage, a refused input."""
    storage = open_storage(str(tmp_path / "bucket"))
    settings = RunSettings()
    registered = publish_voice(storage, voice())
    outcomes = []
    for plan in plans(storage, settings):
        audio = chunk_audio(len(plan.requests))
        published = publish_script_outputs(
            storage, plan, audio, {"anna": voice()}, model().lineage(), settings, synthesis_seconds=2.0
        )
        outcomes.append(ScriptOutcome(plan.script.id, "published", plan.output_hash, published.manifest_key))
    outcomes.append(ScriptOutcome("broken", "failed", error="scripts/broken.txt: line 3: unknown voice 'zed'"))
    anna = VoiceOutcome(
        "anna", "ok", start=1.0, end=5.0, text=voice().text, reference_key=registered.prefix + "reference.wav"
    )
    report, page = build_report(
        storage,
        dag_id="voice_batch",
        run_id="manual__2026-11-25T10:00:00+00:00",
        model={"name": "tiny", "random_weights": True},
        scripts=outcomes,
        voices=[anna, VoiceOutcome("bob", "error", reason="bob.wav: silent")],
        stages=[StageFailure("synthesize", "0001", "did not finish: no outcome recorded")],
        rejected=["s3://b/voices: unsafe storage key '../x.wav': has a '.' or '..' segment: refused and skipped"],
    )
    json_key, html_key = publish_report(storage, report, page)
    return storage, report, json_key, html_key


def test_report_html_shows_players_captions_waveforms_summary_and_failures(browser, tmp_path: Path) -> None:
    storage, report, json_key, html_key = published_report(tmp_path)
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
        "acx_failed": 0,  # no book in this run
        "quarantined_chunks": 0,
        "stages_failed": 1,
        "inputs_rejected": 1,
    }
    durations = {r["script_id"]: r["duration"] for r in report["scripts"] if r["status"] == "published"}
    for key in wavs:
        assert abs(durations[key.split("/")[1]] - sf.info(io.BytesIO(storage.get_bytes(key))).duration) <= 0.001
    page_path = Path(storage.uri_for(html_key))
    assert page_path.stat().st_size < 60_000, "the report stays light (inline SVG, no images)"

    tab = browser.new_page(viewport={"width": 1100, "height": 1400})
    tab.goto(page_path.as_uri())
    tab.wait_for_load_state("load")
    # Players: one per script and one for the voice's reference clip, every one loading its audio.
    players = tab.locator("audio")
    assert players.count() == 3
    tab.wait_for_function("[...document.querySelectorAll('audio')].every(a => a.readyState >= 1)", timeout=15_000)
    durations_seen = players.evaluate_all("els => els.map(e => e.duration)")
    expected = sorted([4.0, *durations.values()])
    assert sorted(round(d, 1) for d in durations_seen) == [round(d, 1) for d in expected]
    sources = players.evaluate_all("els => els.map(e => e.src)")
    assert sorted(Path(s.removeprefix("file://")).resolve() for s in sources) == sorted(
        Path(storage.uri_for(k)).resolve() for k in [*wavs, "voices/anna/anna-clip-hash/reference.wav"]
    ), "each player plays the published file, linked relative to the report"
    # Captions: a track on every player, loaded, its cues the published subtitles (or the reference text).
    tracks = tab.wait_for_function(
        """() => {
            const all = [...document.querySelectorAll('audio')].map(a => a.textTracks[0]);
            if (!all.every(t => t && t.cues && t.cues.length)) return null;
            return all.map(t => [...t.cues].map(c => c.text));
        }""",
        timeout=15_000,
    ).json_value()
    assert ["Hello, I am a test voice."] in tracks
    assert ["Welcome to the course.", "Let us begin."] in tracks
    # Waveforms: one small SVG per script, a line at each inner sentence boundary.
    assert tab.locator("svg.waveform").count() == 2
    assert tab.locator("section#script-intro svg.waveform line").count() == 1
    # Summary table and contents with anchors that resolve.
    summary = tab.locator("#summary-table").inner_text()
    assert "intro" in summary and "long-one" in summary and "broken" in summary and "failed" in summary
    rtfs = [r["rtf"] for r in report["scripts"] if r["rtf"] is not None]
    assert all(f"{v:.2f}" in summary for v in rtfs) and not any(str(v) in summary for v in rtfs if len(str(v)) > 4)
    anchors = tab.locator("nav#contents a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert {"#summary", "#failures", "#voices", "#script-intro", "#script-long-one"} <= set(anchors)
    for anchor in anchors:
        assert tab.locator(anchor).count() == 1, anchor
    totals_line = tab.locator("#totals").inner_text()
    assert totals_line.startswith("3 scripts: 2 published") and "2 voices (1 ok, 1 failed)" in totals_line
    # The voice's reference clip and its text.
    assert "Hello, I am a test voice." in tab.locator("#voice-anna").inner_text()
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
    shutil.copyfile(page_path, ARTIFACTS / "report.html")


def test_one_script_reads_in_the_singular(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "out"))
    (plan, _) = plans(storage)
    published = publish_script_outputs(
        storage, plan, chunk_audio(len(plan.requests)), {"anna": voice()}, model().lineage(), RunSettings()
    )
    _, page = build_report(
        storage,
        dag_id="d",
        run_id="r",
        model={"name": "m"},
        scripts=[ScriptOutcome("intro", "published", plan.output_hash, published.manifest_key)],
        voices=[VoiceOutcome("anna", "ok")],
    )
    assert "1 script: 1 published" in page and "1 voice (1 ok, 0 failed)" in page
    assert "1 scripts" not in page and "1 voices" not in page
