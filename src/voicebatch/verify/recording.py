"""``voicebatch verify``: the check and the alignment of any recording against its text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.verify.settings import VerifySettings
from voicebatch.verify.signal import UNKNOWN_RATE_LIMITS

# A recording is not a chunk: pauses between read sentences run longer than F5's.
RECORDING_LIMITS = replace(UNKNOWN_RATE_LIMITS, max_edge_silence=2.0, max_internal_silence=3.0)


def verify_recording(path: Path, text: str, *, language: str = "en", settings: VerifySettings | None = None) -> dict:
    """``{"passed", "cer", "wer", "transcript", "words", "sentences", "checks"}``; times in seconds."""
    import soundfile as sf

    from voicebatch.inputs.chunking import split_sentences
    from voicebatch.verify import build_verifier
    from voicebatch.verify.check import written_word_times
    from voicebatch.verify.text import written_words

    if not text.strip():
        raise InputError(path, "no text to check against")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as e:
        raise InputError(path, f"cannot read the audio: {str(e).splitlines()[0]}") from None
    settings = settings or VerifySettings(language=language)
    verifier = build_verifier(replace(settings, language=language, max_takes=1))
    check = verifier.check(samples.mean(axis=1), rate, " ".join(text.split()), limits=RECORDING_LIMITS)
    sentences = split_sentences(" ".join(text.split()))
    times = written_word_times(sentences, check.alignment, check.language) if check.alignment else None
    words_out, sentences_out, position = [], [], 0
    for sentence in sentences:
        own = []
        for word in written_words(sentence):
            timing = times[position] if times else None
            position += 1
            own.append({"word": word, "start": _r(timing and timing[0]), "end": _r(timing and timing[1])})
        words_out += own
        placed = [w for w in own if w["start"] is not None]
        sentences_out.append(
            {
                "text": sentence,
                "start": placed[0]["start"] if placed else None,
                "end": placed[-1]["end"] if placed else None,
            }
        )
    details = check.as_json()
    return {
        "passed": check.passed,
        "status": check.status,
        "cer": details["cer"],
        "wer": details["wer"],
        "transcript": details["transcript"],
        "words": words_out,
        "sentences": sentences_out,
        "checks": {
            "reasons": details["reasons"],
            "language": check.language,
            "recognizer": check.transcript.backend if check.transcript else None,
            "aligner": check.alignment.aligner if check.alignment else None,
            "unplaced_words": sum(w["start"] is None for w in words_out),
            "diff": details["diff"],
            "signal": details["signal"],
            "mode": verifier.mode,
            "max_cer": verifier.settings.threshold(),
            "notes": list(verifier.notes),
        },
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)
