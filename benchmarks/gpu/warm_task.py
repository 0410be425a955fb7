"""One synthesize task's process against the warm engine: what it pays before its audio.

    python benchmarks/gpu/warm_task.py MODEL_DIR INPUTS.npz CHUNKS.json SOCKET_DIR DEVICE [PHYSICAL_ID] [COMPILE]

Times the process from its first line: imports (the task's, not torch's: the client needs
none), the model's manifest check, the request to the GPU's engine server (started by this
task when there is none: then also its imports, CUDA start, model load and compile-cache load)
and the audio back. ``synthesis_s`` is the server's own time from the request's first batch to
its last (the engine's progress), so ``fixed_s`` = wall - synthesis_s is what the task paid
around its GPU work. Prints one JSON line.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402 - the imports are part of what is measured
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    model_dir, inputs, chunks_json, socket_dir, device = sys.argv[1:6]
    physical = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None
    backend = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7] != "-" else None
    import numpy as np

    from voicebatch.synthesis.engine import ChunkRequest, Reference, SynthesisParams
    from voicebatch.synthesis.models import load_model_files
    from voicebatch.synthesis.warm import WarmEngine, WarmSettings

    imported = time.perf_counter() - STARTED
    spec = json.loads(Path(chunks_json).read_text())
    with np.load(inputs) as data:
        references = {v: Reference(v, data[v], text) for v, text in spec["references"].items()}
    chunks = [ChunkRequest(**c) for c in spec["chunks"]]
    settings = WarmSettings(directory=Path(socket_dir), idle_s=600)
    engine = WarmEngine(
        load_model_files(Path(model_dir)), device=device, physical_id=physical, compile=backend, settings=settings
    )
    elapsed: list[float] = []
    out = engine.synthesize(
        references, chunks, SynthesisParams(nfe_steps=spec["nfe"]), progress=lambda p: elapsed.append(p.elapsed)
    )
    wall = time.perf_counter() - STARTED
    synthesis = elapsed[-1] if elapsed else 0.0
    engine.close()
    print(
        json.dumps(
            {
                "wall_s": round(wall, 3),
                "imports_s": round(imported, 3),
                "synthesis_s": round(synthesis, 3),
                "fixed_s": round(wall - synthesis, 3),
                "chunks": len(out),
                "audio_s": round(sum(a.samples.shape[0] for a in out) / 24_000, 2),
                "server": engine.server,
                "torch_imported": "torch" in sys.modules,
            }
        )
    )


if __name__ == "__main__":
    main()
