"""Batched flow-matching sampling with a seed per item.

This is F5-TTS's ``CFM.sample`` inference path (f5-tts 1.1.22: no edit mask, no
duplicate test, EPSS timesteps) with these changes:

- ``CFM.sample(seed=s)`` re-seeds the global RNG with the same ``s`` before drawing each
  item's noise, so every item of a batch shares one seed. Here each item draws its noise
  from its own generator seeded with its own seed, exactly as ``torch.manual_seed(seed);
  torch.randn(...)`` would: a single item gives the same result as ``CFM.sample(seed=...)``
  (tested, float32), and an item's result does not depend on its batch mates. The noise is
  drawn in float32 and cast, so a seed means the same noise in half precision too.
- The Euler steps run in a plain loop instead of ``torchdiffeq.odeint``: the arithmetic is
  the same (``y1 = y0 + dt * f(t0, y0)``, bit-identical, tested), but torchdiffeq compares
  device tensors on the host at every step (``t1 >= t[j]``), a GPU synchronisation per
  step that left the GPU idle while Python launched the next step's kernels.
- Lengths arrive as Python ints, so nothing here waits for the device; the attention
  processors are told the lengths once per batch (``attention.set_lengths``).
- ``frames`` pads the batch past its longest item (a frame bucket, ``buckets.py``): every item
  is then masked, and the text embeddings are made once per batch at the items' own lengths
  and zero-padded (F5 would make them as long as the longest item, not the padded batch).
- The time grid stays in float32 for the Euler steps (``t1 - t0``); only the transformer's
  time input takes the model's dtype (half precision rounds the grid's small steps).

Everything else is F5's own: the transformer, tokenizer, masks, timesteps, sway sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from f5_tts.model import CFM

_TIMESTEPS: dict[tuple, torch.Tensor] = {}


def _ints(values: Sequence[int] | torch.Tensor) -> list[int]:
    return [int(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]


def timesteps(steps: int, sway_sampling_coef: float | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """F5's EPSS timesteps with sway sampling, made once per (steps, device, dtype): building
    them copies from host memory, which waits for the GPU's queued work. Computed in float32
    and then cast (F5 computes them in the model's dtype: identical in float32; in half
    precision ``cos`` near 1 loses the first steps, in bfloat16 to the point of repeating one)."""
    import torch
    from f5_tts.model.utils import get_epss_timesteps

    key = (steps, sway_sampling_coef, str(device), dtype)
    if key not in _TIMESTEPS:
        t = get_epss_timesteps(steps, device=device, dtype=torch.float32)
        if sway_sampling_coef is not None:
            t = t + sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
        _TIMESTEPS[key] = t.to(dtype)
    return _TIMESTEPS[key]


def sample_batch(
    model: CFM,
    cond: torch.Tensor,  # (b, n, mel) reference mels, zero-padded
    text: torch.Tensor,  # (b, nt) token ids, -1 padded
    lens: Sequence[int] | torch.Tensor,  # (b,) reference mel frames
    duration: Sequence[int] | torch.Tensor,  # (b,) total frames to generate (reference included)
    seeds: Sequence[int],
    *,
    steps: int = 32,
    cfg_strength: float = 2.0,
    sway_sampling_coef: float | None = -1.0,
    text_lengths: Sequence[int] | None = None,  # tokens per item; read off ``text`` when None
    frames: int | None = None,  # pad the batch to this many frames (a bucket); None: its longest item
) -> torch.Tensor:
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pad_sequence

    from voicebatch.synthesis.attention import set_lengths

    model.eval()
    cond = cond.to(next(model.parameters()).dtype)
    batch, device = cond.shape[0], cond.device
    lens, duration = _ints(lens), _ints(duration)
    if text_lengths is None:
        text_lengths = _ints((text != -1).sum(dim=-1))
    duration = [max(max(t, r) + 1, d) for t, r, d in zip(text_lengths, lens, duration, strict=True)]
    max_duration = max(duration)
    frames = max_duration if frames is None else int(frames)
    if frames < max_duration:
        raise ValueError(f"a batch padded to {frames} frames cannot hold an item of {max_duration}")
    positions = torch.arange(frames, device=device)
    cond = F.pad(cond, (0, 0, 0, frames - cond.shape[1]), value=0.0)
    # Masks from Python ints (a tensor from a host list would synchronise with the GPU).
    cond_mask = torch.stack([positions < r for r in lens]).unsqueeze(-1)
    step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
    padded = frames > max_duration
    mask = torch.stack([positions < d for d in duration]) if batch > 1 or padded else None
    if padded:
        _cache_text_embeddings(model.transformer, text, mask, frames)

    def flow(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if cfg_strength < 1e-5:
            return model.transformer(
                x=x, cond=step_cond, text=text, time=t, mask=mask, drop_audio_cond=False, drop_text=False, cache=True
            )
        both = model.transformer(x=x, cond=step_cond, text=text, time=t, mask=mask, cfg_infer=True, cache=True)
        pred, null_pred = torch.chunk(both, 2, dim=0)
        return pred + (pred - null_pred) * cfg_strength

    noise = []
    for length, seed in zip(duration, seeds, strict=True):
        generator = torch.Generator(device=device).manual_seed(int(seed))
        # Drawn in float32 and cast: a seed gives the same noise in any dtype (a half-precision
        # draw is another random sequence, which would hide precision's own effect on the audio).
        drawn = torch.randn(length, model.num_channels, generator=generator, device=device, dtype=torch.float32)
        noise.append(drawn.to(step_cond.dtype))
    y = pad_sequence(noise, padding_value=0, batch_first=True)
    y = F.pad(y, (0, 0, 0, frames - y.shape[1]), value=0.0)

    t = timesteps(steps, sway_sampling_coef, device, torch.float32)
    t_model = t.to(step_cond.dtype)
    set_lengths(model.transformer, tuple(duration) if mask is not None else None)
    try:
        for i in range(len(t) - 1):  # torchdiffeq's fixed-grid Euler, without its host checks
            y = y + (t[i + 1] - t[i]).to(y.dtype) * flow(t_model[i], y)
    finally:
        set_lengths(model.transformer, None)
        model.transformer.clear_cache()
    return torch.where(cond_mask, cond, y)


def _cache_text_embeddings(transformer, text: torch.Tensor, mask: torch.Tensor, frames: int) -> None:
    """F5's text embeddings of a padded batch, cached where its ``get_input_embed`` looks first
    (``cache=True``): computed as F5 computes them for a masked batch (each item's valid length
    from the mask, text positions past it zeroed), then zero-padded from the longest item's
    length to ``frames``, which is what the masked positions hold anyway."""
    import torch.nn.functional as F

    seq_len = mask.sum(dim=1)
    for drop_text in (False, True):
        embed = transformer.text_embed(text, seq_len=seq_len, drop_text=drop_text)
        embed = F.pad(embed, (0, 0, 0, frames - embed.shape[1]), value=0.0)
        if drop_text:
            transformer.text_uncond = embed
        else:
            transformer.text_cond = embed
