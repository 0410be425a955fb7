"""GPU lease: a task on a multi-GPU worker takes a free GPU through a lock file per device.

fcntl locks belong to the open file and die with the process, so a crashed or killed
task frees its GPU at once; nothing to clean up. ``CUDA_VISIBLE_DEVICES`` is honoured: the
lock files are named after the physical device ids it lists, so two workers with
different visible sets on one host still agree on which GPU is which.

A worker that is meant to have GPUs sets ``VOICEBATCH_REQUIRE_GPU=1``: with no usable GPU
the lease then fails with the reason (driver too old for the CUDA build, no device passed
into the container, ...) instead of running synthesis on the CPU at ~90 s per sentence.
``python -m voicebatch.synthesis.devices`` prints the same diagnosis and
exits non-zero: the GPU worker's start check and healthcheck.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(os.environ.get("VOICEBATCH_GPU_LOCK_DIR", "/tmp/voicebatch-gpu-locks"))
REQUIRE_GPU_ENV = "VOICEBATCH_REQUIRE_GPU"
# What to check when CUDA is unusable; torch 2.11's default wheels are built for CUDA 13.
CUDA_HINT = (
    "check: the NVIDIA driver supports this torch build's CUDA (torch 2.11's default CUDA 13 build needs "
    "driver >= 580; for older drivers build the image with --build-arg TORCH_CUDA=cu128), the GPU is passed "
    "into the container (NVIDIA Container Toolkit; compose `deploy.resources.reservations.devices`, "
    "Kubernetes `nvidia.com/gpu` limits), and the GPU model is supported by this CUDA version"
)


class NoGPUError(RuntimeError):
    """A GPU was required (``VOICEBATCH_REQUIRE_GPU``) and none is usable."""


def gpu_required(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(REQUIRE_GPU_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def cuda_diagnosis() -> str:
    """One line on why this process sees no usable GPU: torch's build, what CUDA said, the driver."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
    facts = [f"torch {torch.__version__} built for CUDA {torch.version.cuda or 'none (CPU-only build)'}"]
    facts.append(f"cuda available: {available}, devices: {count}")
    driver = Path("/proc/driver/nvidia/version")
    facts.append(f"driver: {driver.read_text().splitlines()[0].strip()}" if driver.exists() else "no NVIDIA driver")
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if name in os.environ:
            facts.append(f"{name}={os.environ[name]!r}")
    facts += [f"torch said: {' '.join(str(w.message).split())}" for w in caught]
    return "; ".join(facts)


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
    require_gpu: bool | None = None,
) -> DeviceLease:
    """Take a free GPU (waiting up to ``timeout`` seconds) or, with none, the CPU.

    With ``require_gpu`` (default: ``VOICEBATCH_REQUIRE_GPU`` from the environment) no GPU
    raises :class:`NoGPUError` naming the reason instead of falling back to the CPU.
    """
    ids = visible_gpu_ids() if gpu_ids is None else gpu_ids
    if not ids:
        if gpu_required() if require_gpu is None else require_gpu:
            reason = cuda_diagnosis() if gpu_ids is None else "no GPU ids given"
            raise NoGPUError(
                f"{REQUIRE_GPU_ENV} is set but no GPU is usable, refusing to synthesize on the CPU: {reason}; "
                f"{CUDA_HINT}"
            )
        log.warning(
            "no GPU visible: synthesizing on the CPU (about 90 s per sentence with the real model); "
            "set %s=1 on GPU workers to fail instead",
            REQUIRE_GPU_ENV,
        )
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


def main(argv: list[str] | None = None) -> int:
    """Check this process's GPUs: the GPU worker's start check and healthcheck."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--count", action="store_true", help="print only the number of usable GPUs")
    parser.add_argument(
        "--probe", action="store_true", help="also allocate on every GPU (creates a CUDA context on each)"
    )
    args = parser.parse_args(argv)
    import torch

    ids = visible_gpu_ids()
    if not ids:
        print(f"no usable GPU: {cuda_diagnosis()}; {CUDA_HINT}", file=sys.stderr)
        return 1
    for index, physical in enumerate(ids):
        if args.probe:
            # A driver/toolkit mismatch can pass is_available() and fail on the first kernel.
            torch.ones(1, device=f"cuda:{index}").add_(1)
        if not args.count:
            props = torch.cuda.get_device_properties(index)
            print(
                f"GPU {physical} (cuda:{index}): {props.name}, {props.total_memory / 2**30:.1f} GiB, "
                f"compute capability {props.major}.{props.minor}"
            )
    print(len(ids) if args.count else f"{len(ids)} usable GPU(s), torch {torch.__version__}, CUDA {torch.version.cuda}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
