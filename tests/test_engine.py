"""The real f5_tts loading and sampling code, with the tiny model on CPU, through the model store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from voicebatch.synthesis.engine import ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.model_store import ModelStore

from engine_helpers import TEXTS, make_references, make_requests

PARAMS = SynthesisParams(nfe_steps=8)
BATCH = 8  # explicit: on CPU the engine defaults to batches of one


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    files = ModelStore(hub=False).resolve(str(tiny_model_dir))
    return Engine(files, device="cpu").load()


@pytest.fixture(scope="module")
def references() -> dict[str, Reference]:
    return make_references()


def requests() -> list[ChunkRequest]:
    return make_requests()


def test_engine_builds_f5_model_with_padding_aware_attention_and_chosen_dtype(engine: Engine) -> None:
    from voicebatch.synthesis.attention import PaddingAwareAttention

    assert engine.device == "cpu" and engine.dtype == torch.float32 and engine.backend == "sliced"
    processors = [block.attn.processor for block in engine.model.transformer.transformer_blocks]
    assert all(isinstance(p, PaddingAwareAttention) and p.backend == "sliced" for p in processors)
    assert type(engine.model).__module__ == "f5_tts.model.cfm"


def test_single_item_matches_f5s_own_cfm_sample_exactly(engine: Engine, references: dict[str, Reference]) -> None:
    from f5_tts.model.utils import convert_char_to_pinyin

    from voicebatch.synthesis.sampler import sample_batch

    ref = references["anna"]
    cond = engine.model.mel_spec(torch.from_numpy(ref.samples)[None]).permute(0, 2, 1)
    text = convert_char_to_pinyin([ref.text + " Good morning."])
    duration = cond.shape[1] + 60
    theirs, _ = engine.model.sample(
        cond=cond, text=text, duration=duration, steps=8, cfg_strength=2.0, sway_sampling_coef=-1.0, seed=1234
    )
    from f5_tts.model.utils import list_str_to_idx

    ours = sample_batch(
        engine.model,
        cond,
        list_str_to_idx(text, engine.model.vocab_char_map),
        torch.tensor([cond.shape[1]]),
        torch.tensor([duration]),
        [1234],
        steps=8,
        cfg_strength=2.0,
        sway_sampling_coef=-1.0,
    )
    assert torch.equal(ours, theirs)


def test_batched_and_one_by_one_agree_within_1e_3_mel(engine: Engine, references: dict[str, Reference]) -> None:
    batched = engine.synthesize(references, requests(), PARAMS, max_batch=BATCH)
    single = [engine.synthesize(references, [r], PARAMS)[0] for r in requests()]
    assert len({a.frames for a in batched}) == len(TEXTS), "lengths must differ for the test to mean anything"
    for a, b in zip(batched, single, strict=True):
        assert a.key == b.key and a.frames == b.frames
        assert np.abs(a.mel - b.mel).max() < 1e-3
        assert a.samples.shape[0] == a.frames * 256


def test_same_inputs_and_seed_twice_are_identical(engine: Engine, references: dict[str, Reference]) -> None:
    first = engine.synthesize(references, requests(), PARAMS, max_batch=BATCH)
    second = engine.synthesize(references, requests(), PARAMS, max_batch=BATCH)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(first, second, strict=True))
    reseeded = [ChunkRequest(r.key, r.voice, r.text, r.speed, r.seed + 1) for r in requests()]
    third = engine.synthesize(references, reseeded, PARAMS, max_batch=BATCH)
    assert not np.array_equal(first[1].samples, third[1].samples)


def test_a_chunks_audio_does_not_depend_on_its_batch_mates(engine: Engine, references: dict[str, Reference]) -> None:
    everything = engine.synthesize(references, requests(), PARAMS, max_batch=BATCH)
    fewer = engine.synthesize(references, requests()[1:3], PARAMS, max_batch=BATCH)
    assert np.abs(everything[1].mel - fewer[0].mel).max() < 1e-3


def test_cpu_runs_batches_of_one_unless_asked(engine: Engine, references: dict[str, Reference]) -> None:
    seen = []
    engine.synthesize(references, requests(), PARAMS, progress=seen.append)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]


def test_progress_reports_chunks_audio_seconds_and_rtf(engine: Engine, references: dict[str, Reference]) -> None:
    seen = []
    out = engine.synthesize(references, requests(), PARAMS, batch_frames=600, max_batch=BATCH, progress=seen.append)
    assert len(seen) >= 2 and seen[-1].done == seen[-1].total == len(TEXTS)
    assert seen[-1].audio_seconds == pytest.approx(sum(a.samples.shape[0] for a in out) / 24_000)
    assert seen[-1].rtf > 0 and [p.done for p in seen] == sorted(p.done for p in seen)


def test_out_of_memory_splits_the_batch_then_fails_clearly(
    engine: Engine, references: dict[str, Reference], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = engine.synthesize(references, requests(), PARAMS)
    real = Engine._sample
    sizes = []

    def limited(self, items, *args):  # a GPU that fits two chunks at a time
        sizes.append(len(items))
        if len(items) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, items, *args)

    monkeypatch.setattr(Engine, "_sample", limited)
    got = engine.synthesize(references, requests(), PARAMS, batch_frames=100_000, max_batch=BATCH)
    assert max(sizes) > 2, "the simulated GPU must have refused a batch"
    assert all(np.abs(a.mel - b.mel).max() < 1e-3 for a, b in zip(got, expected, strict=True))

    def nothing_fits(self, items, *args):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(Engine, "_sample", nothing_fits)
    with pytest.raises(RuntimeError, match=r"CUDA out of memory on a single chunk .* lower batch_frames"):
        engine.synthesize(references, requests()[:2], PARAMS)


def test_a_chunk_longer_than_the_models_positions_is_refused_by_name(
    engine: Engine, references: dict[str, Reference]
) -> None:
    assert engine.max_frames == 8192  # F5's text positions (precompute_max_pos)
    too_long = ChunkRequest("key-long", "anna", "A sentence that goes on. " * 40, 1.0, 1)  # ~16,000 frames
    with pytest.raises(ValueError, match=r"chunk key-long: \d+ frames with its reference, over the model's 8192"):
        engine.synthesize(references, [too_long], PARAMS)
