"""Assembly: cue boundaries are the chunk boundaries in the joined audio, to the sample."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebatch.render.cues import chunk_boundaries
from voicebatch.render.join import assemble, trim_silence

RATE = 24_000


def tone(seconds: float, lead: float = 0.0, trail: float = 0.0, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    body = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.concatenate([np.zeros(round(lead * RATE), np.float32), body, np.zeros(round(trail * RATE), np.float32)])


def test_trim_keeps_a_margin_and_records_what_it_removed() -> None:
    start, end = trim_silence(tone(1.0, lead=0.5, trail=0.3))
    assert start == round(0.45 * RATE) and end == round(1.55 * RATE)
    assert trim_silence(np.zeros(RATE, np.float32)) == (0, RATE)  # all silent: nothing removed


def test_positions_account_for_trim_and_cross_fade_to_the_sample() -> None:
    chunks = [tone(1.0, 0.3, 0.2), tone(2.0, 0.1, 0.4, 330.0), tone(0.5, 0.0, 0.0, 440.0)]
    out = assemble(chunks, [("One.",), ("Two.",), ("Three.",)], cross_fade=0.15)
    cf = round(0.15 * RATE)
    lengths = [round(1.1 * RATE), round(2.1 * RATE), round(0.5 * RATE)]  # trimmed, 50 ms margins kept
    assert [s.end_sample - s.start_sample for s in out.chunks] == lengths
    assert [s.start_sample for s in out.chunks] == [0, lengths[0] - cf, lengths[0] + lengths[1] - 2 * cf]
    assert out.samples.shape[0] == sum(lengths) - 2 * cf
    assert [s.trimmed_lead for s in out.chunks] == [round(0.25 * RATE), round(0.05 * RATE), 0]
    # The cross-fade mixes the tail of one chunk into the head of the next, linearly.
    start = out.chunks[1].start_sample
    first = chunks[0][round(0.25 * RATE) : round(0.25 * RATE) + lengths[0]]
    second = chunks[1][round(0.05 * RATE) :]
    fade = np.linspace(0, 1, cf, dtype=np.float32)
    np.testing.assert_allclose(
        out.samples[start : start + cf], first[-cf:] * (1 - fade) + second[:cf] * fade, atol=1e-6
    )
    # Sentence cues meet at the middle of each cross-fade, and cover the whole recording.
    bounds = [0, out.chunks[1].start_sample + cf // 2, out.chunks[2].start_sample + cf // 2, out.samples.shape[0]]
    assert [(c.start_sample, c.end_sample) for c in out.sentences] == list(itertools.pairwise(bounds))
    assert not any(c.estimated for c in out.sentences)
    assert {c.source for c in out.sentences} == {"chunk_boundary"}


def test_several_sentences_in_a_chunk_are_estimated_by_utf8_bytes() -> None:
    out = assemble([tone(3.0)], [("Short.", "A longer sentence.", "Ünïcödé.")], trim=False)
    sizes = [6, 18, 12]  # UTF-8 bytes: the four accented letters take two each
    total = out.samples.shape[0]
    assert [c.end_sample for c in out.sentences] == [round(total * 6 / 36), round(total * 24 / 36), total]
    assert [c.estimated for c in out.sentences] == [True, True, True]
    assert [len(t.encode()) for t in (c.text for c in out.sentences)] == sizes
    words = [w.text for w in out.words]
    assert words == ["Short.", "A", "longer", "sentence.", "Ünïcödé."]
    # Without an alignment every time inside the chunk is an estimate, one-word sentences too.
    assert [w.source for w in out.words] == ["estimated"] * 5


@settings(deadline=None, max_examples=40)
@given(
    st.lists(st.tuples(st.floats(0.05, 2.0), st.floats(0.0, 0.3), st.floats(0.0, 0.3)), min_size=1, max_size=6),
    st.floats(0.0, 0.3),
)
def test_invariants_cues_never_go_back_never_overlap_and_tile_the_audio(parts: list, cross_fade: float) -> None:
    chunks = [tone(body, lead, trail) for body, lead, trail in parts]
    texts = [tuple(f"S{i}-{j}." for j in range(1 + i % 3)) for i in range(len(chunks))]
    out = assemble(chunks, texts, cross_fade=cross_fade)
    for cues in (out.sentences, out.words):
        assert cues[0].start_sample == 0 and cues[-1].end_sample == out.samples.shape[0]
        for a, b in itertools.pairwise(cues):
            assert a.start_sample <= a.end_sample == b.start_sample
    assert chunk_boundaries(out.chunks, out.samples.shape[0]) == sorted(
        chunk_boundaries(out.chunks, out.samples.shape[0])
    )


def test_nothing_to_assemble() -> None:
    with pytest.raises(ValueError, match="no chunks"):
        assemble([], [])


def test_measured_word_times_place_cues_and_unplaced_words_are_estimated() -> None:
    audio = tone(3.0)
    sentences = ("One two.", "Three four five.")
    # Word times in the chunk's own audio; "four" was not placed by the aligner.
    times = [(0.20, 0.50), (0.55, 0.90), (1.60, 1.90), None, (2.40, 2.80)]
    out = assemble([audio], [sentences], trim=False, word_times=[times])
    assert [w.source for w in out.words] == ["aligned", "aligned", "aligned", "estimated", "aligned"]
    assert [(w.start, w.end) for w in out.words][:3] == [(0.2, 0.5), (0.55, 0.9), (1.6, 1.9)]
    assert 1.9 <= out.words[3].start <= out.words[3].end <= 2.4
    # The chunk's outer edges stay on its boundaries; inside, the measured starts and ends.
    assert (out.sentences[0].start, out.sentences[0].end) == (0.0, 0.9)
    assert (out.sentences[1].start, out.sentences[1].end) == (1.6, out.samples.shape[0] / 24_000)
    assert [c.source for c in out.sentences] == ["aligned", "aligned"]
    for a, b in itertools.pairwise(out.words):
        assert a.start_sample <= a.end_sample <= b.start_sample


def level(seconds: float, dbfs: float) -> np.ndarray:
    """Noise at an RMS level of ``dbfs``."""
    rng = np.random.default_rng(5)
    return (rng.standard_normal(round(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def test_trim_threshold_is_minus_45_dbfs() -> None:
    speech = tone(1.0)
    quiet_lead = np.concatenate([level(0.5, -50.0), speech])  # under the threshold: trimmed
    assert trim_silence(quiet_lead)[0] == round(0.45 * RATE)
    audible_lead = np.concatenate([level(0.5, -40.0), speech])  # over it: kept
    assert trim_silence(audible_lead)[0] == 0


def test_cross_fade_is_capped_at_half_of_either_piece() -> None:
    short = [tone(0.1), tone(0.1, freq=330.0), tone(1.0, freq=440.0)]  # 0.1 s pieces, 0.15 s cross-fade asked
    out = assemble(short, [("A.",), ("B.",), ("C.",)], cross_fade=0.15)
    half = round(0.1 * RATE) // 2
    assert [s.cross_fade for s in out.chunks] == [0, half, half]
    starts = [s.start_sample for s in out.chunks]
    assert starts == sorted(starts) and out.samples.shape[0] == 3 * round(0.1 * RATE) + round(0.9 * RATE) - 2 * half
    assert [s.trimmed_trail for s in out.chunks] == [0, 0, 0]
    trailing = assemble([tone(1.0, trail=0.3)], [("A.",)])
    assert trailing.chunks[0].trimmed_trail == round(0.25 * RATE), "the trimmed amounts are recorded"
