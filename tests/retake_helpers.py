"""Old and new outputs of a re-take, compared on their published audio."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 24_000


def manifest_path(root: Path, manifest: dict) -> Path:
    return root / "audio" / manifest["script_id"] / manifest["output_hash"] / "manifest.json"


def audio_of(root: Path, manifest: dict) -> np.ndarray:
    (key,) = [o["key"] for o in manifest["outputs"] if o["key"].endswith(".wav")]
    samples, rate = sf.read(io.BytesIO((root / key).read_bytes()), dtype="float64")
    assert rate == RATE
    return samples


def sentence_rows(root: Path, manifest: dict) -> list[dict]:
    (key,) = [o["key"] for o in manifest["outputs"] if o["key"].endswith(".csv")]
    return [r for r in csv.DictReader(io.StringIO((root / key).read_text())) if r["level"] == "sentence"]


def cut(samples: np.ndarray, chunk: dict) -> np.ndarray:
    return samples[round(chunk["start"] * RATE) : round(chunk["end"] * RATE)]


def matched(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two cuts of one chunk, aligned: chunk times are kept to the millisecond (24 samples),
    so the new cut is slid by up to 24 samples to where it best matches the old one."""
    inner = old[24:-24]
    best = min(range(49), key=lambda lag: np.sum((new[lag : lag + inner.size] - inner) ** 2))
    piece = new[best : best + inner.size]
    return inner[: piece.size], piece


def one_gain(
    root: Path, old: dict, new: dict, retaken: Collection[int], new_root: Path | None = None
) -> tuple[float, float, dict[int, float]]:
    """(gain, residual, re-taken chunk -> its residual): both files cut by their own manifest's
    chunk times, one scalar gain fitted by least squares across every chunk not re-taken, and the
    RMS of what it leaves, relative to the signal's."""
    before, after = audio_of(root, old), audio_of(new_root or root, new)
    pairs = [matched(cut(before, o), cut(after, n)) for o, n in zip(old["chunks"], new["chunks"], strict=True)]
    x = np.concatenate([p[0] for i, p in enumerate(pairs) if i not in retaken])
    y = np.concatenate([p[1] for i, p in enumerate(pairs) if i not in retaken])
    gain = float(x @ y / (x @ x))

    def left(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(np.mean((b - gain * a) ** 2)) / np.sqrt(np.mean(b**2)))

    return gain, left(x, y), {i: left(*pairs[i]) for i in retaken}
