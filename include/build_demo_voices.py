"""Build the demo voices in include/voices/ from real speech that the f5-tts package ships.

Recordings are not committed (binary); this script makes them, and `make demo` runs it
when they are missing. Sources, both with known transcripts (f5-tts's infer/examples/basic):

- basic_ref_en.wav, 5.33 s: "Some call me nature, others call me mother nature."
  (a clear pause at 2.04–2.76 s separates the two clauses; the cue boundary is at 2.40 s)
- basic_ref_zh.wav, 6.76 s: "对，这就是我，万人敬仰的太乙真人。"

Voices, in both discovery layouts and three transcript formats:

- nature/     folder layout, WAV + SRT (basic_ref_en as it is)
- taiyi.wav   flat layout, WAV + VTT (basic_ref_zh as it is)
- narrator/   folder layout, FLAC + CSV: basic_ref_en three times with 0.25 s of silence
              between copies (16.5 s, six cues). Concatenating real clips keeps every cue
              boundary exact; the voice is longer than F5's 12 s limit, so the pipeline
              must pick a window of whole cues.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
TRANSCRIPTS = HERE / "transcripts"
NARRATOR_COPIES = 3
NARRATOR_GAP_SECONDS = 0.25


def f5_examples() -> Path:
    spec = importlib.util.find_spec("f5_tts")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("f5-tts is not installed: run `make install` first")
    return Path(next(iter(spec.submodule_search_locations))) / "infer" / "examples" / "basic"


def build(out: Path) -> list[Path]:
    examples = f5_examples()
    english, rate = sf.read(examples / "basic_ref_en.wav", dtype="float32")
    written = []

    nature = out / "nature"
    nature.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(examples / "basic_ref_en.wav", nature / "recording.wav")
    shutil.copyfile(TRANSCRIPTS / "nature.srt", nature / "nature.srt")
    written += [nature / "recording.wav", nature / "nature.srt"]

    shutil.copyfile(examples / "basic_ref_zh.wav", out / "taiyi.wav")
    shutil.copyfile(TRANSCRIPTS / "taiyi.vtt", out / "taiyi.vtt")
    written += [out / "taiyi.wav", out / "taiyi.vtt"]

    narrator = out / "narrator"
    narrator.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(round(NARRATOR_GAP_SECONDS * rate), dtype=np.float32)
    pieces = [english]
    for _ in range(NARRATOR_COPIES - 1):
        pieces += [gap, english]
    sf.write(narrator / "narrator.flac", np.concatenate(pieces), rate, subtype="PCM_16")
    shutil.copyfile(TRANSCRIPTS / "narrator.csv", narrator / "narrator.csv")
    written += [narrator / "narrator.flac", narrator / "narrator.csv"]
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "voices")
    args = parser.parse_args()
    for path in build(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
