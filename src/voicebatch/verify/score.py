"""Scoring a transcript against the known text (jiwer), and timing tokens from a transcript.

Both sides are normalised by ``voicebatch.verify.text.normaliser``; character and word
error rates come from jiwer, and so does the word-level diff shown in the run report.
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

from voicebatch.verify.records import Alignment, Transcript, WordTime
from voicebatch.verify.text import normalise


@dataclass(frozen=True, slots=True)
class TextScore:
    cer: float
    wer: float
    reference: str  # normalised text
    hypothesis: str  # normalised transcript
    diff: tuple[
        tuple[str, str, str], ...
    ]  # (op, reference words, hypothesis words); op: equal|substitute|delete|insert


def score_text(text: str, heard: str, language: str = "en", *, only: set[str] | None = None) -> TextScore:
    """CER and WER of ``heard`` against ``text``. ``only``: keep just these reference tokens
    (the words a backend can recognise at all); the transcript is never filtered."""
    reference = normalise(text, language)
    if only is not None:
        reference = " ".join(t for t in reference.split() if t in only)
    hypothesis = normalise(heard, language)
    if not reference:
        return TextScore(0.0 if not hypothesis else 1.0, 0.0 if not hypothesis else 1.0, reference, hypothesis, ())
    if not hypothesis:
        return TextScore(1.0, 1.0, reference, hypothesis, (("delete", reference, ""),))
    words = jiwer.process_words(reference, hypothesis)
    chars = jiwer.process_characters(reference, hypothesis)
    diff = tuple(
        (
            chunk.type,
            " ".join(words.references[0][chunk.ref_start_idx : chunk.ref_end_idx]),
            " ".join(words.hypotheses[0][chunk.hyp_start_idx : chunk.hyp_end_idx]),
        )
        for chunk in words.alignments[0]
    )
    return TextScore(min(1.0, chars.cer), min(1.0, words.wer), reference, hypothesis, diff)


def transcript_alignment(transcript: Transcript, tokens: list[str], language: str) -> Alignment:
    """Times for the text's tokens from a transcript's word times (Whisper word timestamps):
    a token gets the time of the heard word it matches in jiwer's alignment (equal or
    substituted one for one); tokens the recogniser did not hear are left unplaced."""
    heard: list[tuple[str, float, float, float]] = []
    for word, start, end, score in transcript.words:
        pieces = normalise(word, language).split()
        for k, piece in enumerate(pieces):  # a word spelled out into several tokens shares its time
            a = start + (end - start) * k / len(pieces)
            b = start + (end - start) * (k + 1) / len(pieces)
            heard.append((piece, a, b, score))
    placed: list[WordTime | None] = [None] * len(tokens)
    if tokens and heard:
        output = jiwer.process_words(" ".join(tokens), " ".join(h[0] for h in heard))
        for chunk in output.alignments[0]:
            if chunk.type == "equal" or (
                chunk.type == "substitute"
                and chunk.ref_end_idx - chunk.ref_start_idx == chunk.hyp_end_idx - chunk.hyp_start_idx
            ):
                for offset in range(chunk.ref_end_idx - chunk.ref_start_idx):
                    _, start, end, score = heard[chunk.hyp_start_idx + offset]
                    ref = chunk.ref_start_idx + offset
                    placed[ref] = WordTime(tokens[ref], start, end, score if chunk.type == "equal" else 0.0)
    words = tuple(p or WordTime(t, None, None) for p, t in zip(placed, tokens, strict=True))
    return Alignment(f"words:{transcript.backend}", words)
