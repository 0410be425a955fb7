"""Verification beside synthesis: batch N is checked while batch N+1 synthesizes.

A synthesize task alternates GPU work (a synthesis batch) with verification of that batch
(recogniser, aligner, signal checks). Run one after the other, the GPU waits while a batch is
checked. Here the checks of batch N run on a worker thread while the task's own thread
synthesizes batch N+1; batches are still handed back in order, each with its checks, so
staging sees exactly what the serial order gives (tested).

Re-takes need the engine too: ``SharedEngine`` lets one call at a time through, so a re-take
waits for the batch being synthesized and the engine never runs two batches at once. With a
warm engine (``synthesis/warm.py``) synthesis runs in another process and the overlap is
whole; in-process, it holds as far as the two threads leave each other the interpreter
(PyTorch, CTranslate2 and silero-vad release it in their kernels).

At most one batch is checked at a time and one waits, so memory holds three batches' audio at
most. ``Events`` records the order things happened in, for tests and the benchmark.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

G = TypeVar("G")  # a group of chunk requests
A = TypeVar("A")  # its synthesized audio
V = TypeVar("V")  # its verified result

OVERLAP_ENV = "VOICEBATCH_VERIFY_OVERLAP"


def overlap_enabled(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(OVERLAP_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Event:
    seq: int  # order of recording, across threads
    what: str  # synthesize_start/end, verify_start/end, delivered, handed_back
    group: int
    thread: str


class Events:
    """Thread-safe record of what happened in which order."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self.items: list[Event] = []

    def add(self, what: str, group: int) -> None:
        with self._lock:
            self.items.append(Event(next(self._counter), what, group, threading.current_thread().name))

    def seq(self, what: str, group: int) -> int:
        return next(e.seq for e in self.items if e.what == what and e.group == group)


class SharedEngine:
    """An engine used by the synthesis loop and the verification thread: one call at a time."""

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self._lock = threading.Lock()

    def synthesize(self, *args, **kwargs):
        with self._lock:
            return self.engine.synthesize(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


@dataclass(frozen=True, slots=True)
class Checked(Generic[G, V]):
    index: int
    group: G
    result: V
    synthesis_s: float
    verify_s: float


def synthesize_then_verify(
    groups: Sequence[G],
    synthesize: Callable[[G], A],
    verify: Callable[[G, A], V],
    *,
    deliver: Callable[[Checked[G, V]], None] | None = None,
    overlap: bool = True,
    events: Events | None = None,
) -> Iterator[Checked[G, V]]:
    """Each group synthesized and verified, handed back in order. With ``overlap`` the
    verification of group N runs on a worker thread while group N+1 synthesizes; a group that
    was checked is still handed back when a later synthesis fails, before the failure.
    ``deliver`` (staging) runs right after a group's verification, on the same thread and so
    in group order: a group is delivered as soon as it is checked, not when the next group's
    synthesis ends (a task killed meanwhile keeps it)."""
    log = events.add if events is not None else (lambda what, group: None)

    def synth(index: int, group: G) -> tuple[A, float]:
        log("synthesize_start", index)
        started = time.perf_counter()
        audio = synthesize(group)
        log("synthesize_end", index)
        return audio, time.perf_counter() - started

    def check(index: int, group: G, audio: A, synthesis_s: float) -> Checked[G, V]:
        log("verify_start", index)
        started = time.perf_counter()
        result = verify(group, audio)
        log("verify_end", index)
        done = Checked(index, group, result, synthesis_s, time.perf_counter() - started)
        if deliver is not None:
            deliver(done)
            log("delivered", index)
        return done

    def hand_back(done: Checked[G, V]) -> Checked[G, V]:
        log("handed_back", done.index)
        return done

    if not overlap:
        for index, group in enumerate(groups):
            yield hand_back(check(index, group, *synth(index, group)))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify") as pool:
        pending: Future | None = None
        for index, group in enumerate(groups):
            try:
                audio, seconds = synth(index, group)  # group index - 1 is being checked meanwhile
            except BaseException:
                if pending is not None:
                    yield hand_back(pending.result())
                raise
            previous, pending = pending, pool.submit(check, index, group, audio, seconds)
            if previous is not None:
                yield hand_back(previous.result())
        if pending is not None:
            yield hand_back(pending.result())
