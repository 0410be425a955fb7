"""Padding-aware self-attention for F5-TTS's DiT, without an expanded mask.

F5's own processor handles a padded batch by handing PyTorch's SDPA a boolean mask expanded
to ``batch x heads x n x n``: SDPA turns it into a dense bias of that size (about 1.7 GB per
call at a 16,384-frame batch) and the mask keeps it off the fused flash kernels. Items of a
batch are left-aligned (item ``i`` is valid on positions ``0 .. len_i - 1``), so the same
result needs no mask at all:

- ``varlen``: pack the valid tokens of all items and run PyTorch's own variable-length flash
  attention (``torch.nn.attention.varlen.varlen_attn``, CUDA, bf16/fp16): one launch, no
  padding computed.
- ``flash_attn``: the same through the flash-attn package's ``flash_attn_varlen_func``, when
  that optional extra imports (a wheel built for another torch fails to import: then it is
  not used).
- ``sliced``: unmasked SDPA per group of items of equal length (the CFG halves of an item
  share one length), so every call takes SDPA's fused kernel; the portable choice (CPU).
- ``masked``: F5's original expanded-mask SDPA, kept for comparison in the benchmark.

Everything around the attention kernel (projections, qk-norm, rotary embedding on the first
``pe_attn_head`` heads, output projection, zeroed padding) follows F5's ``AttnProcessor``
(f5-tts 1.1.22) line for line; tests compare every backend with it.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

BACKENDS = ("varlen", "flash_attn", "sliced", "masked")


def flash_attn_usable() -> bool:
    """True when the optional flash-attn package really imports (presence is not enough:
    a wheel built for another torch or CUDA fails at import with an OSError or ImportError)."""
    try:
        importlib.import_module("flash_attn")
    except Exception:  # any failure to import means: do not use it
        return False
    return True


def varlen_usable() -> bool:
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401 - torch >= 2.10
    except ImportError:
        return False
    return True


def choose_backend(device: str, dtype: torch.dtype, requested: str | None = None) -> str:
    """The attention backend for a device: ``requested`` when given (checked), else the
    fastest usable one (measured in benchmarks/RESULTS.md)."""
    import torch

    cuda = device.startswith("cuda")
    half = dtype in (torch.float16, torch.bfloat16)
    if requested:
        if requested not in BACKENDS:
            raise ValueError(f"attention backend {requested!r} is not one of {', '.join(BACKENDS)}")
        if requested in ("varlen", "flash_attn") and not (cuda and half):
            raise ValueError(f"attention backend {requested!r} needs a CUDA device and bf16/fp16")
        if requested == "varlen" and not varlen_usable():
            raise ValueError("attention backend 'varlen' needs torch >= 2.10")
        if requested == "flash_attn" and not flash_attn_usable():
            raise ValueError("attention backend 'flash_attn' needs the flash-attn package (it does not import)")
        return requested
    # Measured on an H200 (benchmarks/RESULTS.md), 48 chunks of F5TTS_v1_Base at NFE 32 and the
    # default 16,384-frame budget: varlen 17.9 s, sliced 22.0 s (one isolated forward had them
    # the other way round, 216 vs 193 ms: the whole run is what counts). F5's expanded mask
    # cost 302 ms and +4.4 GB per such forward. On CPUs, sliced is the only fused choice.
    if cuda and half and varlen_usable():
        return "varlen"
    if cuda and half and flash_attn_usable():
        return "flash_attn"
    return "sliced"


@dataclass(frozen=True, slots=True)
class _Packing:
    """How the valid tokens of a left-aligned padded batch lie. Built once per batch from
    lengths the sampler knows (no device-to-host sync), used by every block of every step."""

    batch: int
    frames: int
    groups: tuple[tuple[int, torch.Tensor | slice], ...]  # (length, rows) per distinct length
    index: torch.Tensor | None  # flat positions of valid tokens in (b * n), for varlen
    cu_seqlens: torch.Tensor | None
    max_len: int


class PaddingAwareAttention:
    """A drop-in processor for F5's ``Attention`` module (self-attention of DiT blocks)."""

    def __init__(self, backend: str, pe_attn_head: int | None = None) -> None:
        self.backend = backend
        self.pe_attn_head = pe_attn_head
        self.calls: dict[str, int] = {}  # kernel path -> calls (tests check the path taken)
        self._lengths: tuple[int, ...] | None = None
        self._mask: torch.Tensor | None = None
        self._packing: _Packing | None = None

    def __call__(self, attn, x: torch.Tensor, mask: torch.Tensor | None = None, rope=None) -> torch.Tensor:
        import torch

        query, key, value = project(attn, x, rope, self.pe_attn_head)
        attend = _eager(self._attend) if torch.compiler.is_compiling() else self._attend
        out = attend(query, key, value, mask)  # (b, n, heads * head_dim)
        return finish(attn, out.to(query.dtype), mask)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The attention kernel alone: what stays eager in a compiled block (``compiled.py``)."""
        return self._attend(q, k, v, mask)

    # -- kernels --------------------------------------------------------------------------

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        import torch.nn.functional as F

        b, h, n, d = q.shape
        if mask is None:
            self._count("dense")
            return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, h * d)
        if self.backend == "masked":
            self._count("masked")
            full = mask[:, None, None, :].expand(b, h, n, n)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=full).transpose(1, 2).reshape(b, n, h * d)
        packing = self._pack(mask)
        if len(packing.groups) == 1 and packing.groups[0][0] == n:
            self._count("dense")  # nothing is padded
            return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, h * d)
        if self.backend == "sliced":
            return self._sliced(q, k, v, packing)
        return self._varlen(q, k, v, packing)

    def _sliced(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: _Packing) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        b, h, n, d = q.shape
        out = torch.zeros(b, n, h, d, dtype=q.dtype, device=q.device)
        for length, rows in packing.groups:
            part = F.scaled_dot_product_attention(q[rows, :, :length], k[rows, :, :length], v[rows, :, :length])
            out[rows, :length] = part.transpose(1, 2)
            self._count("sliced")
        return out.reshape(b, n, h * d)

    def _varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: _Packing) -> torch.Tensor:
        import torch

        b, h, n, d = q.shape

        def packed(t: torch.Tensor) -> torch.Tensor:  # (b, h, n, d) -> (tokens, h, d)
            return t.transpose(1, 2).reshape(b * n, h, d).index_select(0, packing.index)

        if self.backend == "flash_attn":
            from flash_attn import flash_attn_varlen_func

            self._count("flash_attn_varlen")
            args = (packing.cu_seqlens, packing.cu_seqlens, packing.max_len, packing.max_len)
            result = flash_attn_varlen_func(packed(q), packed(k), packed(v), *args)
        else:
            from torch.nn.attention.varlen import varlen_attn

            self._count("varlen")
            args = (packing.cu_seqlens, packing.cu_seqlens, packing.max_len, packing.max_len)
            result = varlen_attn(packed(q), packed(k), packed(v), *args)
        out = torch.zeros(b * n, h, d, dtype=result.dtype, device=q.device)
        out.index_copy_(0, packing.index, result)
        return out.reshape(b, n, h * d)

    def _pack(self, mask: torch.Tensor) -> _Packing:
        batch, frames = mask.shape
        packing = self._packing
        same_shape = packing is not None and (packing.batch, packing.frames) == (batch, frames)
        if same_shape and (self._lengths is not None or mask is self._mask):
            return packing
        if self._lengths is not None:
            lengths = list(self._lengths)
            if batch == 2 * len(lengths):  # classifier-free guidance packs cond and uncond halves
                lengths = lengths * 2
            if batch != len(lengths):
                raise ValueError(f"attention got a batch of {batch} for {len(self._lengths)} known lengths")
        else:  # not told by the sampler: read them off the mask (a device sync per call)
            lengths = [int(v) for v in mask.sum(dim=1).tolist()]
        self._mask, self._packing = mask, build_packing(lengths, frames, mask.device, self.backend)
        return self._packing

    def set_lengths(self, lengths: tuple[int, ...] | None) -> None:
        """The valid length of each item of the batches to come (None: read masks)."""
        self._lengths = lengths
        self._mask = self._packing = None

    def _count(self, path: str) -> None:
        import torch

        # Tests read which kernel path ran; under torch.compile a Python counter would be
        # specialised into the graph's guards and force a recompile per call, so skip it there.
        if not torch.compiler.is_compiling():
            self.calls[path] = self.calls.get(path, 0) + 1


def project(attn, x: torch.Tensor, rope, pe_attn_head: int | None) -> tuple[torch.Tensor, ...]:
    """Queries, keys and values (b, heads, n, head_dim) as F5's ``AttnProcessor`` makes them:
    projections, qk-norm, rotary embedding (on the first ``pe_attn_head`` heads when set)."""
    from x_transformers.x_transformers import apply_rotary_pos_emb

    batch = x.shape[0]
    query, key, value = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    head_dim = key.shape[-1] // attn.heads
    query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    if attn.q_norm is not None:
        query = attn.q_norm(query)
    if attn.k_norm is not None:
        key = attn.k_norm(key)
    if rope is not None:
        freqs, xpos_scale = rope
        q_scale, k_scale = (xpos_scale, xpos_scale**-1.0) if xpos_scale is not None else (1.0, 1.0)
        if pe_attn_head is not None:
            pn = pe_attn_head
            query[:, :pn, :, :] = apply_rotary_pos_emb(query[:, :pn, :, :], freqs, q_scale)
            key[:, :pn, :, :] = apply_rotary_pos_emb(key[:, :pn, :, :], freqs, k_scale)
        else:
            query = apply_rotary_pos_emb(query, freqs, q_scale)
            key = apply_rotary_pos_emb(key, freqs, k_scale)
    return query, key, value


def finish(attn, out: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """F5's output projection of the attention's result, padded positions zeroed."""
    out = attn.to_out[1](attn.to_out[0](out))
    if mask is not None:
        out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
    return out


def install(transformer, backend: str) -> list[PaddingAwareAttention]:
    """Replace the self-attention processor of every DiT block; returns the new processors."""
    processors = []
    for block in transformer.transformer_blocks:
        processor = PaddingAwareAttention(backend, getattr(block.attn.processor, "pe_attn_head", None))
        block.attn.processor = processor
        processors.append(processor)
    return processors


def _eager(fn):
    """``fn`` outside torch.compile's graphs: the kernels are already fused, and their Python
    bookkeeping (per-batch lengths, cached packings) would otherwise become guards that
    recompile the graph for every batch."""
    import torch

    return torch.compiler.disable(fn, recursive=True)


def build_packing(lengths: list[int], frames: int, device: torch.device, backend: str) -> _Packing:
    import torch

    if not lengths or min(lengths) < 1 or max(lengths) > frames:
        raise ValueError(f"item lengths {lengths} do not fit {frames} frames")
    by_length: dict[int, list[int]] = {}
    for i, length in enumerate(lengths):
        by_length.setdefault(length, []).append(i)
    groups = []
    for length, items in sorted(by_length.items(), reverse=True):
        contiguous = items == list(range(items[0], items[-1] + 1))
        rows = slice(items[0], items[-1] + 1) if contiguous else _device_ints(items, device)
        groups.append((length, rows))
    index = cu = None
    if backend in ("varlen", "flash_attn"):
        positions = torch.arange(frames, device=device)
        # Built on the device from Python ints: no host-device synchronisation.
        index = torch.cat([positions[:length] + i * frames for i, length in enumerate(lengths)])
        offsets = [0]
        for length in lengths:
            offsets.append(offsets[-1] + length)
        cu = _device_ints(offsets, device, torch.int32)
    return _Packing(len(lengths), frames, tuple(groups), index, cu, max(lengths))


def _device_ints(values: list[int], device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A small integer tensor made on the device by fills: a copy from pageable host memory
    would wait for all queued GPU work (a stream synchronisation) before every batch."""
    import torch

    out = torch.empty(len(values), dtype=dtype or torch.long, device=device)
    for i, value in enumerate(values):
        out[i] = value
    return out


def set_lengths(transformer, lengths: tuple[int, ...] | None) -> None:
    """Tell the installed processors the valid length of each item of the next batches."""
    for block in transformer.transformer_blocks:
        processor = block.attn.processor
        if isinstance(processor, PaddingAwareAttention):
            processor.set_lengths(lengths)
