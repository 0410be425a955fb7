"""pocketsphinx: the offline English backend (its wheel ships the en-us model).

Recognition: pocketsphinx's free decoding is weak on synthetic voices (measured on
espeak-ng sentences: CER 0.4-0.8 with its general language model), so a take is decoded
with a language model built from the chunk's own text (``ArpaBoLM``, backing off to its
words in any order). The decoder can still say what it hears: a dropped word leaves a
gap, a repeated word is decoded twice, noise decodes to little or nothing, and the
transcript is scored against the text like any other backend's.

Alignment: pocketsphinx's forced aligner (the text as a grammar, frame by frame, 10 ms).
Beams are wide: with the defaults a clean synthetic sentence can fall off the beam and
fail. An alignment that cannot reach the end of the text places no word at all: that
is evidence against the take (the text is not what was spoken), not a reason to invent
times. Words missing from the pronunciation dictionary are not aligned or scored (and
are listed).
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.audio import file_sha256
from voicebatch.verify.records import Alignment, Transcript, WordTime

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.01
NAME = "pocketsphinx:en-us"
_BEAMS = {"beam": 1e-200, "wbeam": 1e-150, "pbeam": 1e-200}


class SphinxBackend:
    """Recognizer and Aligner for English.

    A decoder is built per take with a dictionary of just the take's words: pocketsphinx
    builds its search over the whole dictionary when a language model is added (25 s for
    the 126k-word CMUdict on a loaded 2-core machine; 10 ms with twenty words).
    """

    name = NAME

    def __init__(self) -> None:
        self._lineage: dict | None = None
        self._lexicon: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    def supports(self, language: str) -> bool:
        return language.split("-")[0].lower() == "en"

    def lineage(self) -> dict:
        """The acoustic model and dictionary it used, with their hashes (computed once)."""
        from importlib.metadata import version

        if self._lineage is None:
            root = _model_root()
            files = sorted(p for p in (root / "en-us" / "en-us").rglob("*") if p.is_file())
            files.append(root / "en-us" / "cmudict-en-us.dict")
            self._lineage = {
                "name": NAME,
                "package": f"pocketsphinx {version('pocketsphinx')}",
                "files": {p.relative_to(root).as_posix(): file_sha256(p) for p in files},
            }
        return self._lineage

    def lexicon(self) -> dict[str, list[str]]:
        """word -> its dictionary lines ("word(2) PH ONE S" for alternatives)."""
        with self._lock:
            if self._lexicon is None:
                lexicon: dict[str, list[str]] = {}
                with (_model_root() / "en-us" / "cmudict-en-us.dict").open(encoding="utf-8") as handle:
                    for line in handle:
                        word = line.split(" ", 1)[0]
                        lexicon.setdefault(word.split("(")[0], []).append(line.rstrip("\n"))
                self._lexicon = lexicon
            return self._lexicon

    def known(self, tokens: list[str]) -> list[bool]:
        lexicon = self.lexicon()
        return [t in lexicon for t in tokens]

    def transcribe(self, audio16k: np.ndarray, *, text: str, language: str) -> Transcript:
        from pocketsphinx.lm import ArpaBoLM

        from voicebatch.verify.text import normalise

        tokens = normalise(text, language).split()
        vocabulary = [t for t, k in zip(tokens, self.known(tokens), strict=True) if k]
        if not vocabulary:
            return Transcript("", language, NAME)
        model = ArpaBoLM(text=" ".join(vocabulary), add_start=True)
        model.compute()
        arpa = io.StringIO()
        model.write(arpa)
        with tempfile.TemporaryDirectory(prefix="voicebatch-sphinx-") as tmp:
            lm = Path(tmp, "take.arpa")
            lm.write_text(arpa.getvalue())
            decoder = self._decoder(vocabulary, Path(tmp), lm=str(lm))
            segments = _decode(decoder, audio16k)
        if segments is None:
            return Transcript("", language, NAME)
        words = tuple((w, a, b, s) for w, a, b, s in segments)
        return Transcript(" ".join(w[0] for w in words), language, NAME, words)

    def align(self, audio16k: np.ndarray, tokens: list[str], *, language: str) -> Alignment:
        known = self.known(tokens)
        words = [t for t, k in zip(tokens, known, strict=True) if k]
        placed: list[tuple[str, float, float, float]] = []
        if words:
            with tempfile.TemporaryDirectory(prefix="voicebatch-sphinx-") as tmp:
                decoder = self._decoder(words, Path(tmp), lm=None)
                decoder.set_align_text(" ".join(words))
                placed = _decode(decoder, audio16k) or []
        if [p[0] for p in placed] != words:
            placed = []  # the aligner could not follow the text to its end: nothing is placed
        times = iter(placed)
        out = []
        for token, k in zip(tokens, known, strict=True):
            timing = next(times, None) if k else None
            out.append(WordTime(token, timing[1], timing[2], timing[3]) if timing else WordTime(token, None, None))
        return Alignment(NAME, tuple(out))

    def _decoder(self, words: list[str], tmp: Path, **config: object) -> object:
        from pocketsphinx import Decoder

        lexicon = self.lexicon()
        dictionary = tmp / "take.dict"
        dictionary.write_text("".join(line + "\n" for w in sorted(set(words)) for line in lexicon[w]), encoding="utf-8")
        return Decoder(samprate=16000, loglevel="FATAL", dict=str(dictionary), bestpath=False, **_BEAMS, **config)


def _decode(decoder: object, audio16k: np.ndarray) -> list[tuple[str, float, float, float]] | None:
    """(word, start, end, score) of the best path, fillers left out; None when no path ends."""
    decoder.start_utt()
    decoder.process_raw(_pcm16(audio16k), full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return None
    out = []
    for segment in decoder.seg():
        name = segment.word.split("(")[0]  # "on(2)": the second pronunciation
        if name.startswith(("<", "[")):  # <sil>, <s>, </s>, [NOISE]
            continue
        out.append(
            (name, segment.start_frame * FRAME_SECONDS, (segment.end_frame + 1) * FRAME_SECONDS, float(segment.ascore))
        )
    return out


def _model_root() -> Path:
    from pocketsphinx import get_model_path

    return Path(get_model_path())


def _pcm16(audio16k: np.ndarray) -> bytes:
    import numpy as np

    return (np.clip(audio16k, -1.0, 1.0) * 32767).astype("<i2").tobytes()
