"""GPU lease: a task on a multi-GPU worker takes a free GPU through a lock file per device.

fcntl locks belong to the open file and die with the process, so a crashed or killed
task frees its GPU at once; nothing to clean up. ``CUDA_VISIBLE_DEVICES`` is honoured: the
lock files are named after the physical device ids it lists, so two workers with
different visible sets on one host still agree on which GPU is which.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(os.environ.get("VOICEBATCH_GPU_LOCK_DIR", "/tmp/voicebatch-gpu-locks"))


@dataclass(frozen=True, slots=True)
class DeviceLease:
    device: str  # "cuda:N" (N: index among the visible devices) or "cpu"
    physical_id: str | None  # the id from CUDA_VISIBLE_DEVICES (or the index), None for CPU
    handle: IO[str] | None = None

    def release(self) -> None:
        if self.handle is not None and not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()

    def __enter__(self) -> DeviceLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def visible_gpu_ids(count: Callable[[], int] | None = None) -> list[str]:
    """Physical ids of the GPUs this process may use, in CUDA's index order."""
    if count is None:
        import torch

        count = torch.cuda.device_count if torch.cuda.is_available() else (lambda: 0)
    n = count()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return listed[:n]
    return [str(i) for i in range(n)]


def lease_device(
    lock_dir: Path = DEFAULT_LOCK_DIR,
    *,
    gpu_ids: list[str] | None = None,
    timeout: float = 3600.0,
    poll: float = 2.0,
) -> DeviceLease:
    """Take a free GPU (waiting up to ``timeout`` seconds) or, with none, the CPU."""
    ids = visible_gpu_ids() if gpu_ids is None else gpu_ids
    if not ids:
        return DeviceLease("cpu", None)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for index, physical in enumerate(ids):
            handle = (lock_dir / f"gpu-{physical}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            log.info("leased GPU %s (cuda:%d)", physical, index)
            return DeviceLease(f"cuda:{index}", physical, handle)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {', '.join(ids)} after {timeout:.0f} s (locks in {lock_dir})")
        # All GPUs busy: the Airflow pool should prevent this; wait rather than oversubscribe.
        time.sleep(poll)
