"""Batch planning: within the frame budget, similar lengths together, every item once."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from voicebatch.inputs.chunking import f5_reference_text
from voicebatch.keys import chunk_seed
from voicebatch.synthesis.batching import estimate_frames, plan_batches

from conftest import tree_env

TESTS = Path(__file__).parent


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
    assert [b.items for b in plan_batches([100, 100], 200)] == [(0, 1)], "a batch may fill the budget exactly"
    assert [b.items for b in plan_batches([100, 70, 69], 1000)] == [(0, 1), (2,)], "70 % of the longest joins"


def test_frames_follow_f5s_duration_rule() -> None:
    """F5's infer_batch_process: ref_frames + ref_frames / ref_bytes * gen_bytes / speed, with a
    space after a reference ending in a one-byte character and speed 0.3 under 10 bytes."""
    five_seconds = 24_000 * 5  # 468 frames of 256 samples
    # "Hello there." + " " is 13 bytes; "Good morning." 13 bytes: twice the reference.
    assert estimate_frames(five_seconds, "Hello there.", "Good morning.", 1.0) == 468 + 468
    assert estimate_frames(five_seconds, "Hello there.", "Good morning.", 2.0) == 468 + 234
    assert estimate_frames(five_seconds, "Hello there.", "Hi.", 1.0) == 468 + int(468 / 13 * 3 / 0.3)
    assert estimate_frames(five_seconds, "Hello there.", "Hi, there!", 1.0) == 468 + 360, "10 bytes: the speed"
    # A reference ending in a three-byte character gets no space: "你好。" is 9 bytes.
    assert estimate_frames(five_seconds, "你好。", "你好。", 1.0) == 468 + int(468 / 9 * 9 / 0.3)
    assert estimate_frames(five_seconds, "你好。", "你好，你好。", 1.5) == 468 + int(468 / 9 * 18 / 1.5)
    assert f5_reference_text("Hi.") == "Hi. " and f5_reference_text("你好。") == "你好。"


def test_chunk_seed_is_deterministic_and_key_specific() -> None:
    assert len({chunk_seed(7, "abc"), chunk_seed(7, "abd"), chunk_seed(8, "abc")}) == 3
    assert all(0 <= chunk_seed(seed, key) < 2**31 for seed in (0, 7, 2**40) for key in ("", "abc", "κλειδί"))


# Seeds and keys as a worker computes them: for the test scripts' plan (chunk keys, seeds,
# output hashes) and a few raw chunk seeds.
SEEDS = r"""
import json
from voicebatch.keys import chunk_seed
from publish_helpers import plans
print(json.dumps({
    "raw": [chunk_seed(7, "abc"), chunk_seed(0, "κλειδί")],
    "plans": [[p.output_hash, [(r.key, r.seed) for r in p.requests]] for p in plans()],
}))
"""


def seeds_in_a_new_process(hash_seed: str) -> dict:
    env = tree_env(PYTHONHASHSEED=hash_seed)
    env["PYTHONPATH"] += os.pathsep + str(TESTS)  # publish_helpers
    result = subprocess.run([sys.executable, "-c", SEEDS], env=env, capture_output=True, text=True, cwd=TESTS.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_seeds_and_keys_are_the_same_in_every_process() -> None:
    """ "Same seed, same audio" holds across workers and machines: two processes with different
    string-hash salts (PYTHONHASHSEED) derive the same chunk keys, seeds and output hashes."""
    first, second = seeds_in_a_new_process("1"), seeds_in_a_new_process("2")
    assert first == second
    assert first["raw"] == [chunk_seed(7, "abc"), chunk_seed(0, "κλειδί")]
    seeds = [seed for _, requests in first["plans"] for _, seed in requests]
    assert len(seeds) >= 3 and len(set(seeds)) == len(seeds), "each chunk its own seed"


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
