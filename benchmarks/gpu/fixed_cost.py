"""A synthesize task's fixed cost, measured in a fresh process as a task pays it.

    python benchmarks/gpu/fixed_cost.py MODEL_DIR VOICES_DIR [DEVICE]

Prints one JSON line: seconds to import torch, to import f5_tts (and voicebatch's engine),
to start CUDA, to load the model, to synthesize the first chunk (warm-up included) and the
same chunk again (the warm figure); ``fixed_s`` is everything a task pays before its first
useful batch: imports + CUDA start + load + (first - second).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

started = time.perf_counter()
import torch  # noqa: E402 - the import is what is measured

torch_s = time.perf_counter() - started


def main() -> None:
    model_dir, voices_dir = Path(sys.argv[1]), Path(sys.argv[2])
    device = sys.argv[3] if len(sys.argv) > 3 else "cuda"
    t = time.perf_counter()
    import f5_tts.infer.utils_infer  # noqa: F401 - F5's inference stack, as the engine imports it

    from voicebatch.inputs.vocab import load_vocabulary
    from voicebatch.inputs.voices import prepare_voices
    from voicebatch.synthesis.engine import ChunkRequest, Engine, Reference, SynthesisParams
    from voicebatch.synthesis.models import load_model_files

    f5_s = time.perf_counter() - t

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    t = time.perf_counter()
    if device.startswith("cuda"):
        torch.zeros(1, device=device)
        sync()
    cuda_s = time.perf_counter() - t

    t = time.perf_counter()
    engine = Engine(load_model_files(model_dir), device=device).load()
    sync()
    load_s = time.perf_counter() - t

    voices, _ = prepare_voices(voices_dir, vocab=load_vocabulary())
    name, voice = next(iter(sorted(voices.items())))
    references = {name: Reference(name, voice.samples, voice.text)}
    chunk = [ChunkRequest("fixed-cost", name, "This sentence measures how long the first chunk takes.", 1.0, 7)]
    params = SynthesisParams()
    times = []
    for _ in range(2):
        t = time.perf_counter()
        engine.synthesize(references, chunk, params)
        sync()
        times.append(time.perf_counter() - t)
    first, second = times
    print(
        json.dumps(
            {
                "device": engine.device,
                "import_torch_s": round(torch_s, 2),
                "import_f5_and_engine_s": round(f5_s, 2),
                "cuda_start_s": round(cuda_s, 2),
                "model_load_s": round(load_s, 2),
                "first_chunk_s": round(first, 3),
                "warm_chunk_s": round(second, 3),
                "fixed_s": round(torch_s + f5_s + cuda_s + load_s + max(0.0, first - second), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
