"""The faster-whisper and MMS_FA paths, offline, on models the tests build themselves:
randomly initialised Whisper converted to CTranslate2 with its converter, and torchaudio's
wav2vec2 with MMS_FA's labels, both loaded through the speech model store. These tests
prove loading and plumbing, not accuracy: random weights hear nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.synthesis.models import ModelError
from voicebatch.verify import VerifySettings, build_verifier
from voicebatch.verify.signal import to_16k
from voicebatch.verify.store import MMS_FA_NAME, SpeechModelStore, whisper_store_name

from speech_helpers import build_random_mms, build_random_whisper, speak


@pytest.fixture(scope="module")
def models_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models prefix (a local directory standing in for the S3 one) holding both models."""
    root = tmp_path_factory.mktemp("models-prefix")
    build_random_whisper(root / "speech" / whisper_store_name("tiny-random"))
    build_random_mms(root / "speech" / MMS_FA_NAME)
    return root


def test_speech_models_come_from_the_prefix_verified_and_cached(models_prefix: Path, tmp_path: Path) -> None:
    store = SpeechModelStore(tmp_path / "cache", open_storage(str(models_prefix)), hub=False)
    model = store.resolve(whisper_store_name("tiny-random"))
    assert model.kind == "whisper" and model.random_weights and store.fetched
    assert model.directory == tmp_path / "cache" / "speech" / "whisper-tiny-random"
    assert {"model.bin", "config.json", "tokenizer.json"} <= set(model.files)
    again = SpeechModelStore(tmp_path / "cache", None, hub=False)
    assert again.resolve(model.name).checksum == model.checksum and not again.fetched  # the cache alone
    with pytest.raises(ModelError, match="not found"):
        again.resolve("whisper-unknown")
    assert again.available(MMS_FA_NAME) is None, "no download is tried for MMS_FA"


def test_a_corrupted_speech_model_is_refused(models_prefix: Path, tmp_path: Path) -> None:
    copy = tmp_path / "prefix"
    shutil.copytree(models_prefix, copy)
    (copy / "speech" / MMS_FA_NAME / "model.pt").write_bytes(b"not the weights")
    store = SpeechModelStore(tmp_path / "cache", open_storage(str(copy)), hub=False)
    with pytest.raises(ModelError, match="sha256"):
        store.resolve(MMS_FA_NAME)
    assert not (tmp_path / "cache" / "speech" / MMS_FA_NAME).exists(), "nothing half-fetched stays in the cache"


def test_faster_whisper_path_transcribes_and_times_words(models_prefix: Path, tmp_path: Path) -> None:
    from voicebatch.verify.score import transcript_alignment

    store = SpeechModelStore(tmp_path / "cache", open_storage(str(models_prefix)), hub=False)
    verifier = build_verifier(VerifySettings(asr_model="whisper:tiny-random"), models=store)
    assert verifier.recognizer.name == "whisper:tiny-random" and verifier.recognizer.supports("en")
    assert verifier.lineage()["recognizer"]["random_weights"] is True
    text = "These days a chicken leg is a rare dish."
    check = verifier.check(speak(text, 16_000), 16_000, text)
    assert check.transcript.backend == "whisper:tiny-random" and isinstance(check.transcript.text, str)
    assert check.score is not None and 0.0 <= check.score.cer <= 1.0
    assert check.status in ("passed", "failed")  # random weights: any verdict, but a verdict
    # The fallback aligner: the text's tokens timed from the transcript's word timestamps.
    alignment = transcript_alignment(check.transcript, text.lower().rstrip(".").split(), "en")
    assert alignment.aligner == "words:whisper:tiny-random" and len(alignment.words) == 9
    assert all(w.start <= w.end for w in alignment.words if w.placed)


def test_mms_fa_path_aligns_every_word_in_order(models_prefix: Path, tmp_path: Path) -> None:
    store = SpeechModelStore(tmp_path / "cache", open_storage(str(models_prefix)), hub=False)
    verifier = build_verifier(VerifySettings(mode="signal", language="fr"), models=store)
    assert [a.name for a in verifier.aligners] == ["pocketsphinx:en-us", "mms_fa"]
    text = "Bonjour à tous, voici un essai."
    audio = speak(text, 16_000, voice="fr")
    alignment = verifier.align(audio, text, "fr")
    assert (
        alignment.aligner == "mms_fa"
        and [w.word for w in alignment.words] == text.lower().replace(",", "").replace(".", "").split()
    )
    starts = [w.start for w in alignment.words]
    assert alignment.unplaced == 0 and starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= audio.size / 16_000 + 0.03 for w in alignment.words)
    assert np.isfinite([w.score for w in alignment.words]).all()


def test_faster_whisper_decodes_a_batch_of_takes_each_as_it_would_alone(
    models_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicebatch.verify.check import batch_transcripts

    store = SpeechModelStore(tmp_path / "cache", open_storage(str(models_prefix)), hub=False)
    verifier = build_verifier(VerifySettings(asr_model="whisper:tiny-random"), models=store)
    texts = ["These days a chicken leg is a rare dish.", "Rice is often served in round bowls.", "Hello there."]
    takes = [(f"key-{i}", speak(t, 24_000, wpm=100 + 40 * i), 24_000, t) for i, t in enumerate(texts)]
    alone = {key: verifier.recognizer.transcribe_many([to_16k(s, r)], language="en")[0] for key, s, r, _ in takes}

    def one_by_one(*args, **kwargs):
        raise AssertionError("a batch's takes are not transcribed one by one")

    monkeypatch.setattr(verifier.recognizer, "transcribe", one_by_one)
    together = batch_transcripts(verifier, takes)
    assert sorted(together) == sorted(alone)
    for key, samples, rate, text in takes:
        assert together[key].text == alone[key].text and together[key].backend == "whisper:tiny-random"
        assert [w[0] for w in together[key].words] == [w[0] for w in alone[key].words]
        check = verifier.check(samples, rate, text, transcript=together[key])  # uses it, transcribes nothing
        assert check.transcript is together[key]
