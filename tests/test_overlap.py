"""Verification of batch N while batch N+1 synthesizes: proved by what each side saw of the
other (not by timing), handed back in order, re-takes never inside a running synthesis, and a
pipeline run that stages exactly what the serial order stages."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from test_verify_pipeline import BAD, GOOD, SpeakingEngine, _Files
from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.pipeline import RunSettings
from voicebatch.synthesis.models import load_model_files
from voicebatch.verify.overlap import Events, SharedEngine, overlap_enabled, synthesize_then_verify
from voicebatch.verify.settings import VerifySettings

from run_helpers import run_stages

DEADLOCK_GUARD_S = 120.0  # only ever reached when the two sides do not run at the same time


def test_verification_of_a_batch_runs_while_the_next_one_synthesizes() -> None:
    n = 4
    synth_started = [threading.Event() for _ in range(n)]
    verify_started = [threading.Event() for _ in range(n)]
    saw = {"synth": {}, "verify": {}}

    def synthesize(group: int) -> str:
        synth_started[group].set()
        if group > 0:  # batch N+1 waits until the check of batch N is running
            saw["synth"][group] = verify_started[group - 1].wait(DEADLOCK_GUARD_S)
        return f"audio {group}"

    def verify(group: int, audio: str) -> str:
        verify_started[group].set()
        if group < n - 1:  # the check of batch N waits until batch N+1 is being synthesized
            saw["verify"][group] = synth_started[group + 1].wait(DEADLOCK_GUARD_S)
        return f"checked {audio}"

    events = Events()
    out = list(synthesize_then_verify(list(range(n)), synthesize, verify, events=events))
    assert saw == {"synth": dict.fromkeys(range(1, n), True), "verify": dict.fromkeys(range(n - 1), True)}
    assert [c.index for c in out] == list(range(n)) and [c.result for c in out] == [
        f"checked audio {i}" for i in range(n)
    ]
    for i in range(n - 1):  # both sides of the handshake held in the recorded order too
        assert events.seq("verify_start", i) < events.seq("synthesize_end", i + 1)
        assert events.seq("synthesize_start", i + 1) < events.seq("verify_end", i)
    threads = {e.thread for e in events.items if e.what == "verify_start"}
    assert len(threads) == 1 and threads != {threading.current_thread().name}


def test_the_serial_order_when_overlap_is_off() -> None:
    events = Events()
    out = list(synthesize_then_verify([0, 1, 2], lambda g: g * 10, lambda g, a: a + 1, overlap=False, events=events))
    assert [c.result for c in out] == [1, 11, 21]
    order = [(e.what, e.group) for e in events.items]
    for i in range(2):  # batch N is checked and handed back before batch N+1 starts
        assert order.index(("handed_back", i)) < order.index(("synthesize_start", i + 1))
    assert {e.thread for e in events.items} == {threading.current_thread().name}


def test_a_failed_synthesis_still_hands_back_the_batch_checked_before_it() -> None:
    def synthesize(group: int) -> int:
        if group == 2:
            raise RuntimeError("GPU lost")
        return group

    got = []
    with pytest.raises(RuntimeError, match="GPU lost"):
        for checked in synthesize_then_verify([0, 1, 2, 3], synthesize, lambda g, a: a):
            got.append(checked.index)
    assert got == [0, 1]


def test_re_takes_from_the_checking_thread_never_run_inside_a_synthesis() -> None:
    class CountingEngine:
        device = "cpu"

        def __init__(self) -> None:
            self.inside = self.most = self.calls = 0
            self.lock = threading.Lock()
            self.retake_waiting = threading.Event()

        def synthesize(self, group, retake=False):
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
                self.calls += 1
            if not retake:  # a synthesis holds the engine until a re-take is waiting for it
                self.retake_waiting.wait(5.0)
            with self.lock:
                self.inside -= 1
            return group

    engine = CountingEngine()
    shared = SharedEngine(engine)

    def verify(group: int, audio: int) -> int:
        engine.retake_waiting.set()
        return shared.synthesize(group, retake=True)  # a re-take of a failed chunk

    out = list(synthesize_then_verify([0, 1, 2], shared.synthesize, verify))
    assert [c.result for c in out] == [0, 1, 2] and engine.calls == 6
    assert engine.most == 1, "the engine never ran two calls at once"
    assert shared.device == "cpu"


def test_overlap_can_be_turned_off() -> None:
    assert overlap_enabled({}) and overlap_enabled({"VOICEBATCH_VERIFY_OVERLAP": "1"})
    assert not overlap_enabled({"VOICEBATCH_VERIFY_OVERLAP": "0"})


def run(tmp: Path, demo_voices: Path, tiny_model_dir: Path) -> tuple:
    scripts = tmp / "scripts"
    scripts.mkdir(parents=True)
    for name, text in (("good", GOOD), ("bad", BAD)):
        (scripts / f"{name}.txt").write_text(f"---\nvoice: nature\n---\n{text}\n")
    out = open_storage(str(tmp / "out"))
    # One chunk per synthesis batch (the Param's minimum budget): two batches to overlap.
    config = RunConfig(str(demo_voices), str(scripts), settings=RunSettings(verify=VerifySettings()), batch_frames=1000)
    engine = SpeakingEngine(_Files())
    result = run_stages(config, out, "run-1", engine, model=load_model_files(tiny_model_dir))
    return out, engine, result


def published_files(out) -> dict[str, bytes]:
    """Every published file but the manifests (they hold wall times), and the manifests' QA."""
    import json

    files = {}
    for key in out.list("audio/"):
        if key.endswith("manifest.json"):
            manifest = json.loads(out.get_bytes(key))
            files[key] = json.dumps([manifest["qa"], [c["qa"] for c in manifest["chunks"]]]).encode()
        elif not key.endswith("latest.json"):
            files[key] = out.get_bytes(key)
    return files


def test_a_run_with_overlap_publishes_exactly_what_the_serial_run_publishes(
    demo_voices: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voicebatch.run.speak as runs

    modes, scheduler = [], runs.synthesize_then_verify

    def recorded(*args, **kwargs):
        modes.append(kwargs["overlap"])
        return scheduler(*args, **kwargs)

    monkeypatch.setattr(runs, "synthesize_then_verify", recorded)
    monkeypatch.setenv("VOICEBATCH_VERIFY_OVERLAP", "0")
    serial_out, serial_engine, serial = run(tmp_path / "serial", demo_voices, tiny_model_dir)
    monkeypatch.setenv("VOICEBATCH_VERIFY_OVERLAP", "1")
    overlap_out, overlap_engine, overlapped = run(tmp_path / "overlap", demo_voices, tiny_model_dir)
    assert modes == [False, True]
    assert overlapped["published"] == serial["published"] and serial["published"]["published"] == 2
    assert overlapped["published"]["needs_review"] == 1, "the bad chunk is still quarantined"
    first = overlap_engine.first_seeds
    retakes = [call for call in overlap_engine.calls if any(seed != first[key] for key, seed in call)]
    assert retakes, "re-takes ran, from the checking thread"
    assert sorted(map(sorted, overlap_engine.calls)) == sorted(map(sorted, serial_engine.calls))
    assert published_files(overlap_out) == published_files(serial_out)


def test_a_checked_batch_is_delivered_while_the_next_one_still_synthesizes() -> None:
    delivered = threading.Event()
    order = []

    def synthesize(group: int) -> int:
        if group == 1:  # a long batch: it ends only once the batch before it is staged
            order.append(("batch 0 delivered while batch 1 synthesizes", delivered.wait(DEADLOCK_GUARD_S)))
        return group

    def deliver(checked) -> None:
        order.append(("delivered", checked.index))
        delivered.set()

    out = list(synthesize_then_verify([0, 1], synthesize, lambda g, a: a, deliver=deliver))
    assert order == [("delivered", 0), ("batch 0 delivered while batch 1 synthesizes", True), ("delivered", 1)]
    assert [c.index for c in out] == [0, 1]
