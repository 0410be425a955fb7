"""GPU lease: one task per GPU through lock files that die with their process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voicebatch.synthesis.devices import lease_device, visible_gpu_ids


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
