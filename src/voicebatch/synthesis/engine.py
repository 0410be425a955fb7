"""The F5-TTS engine: load once per process, synthesize many chunks in true batches.

Per chunk it follows F5-TTS's own ``infer_batch_process`` (reference loudness raised to
RMS 0.1 and restored after, the reference text and chunk text spoken as one, the
duration rule from UTF-8 bytes, F5's pinyin conversion), but packs chunks of any script
and voice into batches within a frame budget, samples each with its own seed
(``sampler.sample_batch``) with attention masks on, and decodes the vocoder in batches too.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE
from voicebatch.inputs.chunking import f5_reference_text
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.batching import SynthesisBatch, estimate_frames, plan_batches
from voicebatch.synthesis.buckets import DEFAULT_BUCKETS, FrameBuckets, plan_bucketed_batches
from voicebatch.synthesis.models import ModelError, ModelFiles

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

HOP_LENGTH = 256
TARGET_RMS = 0.1
DEFAULT_BATCH_FRAMES: int = DEFAULTS["batch_frames"]  # padded mel frames per forward pass


@dataclass(frozen=True, slots=True)
class Reference:
    voice: str
    samples: np.ndarray = field(repr=False)  # mono float32 at 24 kHz
    text: str


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    key: str  # the chunk's cache key (its seed derives from it)
    voice: str
    text: str
    speed: float
    seed: int


@dataclass(frozen=True, slots=True)
class ChunkAudio:
    key: str
    samples: np.ndarray = field(repr=False)  # mono float32 at 24 kHz
    frames: int  # generated mel frames: samples = frames * 256
    mel: np.ndarray = field(repr=False)  # (100, frames) generated mel, for checks and plots


@dataclass(frozen=True, slots=True)
class SynthesisParams:
    nfe_steps: int = DEFAULTS["nfe_steps"]
    cfg_strength: float = DEFAULTS["cfg_strength"]
    sway_sampling_coef: float = -1.0


DEFAULT_PARAMS = SynthesisParams()


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    audio_seconds: float
    elapsed: float

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of compute per second of audio (lower is faster)."""
        return self.elapsed / self.audio_seconds if self.audio_seconds else 0.0


@dataclass(frozen=True, slots=True)
class _Launched:
    """A batch queued on the device: its outputs are device tensors until collected."""

    items: tuple[int, ...]
    waves: torch.Tensor  # (b, samples) vocoder output, padded to the longest item
    mels: list[torch.Tensor]  # (100, frames) generated mel per item


@dataclass(frozen=True, slots=True)
class _Prepared:
    cond: torch.Tensor  # (n, 100) reference mel
    text: list[str]  # tokens after F5's pinyin conversion
    ref_frames: int
    duration: int
    rms: float


def choose_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(device: str) -> torch.dtype:
    import torch

    # float16 on CUDA, as F5-TTS's own loader does. bfloat16 has the same speed but too few
    # mantissa bits for F5's sway-sampled time grid: measured on an H200 (benchmarks/RESULTS.md),
    # 1 - cos(pi/2 * t) rounds to 0 at t = 1/32, so NFE 32 repeats a step and F5's own sampler
    # (torchdiffeq) refuses the grid.
    if device.startswith("cuda"):
        return torch.float16
    return torch.float32


class Engine:
    """Owns the loaded model and vocoder of one process."""

    def __init__(
        self,
        model: ModelFiles,
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        attention: str | None = None,
        compile: str | None = None,
        compile_mode: str = "default",
        buckets: FrameBuckets | bool | None = None,
    ) -> None:
        self.files = model
        self.device = device
        self.dtype = dtype
        self.attention = attention  # None: the fastest usable (attention.choose_backend)
        self.compile = compile  # a torch.compile backend ("inductor") for the DiT's blocks, or None: compiled.py
        self.compile_mode = compile_mode  # "reduce-overhead": CUDA graphs, recorded per bucket shape
        # Frame buckets (buckets.py): by default on when compiled (graphs are reused), else off
        # (exact padding computes least).
        if buckets is None or buckets is True:
            buckets = DEFAULT_BUCKETS if (compile or buckets is True) else None
        self.buckets: FrameBuckets | None = buckets or None
        self.compiled = None  # compiled.CompiledBlocks once loaded with compile
        self.model = None
        self.vocoder = None
        self.backend = attention or "auto"
        self.max_frames: int | None = None

    def load(self) -> Engine:
        if self.model is not None:
            return self
        import torch

        from voicebatch.synthesis import attention
        from voicebatch.synthesis.builders import ModelConfigError, build_f5, load_f5_weights, load_vocos

        self.device = choose_device(self.device)
        self.dtype = self.dtype or choose_dtype(self.device)
        self.backend = attention.choose_backend(self.device, self.dtype, self.attention)
        config = self.files.config
        # Masks on: packaged configs ship attn_mask_enabled False, and then padded batch
        # items leak into each other through attention. F5's processors are replaced by
        # padding-aware ones (attention.py), so its warning about expanded masks is moot.
        arch = {**config["arch"], "attn_backend": "torch", "attn_mask_enabled": True}
        # Built from the checked model.yaml (builders.py): a model folder never names code to run.
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="attn_mask_enabled=True", category=UserWarning)
                model = build_f5(config, self.files.vocab, self.device, arch=arch)
            attention.install(model.transformer, self.backend)
            # eval(): the DiT has dropout layers; inference must not drop anything.
            self.model = load_f5_weights(model, self.files.checkpoint, self.device, self.dtype).eval()
            self.vocoder = load_vocos(self.files.vocoder_dir, self.device)
        except ModelConfigError as e:  # permanent: the task fails at once, naming the file
            raise ModelError(str(e)) from None
        torch.set_grad_enabled(False)
        self.max_frames = getattr(self.model.transformer.text_embed, "precompute_max_pos", None)
        if self.compile:
            from voicebatch.synthesis.compiled import CompileOptions, compile_transformer

            options = CompileOptions(self.compile, self.compile_mode)
            self.compiled = compile_transformer(self.model.transformer, self.files, self.device, options)
        log.info(
            "engine: %s on %s (%s, attention %s%s)",
            self.files.name,
            self.device,
            self.dtype,
            self.backend,
            f", compiled with {self.compile} ({self.compile_mode}), {self.buckets.describe()}" if self.compile else "",
        )
        return self

    def synthesize(
        self,
        references: Mapping[str, Reference],
        chunks: Sequence[ChunkRequest],
        params: SynthesisParams = DEFAULT_PARAMS,
        *,
        batch_frames: int = DEFAULT_BATCH_FRAMES,
        max_batch: int | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> list[ChunkAudio]:
        """Audio for every chunk, in the order given."""

        self.load()
        if max_batch is None and not self.device.startswith("cuda"):
            # Measured (benchmarks/RESULTS.md): on a CPU one batch-8 forward with the padding
            # mask costs 1.55x eight batch-1 forwards; batching pays on accelerators only.
            max_batch = 1
        mels: dict[str, torch.Tensor] = {}
        prepared = [self._prepare(references[c.voice], c, mels) for c in chunks]
        frames = [p.duration for p in prepared]
        if self.buckets is not None:
            batches = plan_bucketed_batches(frames, self.buckets, batch_frames, max_batch)
        else:
            batches = plan_batches(frames, batch_frames, max_batch)
        log.info("synthesizing %d chunks in %d batches (frame budget %d)", len(chunks), len(batches), batch_frames)
        results: dict[int, ChunkAudio] = {}
        started, audio_seconds = time.perf_counter(), 0.0

        def collect(launched: list[_Launched]) -> None:
            nonlocal audio_seconds
            for index, audio in self._collect(launched, prepared, chunks):
                results[index] = audio
                audio_seconds += audio.samples.shape[0] / MODEL_SAMPLE_RATE
            if progress:
                progress(Progress(len(results), len(chunks), audio_seconds, time.perf_counter() - started))

        # One batch in flight: batch k+1 is queued on the GPU before batch k's audio is copied
        # to the host and converted, so the host work overlaps the device work.
        pending: list[_Launched] | None = None
        for batch in batches:
            launched = self._launch(batch, prepared, chunks, params)
            if pending is not None:
                collect(pending)
            pending = launched
        if pending is not None:
            collect(pending)
        if self.compiled is not None:
            self.compiled.save_new()  # graphs compiled by this call: kept beside the model
        return [results[i] for i in range(len(chunks))]

    def _prepare(self, reference: Reference, chunk: ChunkRequest, mels: dict) -> _Prepared:
        import torch
        from f5_tts.model.utils import convert_char_to_pinyin

        audio = torch.from_numpy(reference.samples).float().unsqueeze(0)
        rms = float(torch.sqrt(torch.mean(torch.square(audio))))
        if reference.voice not in mels:
            if rms < TARGET_RMS:
                audio = audio * TARGET_RMS / rms
            mels[reference.voice] = self.model.mel_spec(audio.to(self.device)).permute(0, 2, 1)[0]
        ref_text = f5_reference_text(reference.text)
        ref_frames = reference.samples.shape[0] // HOP_LENGTH
        duration = estimate_frames(reference.samples.shape[0], reference.text, chunk.text, chunk.speed, HOP_LENGTH)
        if self.max_frames and duration > self.max_frames:
            raise ValueError(
                f"chunk {chunk.key}: {duration} frames with its reference, over the model's {self.max_frames} "
                f"({self.max_frames * HOP_LENGTH / MODEL_SAMPLE_RATE:.0f} s): shorten the chunk or the reference clip"
            )
        text = convert_char_to_pinyin([ref_text + chunk.text])[0]
        return _Prepared(mels[reference.voice], text, ref_frames, duration, rms)

    def _launch(
        self, batch: SynthesisBatch, prepared: list[_Prepared], chunks: Sequence[ChunkRequest], params: SynthesisParams
    ) -> list[_Launched]:
        """Queue a batch on the device (split in halves on CUDA out-of-memory)."""
        import torch

        try:
            return [self._sample(batch.items, prepared, chunks, params)]
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(batch) == 1:
                raise RuntimeError(
                    f"CUDA out of memory on a single chunk ({batch.frames} frames, key {chunks[batch.items[0]].key}): "
                    "lower batch_frames, shorten the chunk or use a GPU with more memory"
                ) from None
            half = len(batch) // 2
            log.warning("CUDA out of memory on a batch of %d: splitting it in two", len(batch))
            first, second = batch.items[:half], batch.items[half:]
            parts = [SynthesisBatch(p, len(p) * prepared[p[0]].duration) for p in (first, second)]
            return [launched for part in parts for launched in self._launch(part, prepared, chunks, params)]
        except Exception as error:  # a failed compile: eager is the fallback (compiled.py)
            if self.compiled is None:
                raise
            from voicebatch.synthesis.compiled import fall_back

            fall_back(self.compiled, error)
            self.compiled = None
            return self._launch(batch, prepared, chunks, params)

    def _sample(
        self, items: tuple[int, ...], prepared: list[_Prepared], chunks: Sequence[ChunkRequest], params: SynthesisParams
    ) -> _Launched:
        import torch
        import torch.nn.functional as F
        from f5_tts.model.utils import list_str_to_idx
        from torch.nn.utils.rnn import pad_sequence

        from voicebatch.synthesis.sampler import sample_batch

        group = [prepared[i] for i in items]
        cond = pad_sequence([p.cond for p in group], batch_first=True)
        text = list_str_to_idx([p.text for p in group], self.model.vocab_char_map)
        cuda = self.device.startswith("cuda")
        # Pinned memory: the copy runs asynchronously instead of waiting for queued GPU work.
        text = (text.pin_memory() if cuda else text).to(self.device, non_blocking=cuda)
        with torch.inference_mode():
            mel = sample_batch(
                self.model,
                cond,
                text,
                [p.ref_frames for p in group],
                [p.duration for p in group],
                [chunks[i].seed for i in items],
                steps=params.nfe_steps,
                cfg_strength=params.cfg_strength,
                sway_sampling_coef=params.sway_sampling_coef,
                text_lengths=[len(p.text) for p in group],
                frames=self._bucket(group),
            ).float()
            spans = [(p.ref_frames, max(p.duration, p.ref_frames + 1)) for p in group]
            generated = [mel[k, a:b, :].permute(1, 0) for k, (a, b) in enumerate(spans)]
            longest = max(g.shape[1] for g in generated)
            # Pad by repeating each item's last frame: the vocoder's convolutions then see
            # no artificial silence near the end of a shorter item.
            padded = torch.stack([F.pad(g[None], (0, longest - g.shape[1]), mode="replicate")[0] for g in generated])
            waves = self.vocoder.decode(padded)
        return _Launched(items, waves, generated)

    def _bucket(self, group: list[_Prepared]) -> int | None:
        """The padded length of a batch: its bucket (the sampler's own length rule first)."""
        if self.buckets is None:
            return None
        return self.buckets.bucket_for(max(max(p.duration, p.ref_frames + 1, len(p.text) + 1) for p in group))

    def _collect(
        self, launched: list[_Launched], prepared: list[_Prepared], chunks: Sequence[ChunkRequest]
    ) -> list[tuple[int, ChunkAudio]]:
        out = []
        for part in launched:
            waves = part.waves.cpu()  # waits for this batch only; the next one is already queued
            for k, index in enumerate(part.items):
                frames = part.mels[k].shape[1]
                wave = waves[k, : frames * HOP_LENGTH]
                rms = prepared[index].rms
                if rms < TARGET_RMS:
                    wave = wave * rms / TARGET_RMS
                audio = ChunkAudio(
                    chunks[index].key, wave.numpy().astype("float32"), frames, part.mels[k].cpu().numpy()
                )
                out.append((index, audio))
        return out
