"""GPU lease: one task per GPU through lock files that die with their process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicebatch.synthesis.devices import NoGPUError, gpu_required, lease_device, visible_gpu_ids


def test_no_gpu_means_cpu(tmp_path: Path) -> None:
    assert lease_device(tmp_path, gpu_ids=[]).device == "cpu"


def test_each_lease_takes_a_different_free_gpu_and_release_frees_it(tmp_path: Path) -> None:
    first = lease_device(tmp_path, gpu_ids=["0", "1"])
    second = lease_device(tmp_path, gpu_ids=["0", "1"])
    assert (first.device, second.device) == ("cuda:0", "cuda:1")
    with pytest.raises(TimeoutError, match="no free GPU among 0, 1"):
        lease_device(tmp_path, gpu_ids=["0", "1"], timeout=0, poll=0)
    first.release()
    with lease_device(tmp_path, gpu_ids=["0", "1"]) as third:
        assert third.device == "cuda:0"
    second.release()


def test_a_killed_holder_frees_its_gpu(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom voicebatch.synthesis.devices import lease_device\n"
        f"lease = lease_device(Path({str(tmp_path)!r}), gpu_ids=['7'])\nprint(lease.device, flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "cuda:0"
    with pytest.raises(TimeoutError):
        lease_device(tmp_path, gpu_ids=["7"], timeout=0, poll=0)
    holder.kill()
    holder.wait()
    assert lease_device(tmp_path, gpu_ids=["7"], timeout=0, poll=0).physical_id == "7"


def test_cuda_visible_devices_names_the_physical_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpu_ids(lambda: 2) == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpu_ids(lambda: 0) == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpu_ids(lambda: 3) == ["0", "1", "2"]


def test_a_gpu_worker_refuses_the_cpu_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VOICEBATCH_REQUIRE_GPU (set on compose's and Helm's GPU workers): no GPU is an error, not the CPU."""
    monkeypatch.setenv("VOICEBATCH_REQUIRE_GPU", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for this process, whatever the machine has
    with pytest.raises(NoGPUError, match="refusing to synthesize on the CPU") as raised:
        lease_device(tmp_path)
    message = str(raised.value)
    assert "built for CUDA" in message and "driver" in message and "CUDA_VISIBLE_DEVICES=''" in message
    assert not list(tmp_path.iterdir()), "no lock taken"
    # A GPU that is there is leased as usual with the switch on.
    assert lease_device(tmp_path, gpu_ids=["3"]).device == "cuda:0"


def test_without_the_switch_the_cpu_fallback_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("VOICEBATCH_REQUIRE_GPU", raising=False)
    with caplog.at_level(logging.WARNING, logger="voicebatch.synthesis.devices"):
        assert lease_device(tmp_path, gpu_ids=[]).device == "cpu"
    assert "VOICEBATCH_REQUIRE_GPU=1" in caplog.text


@pytest.mark.parametrize(("value", "required"), [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)])
def test_require_gpu_switch_values(value: str, required: bool) -> None:
    assert gpu_required({"VOICEBATCH_REQUIRE_GPU": value}) is required


def test_device_check_command_fails_without_a_gpu() -> None:
    """`python -m voicebatch.synthesis.devices`: the GPU worker's start check and healthcheck."""
    result = subprocess.run(
        [sys.executable, "-m", "voicebatch.synthesis.devices", "--count"],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        timeout=120,
    )
    assert result.returncode == 1, result.stdout
    assert "no usable GPU" in result.stderr and "driver >= 580" in result.stderr
