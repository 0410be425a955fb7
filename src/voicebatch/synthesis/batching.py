"""Packing chunks into batches within a frame budget, bucketed by length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voicebatch.inputs.chunking import f5_reference_text
from voicebatch.settings import DEFAULTS


@dataclass(frozen=True, slots=True)
class SynthesisBatch:
    items: tuple[int, ...]  # indices into the request list, longest first
    frames: int  # padded size: len(items) * longest item's frames

    def __len__(self) -> int:
        return len(self.items)


# An item joins a batch only if it is at least this fraction of the batch's longest item:
# padding then wastes at most 30 % of a batch's compute.
MIN_FILL = 0.7


def plan_batches(frames: Sequence[int], frame_budget: int, max_items: int | None = None) -> list[SynthesisBatch]:
    """Greedy packing of items sorted by length into buckets of similar length. A batch
    costs ``items × longest`` frames (every item is padded to the longest) and stays within
    ``frame_budget``; an item longer than the budget gets a batch of its own."""
    order = sorted(range(len(frames)), key=lambda i: (-frames[i], i))
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        if (
            current
            and (len(current) + 1) * frames[current[0]] <= frame_budget
            and frames[index] >= MIN_FILL * frames[current[0]]
            and (max_items is None or len(current) < max_items)
        ):
            current.append(index)
        else:
            batches.append([index])
    return [SynthesisBatch(tuple(b), len(b) * frames[b[0]]) for b in batches]


# Measured on an H200 (benchmarks/RESULTS.md): the engine spends about 7.2 microseconds of GPU
# time per frame (reference + generated) and sampling step, at NFE 32 and at EPSS 7 alike.
GPU_SECONDS_PER_FRAME_STEP = 7.2e-6
# A synthesize task's fixed cost (imports, CUDA start, model load, warm-up) measured 14.4 s on
# that GPU; tasks of ten times that keep it under 10 % of the task.
DEFAULT_TASK_GPU_SECONDS: float = DEFAULTS["task_gpu_seconds"]


def estimate_gpu_seconds(frames: int, nfe_steps: int) -> float:
    """GPU seconds a chunk of ``frames`` total frames costs at ``nfe_steps`` (H200-measured)."""
    return frames * nfe_steps * GPU_SECONDS_PER_FRAME_STEP


def plan_tasks(
    frames: Sequence[int], nfe_steps: int, task_gpu_seconds: float, max_chunks: int
) -> list[tuple[int, ...]]:
    """Consecutive runs of items (in the given order) for synthesize tasks: a task closes
    when the next item would take its estimated GPU time past ``task_gpu_seconds`` or it holds
    ``max_chunks`` items; every task holds at least one item."""
    tasks: list[list[int]] = []
    seconds = 0.0
    for index, n in enumerate(frames):
        cost = estimate_gpu_seconds(n, nfe_steps)
        if not tasks or len(tasks[-1]) >= max_chunks or (seconds + cost > task_gpu_seconds and tasks[-1]):
            tasks.append([])
            seconds = 0.0
        tasks[-1].append(index)
        seconds += cost
    return [tuple(t) for t in tasks]


def estimate_frames(ref_samples: int, ref_text: str, text: str, speed: float, hop_length: int = 256) -> int:
    """F5-TTS's total frames for a chunk (reference included): the reference's frames plus
    the chunk's UTF-8 bytes at the reference's frames per byte, divided by the speed (0.3 for
    text under 10 bytes, F5's rule). ``ref_text`` gets F5's trailing space when it ends in
    a one-byte character."""
    ref_text = f5_reference_text(ref_text)
    ref_frames = ref_samples // hop_length
    gen_bytes = len(text.encode("utf-8"))
    speed = 0.3 if gen_bytes < 10 else speed
    return ref_frames + int(ref_frames / len(ref_text.encode("utf-8")) * gen_bytes / speed)
