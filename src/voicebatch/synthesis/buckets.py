"""Frame buckets: batches padded to a small fixed set of lengths, so compiled graphs are reused.

A CUDA graph (``compiled.py``, mode ``reduce-overhead``) is recorded once per input shape and
replayed after; with exact padding every batch has a new length, so nothing would be replayed.
Padded to the next bucket instead, a batch takes one of a few dozen lengths at most. The
buckets grow geometrically (from 1,024 frames on at most one eighth apart, on multiples of 128
frames), so bucketing pads such an item by at most 12.5 %: less than packing items of similar
length already does (``MIN_FILL`` lets a batch pad its items by up to 30 %), since a bucketed
batch holds items of one bucket only.

Padding is invisible in the results: the sampler masks padded positions out of attention,
the convolutions and the text embedding, exactly as it does for the shorter items of a batch
(tested against unbucketed synthesis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from voicebatch.synthesis.batching import SynthesisBatch

ALIGN = 128  # frames: sizes on multiples of this (friendly to the GPU's tiles)


@dataclass(frozen=True, slots=True)
class FrameBuckets:
    sizes: tuple[int, ...]  # ascending; a length past the largest is rounded up to ``ALIGN``

    def __post_init__(self) -> None:
        if not self.sizes or list(self.sizes) != sorted(set(self.sizes)) or self.sizes[0] < 1:
            raise ValueError(f"frame buckets must be distinct positive sizes in ascending order: {self.sizes}")

    def bucket_for(self, frames: int) -> int:
        """The smallest bucket holding ``frames``."""
        if frames < 1:
            raise ValueError(f"a batch of {frames} frames")
        for size in self.sizes:
            if size >= frames:
                return size
        return math.ceil(frames / ALIGN) * ALIGN

    def describe(self) -> str:
        return f"{len(self.sizes)} frame buckets, {self.sizes[0]}–{self.sizes[-1]}"


def frame_buckets(minimum: int = 256, maximum: int = 8192, ratio: float = 1.125) -> FrameBuckets:
    """Sizes from ``minimum`` to ``maximum`` (F5's longest input), each at most ``ratio`` times
    the last where ``ALIGN`` allows (below 1,024 frames the step is ``ALIGN`` itself). The
    default gives 28 buckets; a workload of F5's usual chunks (references of 5–12 s plus a
    sentence: 700–2,500 frames) touches about a dozen of them."""
    if ratio <= 1.0:
        raise ValueError(f"bucket ratio {ratio} must be above 1")
    if minimum % ALIGN or maximum % ALIGN or minimum > maximum:
        raise ValueError(f"bucket bounds {minimum}..{maximum} must be multiples of {ALIGN}, in order")
    sizes = [minimum]
    while sizes[-1] < maximum:
        step = max(sizes[-1] + ALIGN, math.floor(sizes[-1] * ratio / ALIGN) * ALIGN)
        sizes.append(min(step, maximum))
    return FrameBuckets(tuple(sizes))


DEFAULT_BUCKETS = frame_buckets()


def plan_bucketed_batches(
    frames: Sequence[int], buckets: FrameBuckets, frame_budget: int, max_items: int | None = None
) -> list[SynthesisBatch]:
    """Items grouped by bucket, longest bucket first, each batch within ``frame_budget``
    (``items × bucket`` frames, what the padded batch costs) and ``max_items``; an item whose
    bucket alone exceeds the budget gets a batch of its own. Within a bucket items keep the
    order of ``plan_batches`` (longest first, then by index), so the plan is deterministic."""
    order = sorted(range(len(frames)), key=lambda i: (-frames[i], i))
    batches: list[tuple[int, list[int]]] = []
    for index in order:
        bucket = buckets.bucket_for(frames[index])
        current = batches[-1] if batches else None
        if (
            current is not None
            and current[0] == bucket
            and (len(current[1]) + 1) * bucket <= frame_budget
            and (max_items is None or len(current[1]) < max_items)
        ):
            current[1].append(index)
        else:
            batches.append((bucket, [index]))
    return [SynthesisBatch(tuple(items), len(items) * bucket) for bucket, items in batches]
