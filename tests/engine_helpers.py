"""Chunks and references the engine tests share (CPU in test_engine.py, CUDA in test_cuda.py):
lengths that differ a lot, two voices, one of them quiet (its RMS is raised and restored)."""

from __future__ import annotations

from voicebatch.synthesis.engine import ChunkRequest, Reference

from audio_helpers import speech_like

TEXTS = [
    ("anna", "Hi."),
    ("anna", "A much longer sentence that goes on for quite a while, so that lengths differ a lot."),
    ("ben", "Medium length text for the batch."),
    ("ben", "Another one, a little longer than the medium one."),
    ("anna", "Short again!"),
]


def make_references() -> dict[str, Reference]:
    anna = speech_like(4.0, [(0.2, 3.8)], rate=24_000)
    ben = speech_like(6.5, [(0.3, 3.0), (3.4, 6.2)], rate=24_000, level=0.05)
    return {
        "anna": Reference("anna", anna, "Hello, my name is Anna."),
        "ben": Reference("ben", ben, "大家好，我是本。"),
    }


def make_requests(texts: list[tuple[str, str]] = TEXTS) -> list[ChunkRequest]:
    return [ChunkRequest(f"key-{i}", voice, text, 1.0, 1000 + i) for i, (voice, text) in enumerate(texts)]
