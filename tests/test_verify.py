"""Verified speech on real speech made offline with espeak-ng: the checks, the
re-take loop, quarantine, and word and sentence times measured by forced alignment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from voicebatch.keys import take_seed
from voicebatch.synthesis.engine import ChunkAudio, ChunkRequest, Reference
from voicebatch.verify import VerifySettings, build_verifier
from voicebatch.verify.signal import to_16k
from voicebatch.verify.takes import RANDOM_WEIGHTS_NOTE, verify_chunks
from voicebatch.verify.text import guess_language, normalise

from speech_helpers import onset, silence, speak

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "harvard72"
HARVARD72 = (
    "A gold ring will please most any girl. The long journey home took a year. She saw a cat in the neighbor's "
    "house. A pink shell was found on the sandy beach. Small children came to see him. The grass and bushes were "
    "wet with dew. The blind man counted his old coins. A severe storm tore down the barn. She called his name "
    "many times. When you hear the bell, come quickly."
)
# Sentences (Harvard lists) with the word each planted flaw drops or repeats.
SENTENCES = {
    "These days a chicken leg is a rare dish.": "chicken",
    "Four hours of steady work faced us.": "steady",
    "The soft cushion broke the man's fall.": "cushion",
}
RATE = 24_000


def dropped(sentence: str, word: str) -> str:
    return sentence.replace(f" {word}", "", 1)


def repeated(sentence: str, word: str) -> str:
    return sentence.replace(word, f"{word} {word}", 1)


@pytest.fixture(scope="module")
def verifier():
    return build_verifier(VerifySettings())


# -- text ---------------------------------------------------------------------------------


def test_normalisation_spells_numbers_and_drops_case_and_punctuation() -> None:
    assert normalise("The 3 cats' 21st birthday—today, at 2.5 PM!") == (
        "the three cats twenty first birthday today at two point five pm"
    )
    assert normalise("Le 21 juin.", "fr") == "le vingt et un juin"


def test_language_from_the_script_of_the_text() -> None:
    assert guess_language("对，这就是我，万人敬仰的太乙真人。") == "zh"
    assert guess_language("こんにちは、世界") == "ja"
    assert guess_language("A plain English sentence.") == "en"
    assert guess_language("Ein deutscher Satz.", "de") == "de"
    assert guess_language("Привет, мир") == "und"  # Cyrillic names no single language


# -- content check on real speech ------------------------------------------------------------


@pytest.mark.parametrize("sentence", sorted(SENTENCES))
def test_pocketsphinx_passes_clean_speech_and_fails_a_dropped_or_repeated_word(verifier, sentence: str) -> None:
    word = SENTENCES[sentence]
    good = verifier.check(speak(sentence, RATE), RATE, sentence)
    assert good.status == "passed", good.reasons
    assert good.score.cer <= 0.10 and good.alignment.unplaced == 0
    for flawed in (dropped(sentence, word), repeated(sentence, word)):
        check = verifier.check(speak(flawed, RATE), RATE, sentence)
        assert check.status == "failed", flawed
        assert any("CER" in r for r in check.reasons), check.reasons
        assert check.score.cer > 0.10


def test_another_sentence_and_noise_fail(verifier) -> None:
    text = "These days a chicken leg is a rare dish."
    other = verifier.check(speak("Four hours of steady work faced us.", RATE), RATE, text)
    noise = np.random.default_rng(0).standard_normal(RATE * 3).astype(np.float32) * 0.1
    assert other.status == "failed" and verifier.check(noise, RATE, text).status == "failed"


def test_a_language_the_backend_cannot_hear_is_not_checked_never_passed(verifier) -> None:
    check = verifier.check(speak("Bonjour à tous", RATE, voice="fr"), RATE, "对，这就是我。")
    assert check.status in ("not_checked", "failed") and check.status != "passed"
    assert any("not checked" in r for r in check.reasons)


# -- signal checks ---------------------------------------------------------------------------


def test_signal_checks_name_each_problem(verifier) -> None:
    text = "These days a chicken leg is a rare dish."
    speech = speak(text, RATE)
    cases = {
        "no speech": np.zeros(RATE * 2, dtype=np.float32),
        "non-finite": np.where(np.arange(speech.size) == 100, np.nan, speech).astype(np.float32),
        "clipping": np.clip(speech * 40, -1, 1),
        "pause inside": np.concatenate([speech[: speech.size // 2], silence(2.5, RATE), speech[speech.size // 2 :]]),
        "silence before": np.concatenate([silence(1.6, RATE), speech]),
        "below": speech * 0.003,
    }
    for problem, samples in cases.items():
        check = verifier.check(samples, RATE, text, bytes_per_second=14.0)
        assert check.status == "failed", problem
        assert any(problem in r for r in check.reasons), (problem, check.reasons)
    assert verifier.check(speech, RATE, text, bytes_per_second=4.0).signal.problems[0].startswith("2.")  # too short


# -- takes -----------------------------------------------------------------------------------


class PlantedEngine:
    """A test engine: for each (chunk key, seed) it returns the take the test planted."""

    def __init__(self, planted: dict[tuple[str, int], np.ndarray], *, random_weights: bool = False) -> None:
        self.planted = planted
        self.files = SimpleNamespace(name="planted", random_weights=random_weights)
        self.device = "cpu"
        self.calls: list[list[tuple[str, int]]] = []

    def synthesize(self, references, chunks, params, **kwargs) -> list[ChunkAudio]:
        self.calls.append([(c.key, c.seed) for c in chunks])
        out = []
        for c in chunks:
            samples = self.planted[(c.key, c.seed)]
            frames = samples.shape[0] // 256
            out.append(ChunkAudio(c.key, samples[: frames * 256], frames, np.zeros((100, frames), np.float32)))
        return out


def _reference() -> dict[str, Reference]:
    text = "The boy was there when the sun rose."
    return {"v": Reference("v", speak(text, RATE), text)}


def test_the_retake_loop_keeps_the_good_take_and_quarantines_a_chunk_that_never_passes(verifier) -> None:
    a, b, c = sorted(SENTENCES)
    requests = [ChunkRequest(f"key-{n}", "v", text, 1.0, 1000 + n) for n, text in enumerate((a, b, c))]
    seeds = {r.key: [take_seed(r.key, k, r.seed) for k in (1, 2, 3)] for r in requests}
    planted = {}
    # a: dropped word, then repeated word, then the good take. b: good at once. c: never good.
    for take, audio in zip(seeds["key-0"], (dropped(a, SENTENCES[a]), repeated(a, SENTENCES[a]), a), strict=True):
        planted[("key-0", take)] = speak(audio, RATE)
    planted[("key-1", seeds["key-1"][0])] = speak(b, RATE)
    for take in seeds["key-2"]:
        planted[("key-2", take)] = speak(dropped(c, SENTENCES[c]), RATE)
    engine = PlantedEngine(planted)
    first = engine.synthesize(_reference(), requests, None)
    verified = verify_chunks(engine, _reference(), requests, None, first, verifier, max_takes=3, random_weights=False)
    # Re-takes are batched: one engine call per round with every failing chunk in it.
    assert engine.calls[1:] == [
        [("key-0", seeds["key-0"][1]), ("key-2", seeds["key-2"][1])],
        [("key-0", seeds["key-0"][2]), ("key-2", seeds["key-2"][2])],
    ]
    by_key = {v.request.key: v for v in verified}
    assert by_key["key-0"].status == "passed" and by_key["key-0"].takes[by_key["key-0"].kept].number == 3
    assert [t.check.status for t in by_key["key-0"].takes] == ["failed", "failed", "passed"]
    assert by_key["key-1"].status == "passed" and len(by_key["key-1"].takes) == 1
    assert by_key["key-2"].status == "quarantined" and len(by_key["key-2"].takes) == 3
    record = by_key["key-2"].qa_record()
    assert [t["seed"] for t in record["takes"]] == seeds["key-2"] and record["status"] == "quarantined"
    assert record["alignment"] is not None, "a kept failure is still aligned for its timings"
    np.testing.assert_array_equal(
        by_key["key-0"].audio.samples, planted[("key-0", seeds["key-0"][2])][: by_key["key-0"].audio.samples.size]
    )


def test_take_seeds_are_deterministic_and_distinct() -> None:
    seeds = [take_seed("abc", k, 42) for k in range(1, 6)]
    assert seeds[0] == 42 and len(set(seeds)) == 5
    assert seeds == [take_seed("abc", k, 42) for k in range(1, 6)]
    assert take_seed("abd", 2, 42) != seeds[1] and all(0 <= s < 2**31 for s in seeds)


def test_random_weights_get_no_retakes(verifier) -> None:
    text = "Four hours of steady work faced us."
    request = ChunkRequest("k", "v", text, 1.0, 7)
    engine = PlantedEngine({("k", 7): np.random.default_rng(1).standard_normal(RATE * 2).astype(np.float32) * 0.1})
    engine.files.random_weights = True
    (chunk,) = verify_chunks(
        engine,
        _reference(),
        [request],
        None,
        engine.synthesize({}, [request], None),
        verifier,
        max_takes=3,
        random_weights=True,
    )
    assert chunk.status == "quarantined" and len(chunk.takes) == 1 and len(engine.calls) == 1
    assert RANDOM_WEIGHTS_NOTE in chunk.notes


# -- alignment accuracy ----------------------------------------------------------------------


def test_sentence_and_word_times_match_known_times(verifier) -> None:
    """Sentences spoken separately and joined with known gaps (sentence starts within 100 ms);
    words spoken separately and joined (word starts within 150 ms)."""
    from voicebatch.render.join import assemble
    from voicebatch.verify.check import written_word_times

    sentences = (
        "The birch canoe slid on the smooth planks.",
        "Glue the sheet to the dark blue background.",
        "The box was thrown beside the parked truck.",
    )
    pieces, truth, position = [silence(0.3, RATE)], [], 0.3
    for sentence, gap in zip(sentences, (0.45, 0.8, 0.6), strict=True):
        audio = speak(sentence, RATE)
        truth.append(position + onset(audio, RATE))
        pieces += [audio, silence(gap, RATE)]
        position += audio.size / RATE + gap
    audio = np.concatenate(pieces)
    text = " ".join(sentences)
    alignment = verifier.align(to_16k(audio, RATE), text, "en")
    assert alignment.aligner == "pocketsphinx:en-us" and alignment.unplaced == 0
    times = written_word_times(sentences, alignment, "en")
    out = assemble([audio], [sentences], trim=False, word_times=[times])
    starts = [out.words[i].start for i in np.cumsum([0] + [len(s.split()) for s in sentences[:-1]])]
    assert np.max(np.abs(np.array(starts) - truth)) < 0.10, (starts, truth)
    assert [c.source for c in out.sentences] == ["aligned", "aligned", "aligned"]
    assert all(w.source == "aligned" for w in out.words)
    assert np.max(np.abs(np.array([c.start for c in out.sentences[1:]]) - truth[1:])) < 0.10

    words = ["Small", "children", "came", "to", "see", "him"]
    pieces, truth, position = [silence(0.2, RATE)], [], 0.2
    for word, gap in zip(words, (0.12, 0.08, 0.15, 0.1, 0.12, 0.2), strict=True):
        clip = speak(word, RATE)
        truth.append(position + onset(clip, RATE))
        pieces += [clip, silence(gap, RATE)]
        position += clip.size / RATE + gap
    audio = np.concatenate(pieces)
    alignment = verifier.align(to_16k(audio, RATE), " ".join(words) + ".", "en")
    times = written_word_times([" ".join(words) + "."], alignment, "en")
    assert all(times), times
    assert np.max(np.abs(np.array([t[0] for t in times]) - truth)) < 0.15, (times, truth)


# -- voicebatch verify -----------------------------------------------------------------------


def _verify_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicebatch.cli", "verify", *args], capture_output=True, text=True)


def test_voicebatch_verify_prints_the_check_and_the_alignment(tmp_path: Path) -> None:
    import soundfile as sf

    first, second = "These days a chicken leg is a rare dish.", "Four hours of steady work faced us."
    audio = np.concatenate([speak(first), silence(0.6), speak(second)])
    sf.write(tmp_path / "take.wav", audio, 16_000)
    result = _verify_cli(str(tmp_path / "take.wav"), "--text", f"{first} {second}", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) >= {"passed", "cer", "wer", "transcript", "words", "sentences", "checks"}
    assert document["passed"] is True and document["cer"] <= 0.1
    assert [s["text"] for s in document["sentences"]] == [first, second]
    assert len(document["words"]) == len(f"{first} {second}".split())
    (a, b) = document["sentences"]
    assert a["start"] < a["end"] < b["start"] < b["end"] <= audio.size / 16_000 + 0.01
    (tmp_path / "text.txt").write_text("She called his name many times.\n")
    wrong = _verify_cli(str(tmp_path / "take.wav"), "--text-file", str(tmp_path / "text.txt"), "--json")
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["passed"] is False
    missing = _verify_cli(str(tmp_path / "nothing.wav"), "--text", "x")
    assert missing.returncode == 2 and "nothing.wav" in missing.stderr


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/fixtures is not beside this checkout")
def test_voicebatch_verify_on_the_shared_harvard_recording() -> None:
    result = _verify_cli(str(SHARED / "recording.wav"), "--text", HARVARD72, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["passed"] and document["cer"] < 0.05 and len(document["sentences"]) == 10
    starts = [s["start"] for s in document["sentences"]]
    assert starts == sorted(starts) and all(s is not None for s in starts)


def test_transcript_word_times_place_matched_tokens_only() -> None:
    from voicebatch.verify.records import Transcript
    from voicebatch.verify.score import transcript_alignment

    heard = Transcript(
        "these days a leg, 21",
        "en",
        "whisper:test",
        (
            ("these", 0.0, 0.2, 0.9),
            ("days", 0.2, 0.5, 0.9),
            ("a", 0.5, 0.6, 0.9),
            ("leg,", 0.9, 1.2, 0.8),
            ("21", 1.3, 1.9, 0.7),
        ),
    )
    tokens = ["these", "days", "a", "chicken", "leg", "twenty", "one"]
    alignment = transcript_alignment(heard, tokens, "en")
    assert [(w.start, w.end) for w in alignment.words] == [
        (0.0, 0.2),
        (0.2, 0.5),
        (0.5, 0.6),
        (None, None),
        (0.9, 1.2),
        (1.3, 1.6),
        (1.6, 1.9),
    ]
    assert alignment.unplaced == 1
