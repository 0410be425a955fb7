"""Batched flow-matching sampling with a seed per item.

This is F5-TTS's ``CFM.sample`` inference path (f5-tts 1.1.22: no edit mask, no
duplicate test, EPSS timesteps) with one change: ``CFM.sample(seed=s)`` re-seeds the global
RNG with the same ``s`` before drawing each item's noise, so every item of a batch shares
one seed. Here each item draws its noise from its own generator seeded with its own seed,
exactly as ``torch.manual_seed(seed); torch.randn(...)`` would: a single item gives the same
result as ``CFM.sample(seed=...)`` (tested), and an item's result does not depend on its
batch mates. Everything else is F5's own: the transformer, tokenizer, masks, timesteps,
sway sampling and ODE solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from f5_tts.model import CFM


def sample_batch(
    model: CFM,
    cond: torch.Tensor,  # (b, n, mel) reference mels, zero-padded
    text: torch.Tensor,  # (b, nt) token ids, -1 padded
    lens: torch.Tensor,  # (b,) reference mel frames
    duration: torch.Tensor,  # (b,) total frames to generate (reference included)
    seeds: Sequence[int],
    *,
    steps: int = 32,
    cfg_strength: float = 2.0,
    sway_sampling_coef: float | None = -1.0,
) -> torch.Tensor:
    import torch
    import torch.nn.functional as F
    from f5_tts.model.utils import get_epss_timesteps, lens_to_mask
    from torch.nn.utils.rnn import pad_sequence
    from torchdiffeq import odeint

    model.eval()
    cond = cond.to(next(model.parameters()).dtype)
    batch, device = cond.shape[0], cond.device
    duration = torch.maximum(torch.maximum((text != -1).sum(dim=-1), lens) + 1, duration)
    max_duration = int(duration.amax())
    cond = F.pad(cond, (0, 0, 0, max_duration - cond.shape[1]), value=0.0)
    cond_mask = F.pad(lens_to_mask(lens), (0, max_duration - int(lens.amax())), value=False).unsqueeze(-1)
    step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
    mask = lens_to_mask(duration) if batch > 1 else None

    def flow(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if cfg_strength < 1e-5:
            return model.transformer(
                x=x, cond=step_cond, text=text, time=t, mask=mask, drop_audio_cond=False, drop_text=False, cache=True
            )
        both = model.transformer(x=x, cond=step_cond, text=text, time=t, mask=mask, cfg_infer=True, cache=True)
        pred, null_pred = torch.chunk(both, 2, dim=0)
        return pred + (pred - null_pred) * cfg_strength

    noise = []
    for frames, seed in zip(duration.tolist(), seeds, strict=True):
        generator = torch.Generator(device=device).manual_seed(int(seed))
        noise.append(torch.randn(frames, model.num_channels, generator=generator, device=device, dtype=step_cond.dtype))
    y0 = pad_sequence(noise, padding_value=0, batch_first=True)

    t = get_epss_timesteps(steps, device=device, dtype=step_cond.dtype)
    if sway_sampling_coef is not None:
        t = t + sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
    trajectory = odeint(flow, y0, t, **model.odeint_kwargs)
    model.transformer.clear_cache()
    return torch.where(cond_mask, cond, trajectory[-1])
