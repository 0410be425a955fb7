"""The DiT's blocks compiled with torch.compile (Inductor), the compile cache kept beside the model.

Why the blocks and not the whole DiT: the blocks are where the element-wise work is (adaptive
norm modulation, rotary embedding, GELU, masked fills: half the GPU time in the H200 profile),
they are all alike, so one compiled forward serves every block of the model (torch.compile's
"regional compilation": the compile costs one block, not 22), and they hold none of the DiT's
Python state (its text-embedding cache, the sampler's lengths). A block runs as two compiled
halves around its attention kernel, which stays eager: it is already fused, and its per-batch
lengths (Python state) would otherwise be baked into the graphs and into CUDA graphs.

Shapes: the batch and frame dimensions are marked dynamic, so Inductor compiles each region
once for any batch (measured on this project's CPU: a new static shape costs 30-60 s of
compile); the model's widths stay static, which is where the fused kernels' tiling comes
from. ``mode="reduce-overhead"`` adds CUDA graphs, recorded once per concrete shape: frame
buckets (``buckets.py``) keep those shapes few.

The compile cache: Inductor's own caches (FX graph, AOT autograd, Triton kernels, autotuning)
are recorded as they are filled and saved as one file, ``torch.compiler.save_cache_artifacts``,
beside the model (``<model>/.compiled/<torch>-<device>/``, or under the model store's cache
when the model folder is read-only). A new process loads them before its first compile
(``load_cache_artifacts``) and finds its graphs in the cache instead of compiling them. Those
files hold generated code that this process runs: they are written and read only in the
worker's own model cache, never fetched from the S3 models prefix (the store moves data, not
code), and checked against their recorded sha256 before loading.

Eager stays the fallback: a compile that fails (no compiler, an unsupported graph) logs why,
takes the compiled forward out and runs the batch again eagerly (``Engine._launch``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.locations.workdir import default_cache_dir
from voicebatch.synthesis.models import ModelFiles

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

COMPILE_ENV = "VOICEBATCH_COMPILE"  # a torch.compile backend ("inductor"), or "off"
COMPILE_MODE_ENV = "VOICEBATCH_COMPILE_MODE"  # "default", "reduce-overhead" (CUDA graphs), ...
MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")
CACHE_FOLDER = ".compiled"
_COUNTERS = (("inductor", "fxgraph_cache_hit"), ("inductor", "fxgraph_cache_miss"), ("stats", "unique_graphs"))


@dataclass(frozen=True, slots=True)
class CompileOptions:
    backend: str = "inductor"
    mode: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"compile mode {self.mode!r} is not one of {', '.join(MODES)}")


def compile_options_from_env(environ: dict[str, str] | None = None) -> CompileOptions | None:
    """``VOICEBATCH_COMPILE`` (a backend, or off/empty) and ``VOICEBATCH_COMPILE_MODE``."""
    env = os.environ if environ is None else environ
    backend = env.get(COMPILE_ENV, "").strip()
    if backend.lower() in ("", "0", "off", "no", "false", "eager"):
        return None
    return CompileOptions(backend, env.get(COMPILE_MODE_ENV, "default").strip() or "default")


def device_tag(device: str) -> str:
    """What compiled code depends on besides the graph: torch's version and the device kind."""
    import torch

    tag = f"torch{torch.__version__}-"
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        tag += f"sm{props.major}{props.minor}-{props.name}"
    else:
        tag += "cpu"
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in tag)


def compile_cache_dir(files: ModelFiles, device: str) -> Path:
    """Beside the model, else (a read-only model folder) in the model store's cache."""
    tag = device_tag(device)
    beside = files.directory / CACHE_FOLDER / tag
    try:
        beside.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=beside):
            pass
        return beside
    except OSError:
        fallback = default_cache_dir() / CACHE_FOLDER / files.checksum[:16] / tag
        fallback.mkdir(parents=True, exist_ok=True)
        log.info("compile cache: %s is read-only, using %s", files.directory, fallback)
        return fallback


def cache_counters() -> dict[str, int]:
    """Inductor's cache hits and misses and dynamo's graph count so far in this process."""
    from torch._dynamo.utils import counters

    return {name: int(counters[group][name]) for group, name in _COUNTERS}


class CompiledBlocks:
    """Every block of a DiT running a compiled forward: F5's ``DiTBlock.forward`` in two compiled
    halves around the eager attention kernel (before it: the adaptive norm, projections, rotary
    embedding; after it: the output projection, residuals and feed-forward). Installed per block
    instance, so ``remove`` restores F5's own forward."""

    def __init__(self, transformer, options: CompileOptions, cache_dir: Path | None = None) -> None:
        self.transformer, self.options, self.cache_dir = transformer, options, cache_dir
        self.loaded: list[str] = []  # artifact files loaded before compiling
        self.saved: list[str] = []
        self._misses_saved = 0
        processor = transformer.transformer_blocks[0].attn.processor
        self._pe_attn_head = getattr(processor, "pe_attn_head", None)
        self._before = self._after = self._hook = None

    def install(self) -> CompiledBlocks:
        import torch

        from voicebatch.synthesis.attention import PaddingAwareAttention

        blocks = self.transformer.transformer_blocks
        if not all(isinstance(b.attn.processor, PaddingAwareAttention) for b in blocks):
            raise ValueError("compiled blocks need the engine's padding-aware attention (attention.install)")
        torch._inductor.config.fx_graph_cache = True
        torch._functorch.config.enable_autograd_cache = True
        if self.cache_dir is not None:
            self.loaded = load_artifacts(self.cache_dir)
        self._misses_saved = cache_counters()["fxgraph_cache_miss"]
        mode = None if self.options.mode == "default" else self.options.mode
        self._before = torch.compile(_before_attention, backend=self.options.backend, mode=mode)
        self._after = torch.compile(_after_attention, backend=self.options.backend, mode=mode)
        for block in blocks:
            block.forward = types.MethodType(self._forward, block)
        if mode == "reduce-overhead":
            # One DiT forward is one step of CUDA graphs: the blocks' halves chain within it (each
            # call its own recorded graph, replayed at the next step), and a new step lets the
            # previous step's graph outputs go.
            self._hook = self.transformer.register_forward_pre_hook(
                lambda *_: torch.compiler.cudagraph_mark_step_begin()
            )
        return self

    def remove(self) -> None:
        for block in self.transformer.transformer_blocks:
            block.__dict__.pop("forward", None)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _forward(self, block, x, t, mask=None, rope=None):
        # Batch and frames dynamic from the first call: one compile serves every batch shape.
        _dynamic(x, 0, 1)
        _dynamic(t, 0)
        _dynamic(mask, 0, 1)
        if rope is not None and hasattr(rope[0], "shape"):
            _dynamic(rope[0], 1)
        q, k, v, *gates = self._before(block, x, t, rope, self._pe_attn_head)
        out = block.attn.processor.attend(q, k, v, mask).to(q.dtype)
        _dynamic(out, 0, 1)
        for gate in gates:
            _dynamic(gate, 0)
        return self._after(block, x, out, mask, *gates)

    def save_new(self) -> Path | None:
        """Save the cache artifacts when graphs were compiled since the last save."""
        misses = cache_counters()["fxgraph_cache_miss"]
        if self.cache_dir is None or misses == self._misses_saved:
            return None
        self._misses_saved = misses
        path = save_artifacts(self.cache_dir)
        if path is not None:
            self.saved.append(path.name)
        return path


def _dynamic(tensor, *dims: int) -> None:
    import torch

    if tensor is not None:
        for dim in dims:
            torch._dynamo.maybe_mark_dynamic(tensor, dim)


def _before_attention(block, x, t, rope, pe_attn_head):
    """F5's ``DiTBlock.forward`` (f5-tts 1.1.22) up to the attention kernel."""
    from voicebatch.synthesis.attention import project

    norm, gate_msa, shift_mlp, scale_mlp, gate_mlp = block.attn_norm(x, emb=t)
    q, k, v = project(block.attn, norm, rope, pe_attn_head)
    return q, k, v, gate_msa, shift_mlp, scale_mlp, gate_mlp


def _after_attention(block, x, out, mask, gate_msa, shift_mlp, scale_mlp, gate_mlp):
    """F5's ``DiTBlock.forward`` from the attention kernel's output on."""
    from voicebatch.synthesis.attention import finish

    x = x + gate_msa.unsqueeze(1) * finish(block.attn, out, mask)
    norm = block.ff_norm(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
    return x + gate_mlp.unsqueeze(1) * block.ff(norm)


def fall_back(blocks: CompiledBlocks, error: BaseException) -> None:
    """Take the compiled forward out after a failure: the engine goes on eagerly."""
    blocks.remove()
    log.warning(
        "torch.compile (%s, %s) failed, synthesizing eagerly from now on: %s",
        blocks.options.backend,
        blocks.options.mode,
        " ".join(str(error).split())[:500],
    )


def save_artifacts(directory: Path) -> Path | None:
    """This process's compile cache artifacts as one file (and its record) in ``directory``."""
    import torch

    saved = torch.compiler.save_cache_artifacts()
    if not saved or not saved[0]:
        return None
    data = saved[0]
    digest = hashlib.sha256(data).hexdigest()
    path = directory / f"artifacts-{digest[:16]}.bin"
    if path.exists():
        return path
    record = {"sha256": digest, "size": len(data), "torch": torch.__version__, "pid": os.getpid()}
    for target, payload in ((path, data), (path.with_suffix(".json"), json.dumps(record).encode())):
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-", delete=False) as handle:
            handle.write(payload)
        Path(handle.name).replace(target)  # the record last: a reader trusts only recorded files
    log.info("compile cache: %d bytes saved to %s", len(data), path)
    return path


def load_artifacts(directory: Path) -> list[str]:
    """Load every recorded artifact file of ``directory`` whose sha256 matches its record."""
    import torch

    loaded = []
    for record_path in sorted(directory.glob("artifacts-*.json")):
        path = record_path.with_suffix(".bin")
        try:
            record = json.loads(record_path.read_text())
            data = path.read_bytes()
        except (OSError, ValueError):
            continue
        if hashlib.sha256(data).hexdigest() != record.get("sha256") or record.get("torch") != torch.__version__:
            log.warning("compile cache: %s does not match its record, ignored", path)
            continue
        torch.compiler.load_cache_artifacts(data)
        loaded.append(path.name)
    if loaded:
        log.info("compile cache: loaded %d artifact file(s) from %s", len(loaded), directory)
    return loaded


def compile_transformer(transformer: torch.nn.Module, files: ModelFiles, device: str, options: CompileOptions):
    """Compile the DiT's blocks with the cache beside ``files``; returns the installed blocks."""
    blocks = CompiledBlocks(transformer, options, compile_cache_dir(files, device)).install()
    log.info(
        "DiT blocks compiled lazily with %s (%s), cache %s%s",
        options.backend,
        options.mode,
        blocks.cache_dir,
        f", {len(blocks.loaded)} artifact file(s) loaded" if blocks.loaded else "",
    )
    return blocks
