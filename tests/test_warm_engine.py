"""The warm engine on the CPU with the tiny model: a server keeps the model loaded between task
processes; a dead or wedged server is found, killed and replaced, and no chunk is lost or
returned twice; bad requests come back as errors; messages on the socket are data only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voicebatch.synthesis import wire
from voicebatch.synthesis.engine import ChunkRequest, Engine, SynthesisParams
from voicebatch.synthesis.models import load_model_files
from voicebatch.synthesis.server_process import is_server
from voicebatch.synthesis.warm import ServerLost, WarmEngine, WarmSettings, warm_enabled

from conftest import tree_env
from engine_helpers import make_references, make_requests

TESTS = Path(__file__).resolve().parent
PARAMS = SynthesisParams(nfe_steps=4)

# A synthesize task's process as it talks to the warm engine: it asks for the chunks, saves
# them, and reports the server it talked to and whether it imported torch itself.
CLIENT = r"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[3])
from engine_helpers import make_references, make_requests
from voicebatch.synthesis.engine import SynthesisParams
from voicebatch.synthesis.models import load_model_files
from voicebatch.synthesis.server_process import is_server
from voicebatch.synthesis.warm import WarmEngine, WarmSettings

settings = WarmSettings(directory=Path(sys.argv[2]), idle_s=600, startup_s=600)
engine = WarmEngine(load_model_files(Path(sys.argv[1]), verify=False), device="cpu", settings=settings)
out = engine.synthesize(make_references(), make_requests(), SynthesisParams(nfe_steps=4))
np.savez(sys.argv[4], **{a.key: a.samples for a in out}, **{a.key + ".mel": a.mel for a in out})
engine.close()
print(json.dumps({"server": engine.server, "torch_imported": "torch" in sys.modules}))
"""


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short private folder (a Unix socket's path has at most 107 bytes); its servers are told
    to go at the end."""
    directory = Path(tempfile.mkdtemp(prefix="vb-warm-"))
    try:
        yield directory
    finally:
        for path in directory.glob("*.sock"):
            with socket.socket(socket.AF_UNIX) as sock:
                try:
                    sock.settimeout(30)
                    sock.connect(str(path))
                    wire.send(sock, {"op": "shutdown"})
                    while wire.recv(sock)[0].get("type") != "bye":
                        pass
                except OSError:
                    pass
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def expected(tiny_model_dir: Path) -> dict:
    """What an engine in this process says for the test chunks (computed without any server)."""
    engine = Engine(load_model_files(tiny_model_dir), device="cpu").load()
    return {a.key: a for a in engine.synthesize(make_references(), make_requests(), PARAMS)}


def client_process(model_dir: Path, socket_dir: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(model_dir), str(socket_dir), str(TESTS), str(out)],
        env=tree_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_same_audio(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key, audio in expected.items():
        assert got[key].frames == audio.frames
        assert np.abs(got[key].mel - audio.mel).max() < 1e-4


def test_the_first_task_loads_and_a_second_task_process_reuses_the_loaded_model(
    tiny_model_dir: Path, socket_dir: Path, tmp_path: Path, expected: dict
) -> None:
    first = client_process(tiny_model_dir, socket_dir, tmp_path / "first.npz")
    second = client_process(tiny_model_dir, socket_dir, tmp_path / "second.npz")
    assert first["server"]["pid"] == second["server"]["pid"], "the same server answered both tasks"
    assert first["server"]["loads"] == 0 and first["server"]["model"] is None, "the first task found no model"
    assert second["server"]["loads"] == 1, "the second task found the model loaded"
    assert second["server"]["model"] == load_model_files(tiny_model_dir).checksum
    assert not first["torch_imported"] and not second["torch_imported"], "a task's process needs no torch"
    for name in ("first", "second"):
        with np.load(tmp_path / f"{name}.npz") as data:
            for key, audio in expected.items():
                assert data[key].shape == audio.samples.shape
                assert np.abs(data[key + ".mel"] - audio.mel).max() < 1e-4


def warm(model_dir: Path, socket_dir: Path, **settings) -> WarmEngine:
    values = {"directory": socket_dir, "idle_s": 600, "startup_s": 600, **settings}
    return WarmEngine(load_model_files(model_dir), device="cpu", settings=WarmSettings(**values))


def test_a_server_killed_mid_request_is_replaced_and_every_chunk_comes_back_once(
    tiny_model_dir: Path, socket_dir: Path, expected: dict
) -> None:
    engine = warm(tiny_model_dir, socket_dir)
    engine.load()
    first_pid = engine.server["pid"]
    killed = []

    def kill_after_first_batch(progress) -> None:
        if not killed:  # the server is now in the middle of the request: it dies there
            killed.append(progress.done)
            os.kill(first_pid, signal.SIGKILL)

    got = engine.synthesize(make_references(), make_requests(), PARAMS, progress=kill_after_first_batch)
    assert killed == [1]
    assert engine.restarts == 1 and engine.local is None
    assert engine.load().server["pid"] != first_pid and engine.server["loads"] == 1
    assert [a.key for a in got] == [r.key for r in make_requests()], "every chunk once, in order"
    assert_same_audio({a.key: a for a in got}, expected)
    engine.close()


def test_a_wedged_server_is_killed_and_replaced(tiny_model_dir: Path, socket_dir: Path, expected: dict) -> None:
    engine = warm(tiny_model_dir, socket_dir, silence_s=20.0)
    engine.load()
    wedged = engine.server["pid"]
    os.kill(wedged, signal.SIGSTOP)  # alive, holding its socket, answering nothing
    try:
        got = engine.synthesize(make_references(), make_requests(), PARAMS)
    finally:
        if is_server(wedged, engine.socket_path):  # still there only if the engine did not do its job
            os.kill(wedged, signal.SIGKILL)
    assert engine.restarts == 1 and engine.load().server["pid"] != wedged and engine.server["loads"] == 1
    assert not Path(f"/proc/{wedged}").exists(), "the wedged server was killed (and reaped)"
    assert_same_audio({a.key: a for a in got}, expected)
    engine.close()


def test_a_bad_request_is_an_error_and_the_server_stays(tiny_model_dir: Path, socket_dir: Path) -> None:
    engine = warm(tiny_model_dir, socket_dir)
    references = make_references()
    too_long = [ChunkRequest("long", "anna", "A sentence that goes on. " * 400, 1.0, 1)]
    with pytest.raises(ValueError, match=r"chunk long: \d+ frames with its reference, over the model's 8192"):
        engine.synthesize(references, too_long, PARAMS)
    pid = engine.server["pid"]
    got = engine.synthesize(references, make_requests()[:1], PARAMS)
    assert engine.server["pid"] == pid and engine.restarts == 0 and len(got) == 1
    engine.close()


def test_a_server_that_cannot_start_falls_back_to_this_process(
    tiny_model_dir: Path, socket_dir: Path, expected: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_server(*args, **kwargs):
        raise RuntimeError("engine server exited with 1: no GPU driver")

    monkeypatch.setattr("voicebatch.synthesis.warm.start_server", no_server)
    engine = warm(tiny_model_dir, socket_dir, max_restarts=1)
    got = engine.synthesize(make_references(), make_requests(), PARAMS)
    assert engine.local is not None and engine.restarts == 1
    assert_same_audio({a.key: a for a in got}, expected)
    strict = warm(tiny_model_dir, socket_dir, max_restarts=0, fallback=False)
    with pytest.raises(ServerLost, match="no GPU driver"):
        strict.synthesize(make_references(), make_requests(), PARAMS)


def test_warm_engines_are_on_for_gpu_leases_by_default() -> None:
    assert warm_enabled("cuda:0", {}) and not warm_enabled("cpu", {})
    assert not warm_enabled("cuda:1", {"VOICEBATCH_WARM_ENGINE": "0"})
    assert warm_enabled("cpu", {"VOICEBATCH_WARM_ENGINE": "1"})


def test_messages_carry_arrays_raw_and_refuse_what_is_not_data() -> None:
    left, right = socket.socketpair()
    with left, right:
        arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros(0, dtype=np.float32), np.array([7])]
        wire.send(left, {"op": "x", "n": 1}, arrays)
        header, got = wire.recv(right)
        assert header == {"op": "x", "n": 1}
        assert [a.dtype for a in got] == [a.dtype for a in arrays]
        assert all(np.array_equal(a, b) for a, b in zip(got, arrays, strict=True))
        with pytest.raises(wire.ProtocolError, match="dtype object"):
            wire.send(left, {}, [np.array([{"a": 1}], dtype=object)])
        left.sendall(b"\xff\xff\xff\xff")
        with pytest.raises(wire.ProtocolError, match="header of 4294967295 bytes"):
            wire.recv(right)
        described = json.dumps({"arrays": [{"dtype": "float32", "shape": [4]}]}).encode()
        left.sendall(len(described).to_bytes(4, "big") + described + b"\0" * 8)
        left.shutdown(socket.SHUT_WR)  # the other half of the array never comes
        with pytest.raises(wire.ConnectionClosed, match="after 8 of 16 bytes"):
            wire.recv(right)
