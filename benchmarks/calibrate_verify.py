"""Calibration of the pocketsphinx content check: CER of good takes against takes
with a word cut out or repeated, on real speech and on espeak-ng speech.

    python benchmarks/calibrate_verify.py [--harvard ../shared/fixtures/harvard72/recording.wav]

Real speech: the Harvard list 72 recording, cut into its ten sentences at the forced
alignment's word boundaries; the flawed takes cut out, or repeat, each sentence's longest
word (real audio, real word boundaries). Also the whole recording against its true text
and against the text with sentences 1 and 2 swapped. Synthetic: twenty Harvard sentences
(lists 1-2) spoken by espeak-ng, with the longest word dropped or repeated in the text it
speaks. Prints the figures docs/verification.md and benchmarks/RESULTS.md quote.
"""

from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HARVARD72 = (
    "A gold ring will please most any girl. The long journey home took a year. She saw a cat in the neighbor's "
    "house. A pink shell was found on the sandy beach. Small children came to see him. The grass and bushes were "
    "wet with dew. The blind man counted his old coins. A severe storm tore down the barn. She called his name "
    "many times. When you hear the bell, come quickly."
)
LISTS_1_2 = """The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.
It's easy to tell the depth of a well. These days a chicken leg is a rare dish. Rice is often served in round
bowls. The juice of lemons makes fine punch. The box was thrown beside the parked truck. The hogs were fed
chopped corn and garbage. Four hours of steady work faced us. Large size in stockings is hard to sell. The boy
was there when the sun rose. A rod is used to catch pink salmon. The source of the huge river is the clear
spring. Kick the ball straight and follow through. Help the woman get back to her feet. A pot of tea helps to
pass the evening. Smoky fires lack flame and heat. The soft cushion broke the man's fall. The salt breeze came
across from the sea. The girl at the booth sold fifty bonds."""


def espeak(text: str):
    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "-s", "160", "--stdout", text], capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, rate, 16_000).astype(np.float32)


def cer(backend, audio, text: str) -> float:
    from voicebatch.verify.score import score_text

    return score_text(text, backend.transcribe(audio, text=text, language="en").text).cer


def summary(name: str, values: list[float]) -> str:
    v = np.array(values)
    return (
        f"{name}: mean {v.mean():.3f}, min {v.min():.3f}, max {v.max():.3f}, at or below 0.10: {(v <= 0.10).mean():.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--harvard", type=Path, default=ROOT.parent / "shared" / "fixtures" / "harvard72" / "recording.wav"
    )
    args = parser.parse_args()

    from voicebatch.inputs.chunking import split_sentences
    from voicebatch.verify.signal import to_16k
    from voicebatch.verify.sphinx import SphinxBackend
    from voicebatch.verify.text import normalise

    backend = SphinxBackend()
    if args.harvard.is_file():
        import soundfile as sf

        samples, rate = sf.read(str(args.harvard), dtype="float32")
        audio = to_16k(samples, rate)
        tokens = normalise(HARVARD72).split()
        alignment = backend.align(audio, tokens, language="en")
        assert alignment.unplaced == 0, "the aligner could not follow the recording"
        results: dict[str, list[float]] = {"good": [], "cut": [], "repeated": []}
        position = 0
        for sentence in split_sentences(HARVARD72):
            words = alignment.words[position : position + len(normalise(sentence).split())]
            position += len(words)
            a, b = max(0, round((words[0].start - 0.1) * 16_000)), round((words[-1].end + 0.1) * 16_000)
            longest = max(words, key=lambda w: len(w.word))
            wa, wb = round(longest.start * 16_000), round(longest.end * 16_000)
            results["good"].append(cer(backend, audio[a:b], sentence))
            results["cut"].append(cer(backend, np.concatenate([audio[a:wa], audio[wb:b]]), sentence))
            results["repeated"].append(cer(backend, np.concatenate([audio[a:wb], audio[wa:b]]), sentence))
        print("Real speech, harvard72 (10 sentences, 8 kHz recording):")
        for name, values in results.items():
            print("  " + summary(name, values), [round(x, 3) for x in values])
        sentences = split_sentences(HARVARD72)
        swapped = " ".join([sentences[1], sentences[0], *sentences[2:]])
        print(
            f"  whole recording: CER {cer(backend, audio, HARVARD72):.3f} against its text, "
            f"{cer(backend, audio, swapped):.3f} with sentences 1 and 2 swapped"
        )
    sentences = split_sentences(" ".join(LISTS_1_2.split()))
    results = {"good": [], "dropped": [], "repeated": []}
    for sentence in sentences:
        words = sentence.rstrip(".").split()
        k = max(range(len(words)), key=lambda i: len(words[i]))
        results["good"].append(cer(backend, espeak(sentence), sentence))
        results["dropped"].append(cer(backend, espeak(" ".join(words[:k] + words[k + 1 :])), sentence))
        results["repeated"].append(cer(backend, espeak(" ".join(words[: k + 1] + words[k:])), sentence))
    print("espeak-ng speech (20 Harvard sentences, lists 1-2, 160 wpm):")
    for name, values in results.items():
        print("  " + summary(name, values))
    pairs = [(g, d, r) for g, d, r in zip(*results.values(), strict=True) if g <= 0.10]
    dropped = sum(d > 0.10 for _, d, _ in pairs)
    repeated = sum(r > 0.10 for *_, r in pairs)
    print(
        f"  sentences whose good take passes: {len(pairs)}; of their flawed takes failing at 0.10: "
        f"{dropped}/{len(pairs)} dropped, {repeated}/{len(pairs)} repeated"
    )


if __name__ == "__main__":
    main()
