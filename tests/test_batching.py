"""Batch planning: within the frame budget, similar lengths together, every item once."""

from __future__ import annotations

import itertools

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


@given(
    st.lists(st.integers(100, 3000), min_size=1, max_size=60),
    st.sampled_from([7, 32]),
    st.floats(0.5, 60.0),
    st.integers(1, 20),
)
def test_tasks_cover_every_item_in_order_within_gpu_time_and_count(
    frames: list[int], nfe: int, target: float, cap: int
) -> None:
    from voicebatch.synthesis.batching import estimate_gpu_seconds, plan_tasks

    tasks = plan_tasks(frames, nfe, target, cap)
    assert [i for t in tasks for i in t] == list(range(len(frames)))  # every item once, order kept
    for task in tasks:
        cost = sum(frames[i] for i in task) * nfe * 7.2e-6  # the H200-measured rate, computed here
        assert len(task) <= cap
        assert cost <= target + 1e-9 or len(task) == 1, "only a lone item may exceed the target"
        assert abs(sum(estimate_gpu_seconds(frames[i], nfe) for i in task) - cost) < 1e-9
    for first, second in itertools.pairwise(tasks):
        # a task closed early only because the next item would not fit (or the cap was reached)
        head = frames[second[0]] * nfe * 7.2e-6
        assert len(first) == cap or sum(frames[i] for i in first) * nfe * 7.2e-6 + head > target


def test_default_tasks_hold_ten_times_the_measured_fixed_cost() -> None:
    from voicebatch.synthesis.batching import DEFAULT_TASK_GPU_SECONDS, plan_tasks

    assert DEFAULT_TASK_GPU_SECONDS >= 10 * 14.4  # fixed cost of a task on an H200 (benchmarks/RESULTS.md)
    # 2,000 chunks of ~1,600 frames at NFE 32 (~0.37 GPU s each): ~400 per task, not 64
    tasks = plan_tasks([1600] * 2000, 32, DEFAULT_TASK_GPU_SECONDS, 1024)
    assert [len(t) for t in tasks[:-1]] == [406] * (len(tasks) - 1)
