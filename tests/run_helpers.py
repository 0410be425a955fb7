"""The run's stages (voicebatch.run) without Airflow: inputs, a counting fake engine, one call per run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicebatch.errors import InputError
from voicebatch.locations.storage import Storage, open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.ingest import ingest_voice, list_voice_names
from voicebatch.run.layout import staging_prefix
from voicebatch.run.outcomes import batch_part, record_stage
from voicebatch.run.plan import plan_run
from voicebatch.run.publish import publish_run
from voicebatch.run.report import report_run
from voicebatch.run.synthesize import synthesize_batch
from voicebatch.synthesis.engine import ChunkAudio, ChunkRequest, Reference, SynthesisParams
from voicebatch.synthesis.models import ModelFiles

from audio_helpers import speech_like, srt, write_audio

CUES = [(0.5, 3.0, "The first sentence."), (3.3, 6.5, "The second one, longer.")]


def make_voice(root: Path, name: str) -> Path:
    """A voice folder: a speech-like recording and its SRT transcript."""
    write_audio(root / name / "take.wav", speech_like(7.0, [(a, b) for a, b, _ in CUES]))
    (root / name / "take.srt").write_text(srt(CUES), encoding="utf-8")
    return root / name


def fake_model() -> ModelFiles:
    files = {"model.safetensors": {"sha256": "a" * 64, "size": 1}}
    return ModelFiles("fake-model", Path("/nonexistent"), {"random_weights": True}, "c" * 64, files)


@dataclass
class FakeEngine:
    """Stands in for the F5 engine where the audio's content does not matter: a tone per
    chunk, and a record of every chunk it was asked to speak."""

    device: str = "cpu"
    spoken: list[str] = field(default_factory=list)
    files: ModelFiles = field(default_factory=lambda: fake_model())  # random weights: no re-takes

    def synthesize(
        self,
        references: Mapping[str, Reference],
        chunks: Sequence[ChunkRequest],
        params: SynthesisParams,
        **_: object,
    ) -> list[ChunkAudio]:
        self.spoken += [c.key for c in chunks]
        t = np.arange(24_000) / 24_000
        tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        return [ChunkAudio(c.key, tone, 94, np.zeros((100, 94), dtype=np.float32)) for c in chunks]


def run_stages(
    config: RunConfig,
    out: Storage,
    run_id: str,
    engine: object,
    *,
    model: ModelFiles | None = None,
    open_uri: Callable[[str], Storage] = open_storage,
) -> dict:
    """Every stage of one run in order, each recording its outcome as the DAG's tasks do."""
    staging = staging_prefix(run_id)
    run = {"dag_id": "test", "run_id": run_id}
    with record_stage(out, staging, "list_voices"):
        names = list_voice_names(config, out, staging, open_uri)
    for name in names:
        with contextlib.suppress(InputError):  # a bad voice fails alone; its outcome is staged
            ingest_voice(name, config, out, staging, open_uri)
    with record_stage(out, staging, "plan"):
        planned = plan_run(config, out, staging, model or fake_model(), open_uri, None)
    for key in planned["batches"]:
        with record_stage(out, staging, "synthesize", batch_part(key)):
            synthesize_batch(key, out, staging, engine)
    with record_stage(out, staging, "publish"):
        published = publish_run(out, staging, config.settings, run)
    summary = report_run(out, staging, dag_id="test", run_id=run_id, started_at=None)
    return {"plan": planned, "published": published, "summary": summary}
