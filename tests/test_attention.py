"""Padding-aware attention against F5-TTS's own masked attention processor.

Every backend must give, at every valid position of every item, what F5's processor gives with
its expanded boolean mask, and zeros at padded positions. CPU runs ``sliced`` and ``masked``;
with CUDA the GPU backends (``varlen``, ``flash_attn`` when it imports) are checked too, in bf16.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicebatch.synthesis import attention

DIM, HEADS, DIM_HEAD = 64, 4, 16
CUDA = torch.cuda.is_available()


def make_attention(pe_attn_head: int | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32):
    from f5_tts.model.modules import Attention, AttnProcessor

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="attn_mask_enabled"):
        processor = AttnProcessor(pe_attn_head=pe_attn_head, attn_backend="torch", attn_mask_enabled=True)
    module = Attention(processor=processor, dim=DIM, heads=HEADS, dim_head=DIM_HEAD)
    return module.to(device=device, dtype=dtype).eval()


def inputs(lengths: list[int], device: str, dtype: torch.dtype, seed: int = 1):
    from x_transformers.x_transformers import RotaryEmbedding

    n = max(lengths)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), n, DIM, generator=generator).to(device=device, dtype=dtype)
    mask = torch.stack([torch.arange(n) < length for length in lengths]).to(device)
    rope = RotaryEmbedding(DIM_HEAD).to(device).forward_from_seq_len(n)
    return x, mask, rope


def f5_reference(module, x, mask, rope) -> torch.Tensor:
    from f5_tts.model.modules import AttnProcessor

    assert isinstance(module.processor, AttnProcessor)
    with torch.inference_mode():
        return module(x=x, mask=mask, rope=rope)


def ours(module, backend: str, x, mask, rope, lengths: list[int] | None) -> tuple[torch.Tensor, dict]:
    f5 = module.processor
    module.processor = attention.PaddingAwareAttention(backend, f5.pe_attn_head)
    module.processor.set_lengths(tuple(lengths) if lengths else None)
    try:
        with torch.inference_mode():
            return module(x=x, mask=mask, rope=rope), dict(module.processor.calls)
    finally:
        module.processor = f5


def assert_same(got: torch.Tensor, expected: torch.Tensor, lengths: list[int], tol: float) -> None:
    for i, length in enumerate(lengths):
        valid = (got[i, :length].float() - expected[i, :length].float()).abs().max().item()
        scale = expected[i, :length].float().abs().max().item()
        assert valid <= tol * max(scale, 1.0), f"item {i} (length {length}) differs by {valid}"
        assert not got[i, length:].any(), f"item {i}: padded positions must be zero"


@pytest.mark.parametrize("backend", ["sliced", "masked"])
@pytest.mark.parametrize("pe_attn_head", [None, 2])
def test_cpu_backends_match_f5s_masked_attention(backend: str, pe_attn_head: int | None) -> None:
    module = make_attention(pe_attn_head)
    lengths = [37, 50, 12, 50, 29]
    x, mask, rope = inputs(lengths, "cpu", torch.float32)
    expected = f5_reference(module, x, mask, rope)
    for told in (lengths, None):  # lengths from the sampler, or read off the mask
        got, calls = ours(module, backend, x, mask, rope, told)
        assert_same(got, expected, lengths, 1e-5)
        assert set(calls) == {backend}, calls


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6))
def test_sliced_matches_f5_for_any_left_aligned_lengths(lengths: list[int]) -> None:
    module = make_attention()
    x, mask, rope = inputs(lengths, "cpu", torch.float32)
    expected = f5_reference(module, x, mask, rope)
    got, _ = ours(module, "sliced", x, mask, rope, lengths)
    assert_same(got, expected, lengths, 1e-5)


def test_cfg_doubled_batch_uses_the_lengths_twice() -> None:
    module = make_attention()
    lengths = [20, 9, 15]
    x, mask, rope = inputs(lengths + lengths, "cpu", torch.float32)
    expected = f5_reference(module, x, mask, rope)
    got, calls = ours(module, "sliced", x, mask, rope, lengths)  # told 3 lengths, given the 6-row CFG batch
    assert_same(got, expected, lengths + lengths, 1e-5)
    assert calls == {"sliced": 3}, "one SDPA call per distinct length: the CFG halves share theirs"


def test_lengths_that_do_not_fit_the_batch_are_an_error() -> None:
    module = make_attention()
    x, mask, rope = inputs([5, 4], "cpu", torch.float32)
    with pytest.raises(ValueError, match="batch of 2 for 3 known lengths"):
        ours(module, "sliced", x, mask, rope, [5, 4, 3])


def test_backend_choice_on_cpu_and_refusals() -> None:
    assert attention.choose_backend("cpu", torch.float32) == "sliced"
    assert attention.choose_backend("cpu", torch.float32, "masked") == "masked"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        attention.choose_backend("cpu", torch.float32, "varlen")
    with pytest.raises(ValueError, match="not one of"):
        attention.choose_backend("cpu", torch.float32, "fastest")


def test_flash_attn_is_used_only_when_it_really_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def broken(name: str, *args):
        if name == "flash_attn":  # what a wheel built for another torch does at import
            raise OSError("undefined symbol: _ZN3c104cuda9SetDeviceEi")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    assert not attention.flash_attn_usable()


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("backend", ["varlen", "flash_attn", "sliced", "masked"])
def test_gpu_backends_match_f5s_masked_attention_in_bf16(backend: str) -> None:
    if backend == "flash_attn" and not attention.flash_attn_usable():
        pytest.skip("flash-attn does not import here")
    if backend == "varlen" and not attention.varlen_usable():
        pytest.skip("torch has no varlen attention")
    module = make_attention(device="cuda", dtype=torch.bfloat16)
    lengths = [300, 257, 64, 300, 129, 1]
    x, mask, rope = inputs(lengths, "cuda", torch.bfloat16)
    expected = make_attention(device="cuda", dtype=torch.float32)  # the reference in float32
    reference = f5_reference(expected, x.float(), mask, rope)
    got, calls = ours(module, backend, x, mask, rope, lengths)
    assert_same(got, reference, lengths, 3e-2)  # bf16 operands: about 1e-2 relative
    path = {"varlen": "varlen", "flash_attn": "flash_attn_varlen", "sliced": "sliced", "masked": "masked"}[backend]
    assert set(calls) == {path}, f"the {path} kernel path must be the one taken: {calls}"
