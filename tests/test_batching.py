"""Batch planning: within the frame budget, similar lengths together, every item once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voicebatch.synthesis.batching import chunk_seed, plan_batches


@given(st.lists(st.integers(1, 3000), min_size=1, max_size=80), st.integers(500, 20000))
def test_every_item_once_and_within_budget(frames: list[int], budget: int) -> None:
    batches = plan_batches(frames, budget)
    assert sorted(i for b in batches for i in b.items) == list(range(len(frames)))
    for batch in batches:
        longest = max(frames[i] for i in batch.items)
        assert batch.frames == len(batch) * longest
        assert batch.frames <= budget or len(batch) == 1
        assert min(frames[i] for i in batch.items) >= 0.7 * longest  # similar lengths only


def test_sorted_by_length_so_padding_is_small() -> None:
    frames = [100, 900, 120, 880, 110, 905]
    batches = plan_batches(frames, 2000)
    assert [[frames[i] for i in b.items] for b in batches] == [[905, 900], [880], [120, 110, 100]]
    assert plan_batches(frames, 10_000, max_items=2)[0].items == (5, 1)


def test_chunk_seed_is_deterministic_and_key_specific() -> None:
    assert chunk_seed(7, "abc") == chunk_seed(7, "abc")
    assert len({chunk_seed(7, "abc"), chunk_seed(7, "abd"), chunk_seed(8, "abc")}) == 3
    assert 0 <= chunk_seed(7, "abc") < 2**31
