"""Frame buckets: the set of sizes, packing by bucket, and bucketed synthesis equal to unbucketed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from voicebatch.synthesis.batching import estimate_frames
from voicebatch.synthesis.buckets import ALIGN, DEFAULT_BUCKETS, FrameBuckets, frame_buckets, plan_bucketed_batches
from voicebatch.synthesis.engine import Engine, SynthesisParams
from voicebatch.synthesis.models import load_model_files

from engine_helpers import TEXTS, make_references, make_requests

PARAMS = SynthesisParams(nfe_steps=8)


def test_default_buckets_are_few_aligned_and_pad_long_items_by_at_most_an_eighth() -> None:
    sizes = DEFAULT_BUCKETS.sizes
    assert len(sizes) <= 32 and sizes[0] == 256 and sizes[-1] == 8192  # F5's longest input
    assert all(s % ALIGN == 0 for s in sizes) and list(sizes) == sorted(set(sizes))
    for frames in range(1024, 8193, 7):  # every length from 1,024 frames on, in steps
        bucket = DEFAULT_BUCKETS.bucket_for(frames)
        assert frames <= bucket <= frames * 1.125 + ALIGN, (frames, bucket)
        assert not any(frames <= s < bucket for s in sizes), "the smallest bucket that holds it"


def test_bucket_sizes_and_their_errors() -> None:
    assert frame_buckets(256, 1024, 1.5).sizes == (256, 384, 512, 768, 1024)
    assert FrameBuckets((128, 256)).bucket_for(300) == 384  # past the largest: rounded up to ALIGN
    for bad in ((), (256, 128), (128, 128)):
        with pytest.raises(ValueError, match="ascending"):
            FrameBuckets(bad)
    with pytest.raises(ValueError, match="multiples"):
        frame_buckets(100, 1000)
    with pytest.raises(ValueError, match="above 1"):
        frame_buckets(ratio=1.0)


@given(
    frames=st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=60),
    budget=st.integers(min_value=256, max_value=40_000),
    max_items=st.none() | st.integers(min_value=1, max_value=8),
)
def test_bucketed_plans_hold_every_item_once_one_bucket_a_batch_within_budget(
    frames: list[int], budget: int, max_items: int | None
) -> None:
    batches = plan_bucketed_batches(frames, DEFAULT_BUCKETS, budget, max_items)
    placed = [i for b in batches for i in b.items]
    assert sorted(placed) == list(range(len(frames)))
    for batch in batches:
        buckets = {DEFAULT_BUCKETS.bucket_for(frames[i]) for i in batch.items}
        assert len(buckets) == 1
        (bucket,) = buckets
        assert batch.frames == len(batch) * bucket
        assert len(batch) == 1 or batch.frames <= budget
        assert max_items is None or len(batch) <= max_items
    # Longest bucket first, as the unbucketed plan goes longest item first.
    firsts = [DEFAULT_BUCKETS.bucket_for(frames[b.items[0]]) for b in batches]
    assert firsts == sorted(firsts, reverse=True)


@pytest.fixture(scope="module")
def engines(tiny_model_dir: Path) -> tuple[Engine, Engine]:
    files = load_model_files(tiny_model_dir)
    return Engine(files, device="cpu").load(), Engine(files, device="cpu", buckets=True).load()


@pytest.mark.parametrize("max_batch", [1, 8])
def test_bucketed_synthesis_matches_unbucketed_and_really_pads_to_buckets(engines, max_batch: int) -> None:
    plain, bucketed = engines
    assert plain.buckets is None and bucketed.buckets == DEFAULT_BUCKETS
    references, requests = make_references(), make_requests()
    shapes: list[int] = []
    hook = bucketed.model.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(kwargs["x"].shape[1]), with_kwargs=True
    )
    try:
        got = bucketed.synthesize(references, requests, PARAMS, max_batch=max_batch)
    finally:
        hook.remove()
    expected = plain.synthesize(references, requests, PARAMS, max_batch=max_batch)
    assert len({a.frames for a in expected}) == len(TEXTS), "lengths must differ for the test to mean anything"
    durations = [
        estimate_frames(references[r.voice].samples.shape[0], references[r.voice].text, r.text, r.speed)
        for r in requests
    ]
    # Every forward pass has the length of its items' bucket, and not their own length.
    assert set(shapes) == {DEFAULT_BUCKETS.bucket_for(d) for d in durations}
    assert not set(durations) & set(shapes)
    for a, b in zip(got, expected, strict=True):
        assert a.key == b.key and a.frames == b.frames
        assert np.abs(a.mel - b.mel).max() < 1e-3
        assert a.samples.shape == b.samples.shape


def test_the_sampler_refuses_a_bucket_shorter_than_the_batch(engines) -> None:
    from voicebatch.synthesis.sampler import sample_batch

    plain, _ = engines
    cond = torch.zeros(1, 50, 100)
    text = torch.zeros(1, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="cannot hold an item of 80"):
        sample_batch(plain.model, cond, text, [50], [80], [1], steps=2, frames=64)
