"""Long-form: linear joining that gives the same samples and cues as before, a joined
signal streamed to disk and rendered block by block to the same bytes, a book without a cap."""

from __future__ import annotations

import gc
import io
import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebatch.inputs.chunking import Chunk
from voicebatch.render import outputs
from voicebatch.render.cues import place_cues as _cues
from voicebatch.render.join import assemble, trim_silence
from voicebatch.render.join_file import assemble_to_file, read_blocks
from voicebatch.render.outputs import OutputOptions, encode_audio, render_files, render_outputs

from publish_helpers import RATE


def tone(seconds: float, lead: float = 0.0, trail: float = 0.0, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    body = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.concatenate([np.zeros(round(lead * RATE), np.float32), body, np.zeros(round(trail * RATE), np.float32)])


def assemble_before_issue_11(chunks, sentences, *, cross_fade, trim=True, word_times=None, pauses=None):
    """The joining as it was before the linear joining, verbatim (it re-concatenated the whole output for
    every chunk; pauses as the narration joining inserted them): the oracle the linear joining must agree
    with, sample for sample."""
    from voicebatch.render.cues import ChunkSpan

    joined = np.zeros(0, dtype=np.float32)
    spans = []
    for index, audio in enumerate(chunks):
        start, end = trim_silence(audio, RATE) if trim else (0, audio.shape[0])
        piece = audio[start:end].astype(np.float32)
        pause = pauses[index - 1] if pauses is not None and index > 0 else 0.0
        if pause > 0:
            joined, piece, spans[-1], start, silence = _join_with_pause(
                joined, piece, spans[-1], start, round(pause * RATE), RATE, measure=trim
            )
            spans.append(
                ChunkSpan(
                    index, joined.shape[0] - piece.shape[0], joined.shape[0], start, audio.shape[0] - end, 0, silence
                )
            )
            continue
        previous = spans[-1].end_sample - spans[-1].start_sample if spans else 0
        overlap = min(round(cross_fade * RATE), previous // 2, piece.shape[0] // 2)
        position = joined.shape[0] - overlap
        if overlap > 0:
            fade = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
            mixed = joined[-overlap:] * (1.0 - fade) + piece[:overlap] * fade
            joined = np.concatenate([joined[:-overlap], mixed, piece[overlap:]])
        else:
            joined = np.concatenate([joined, piece])
        spans.append(ChunkSpan(index, position, position + piece.shape[0], start, audio.shape[0] - end, overlap))
    sentence_cues, word_cues = _cues(spans, sentences, joined.shape[0], RATE, word_times)
    return joined, tuple(spans), tuple(sentence_cues), tuple(word_cues)


def _join_with_pause(joined, piece, before, start, pause, rate, *, measure):
    """The first pause joining, verbatim (part of the oracle above)."""
    from voicebatch.render.cues import ChunkSpan
    from voicebatch.render.join import quiet_margins

    tail = quiet_margins(joined[before.start_sample :], rate)[1] if measure else 0
    head = quiet_margins(piece, rate)[0] if measure else 0
    excess = max(0, tail + head - pause)
    cut_tail = min(tail, (excess + 1) // 2)
    cut_head = min(head, excess - cut_tail)
    cut_tail = excess - cut_head
    if cut_tail:
        joined = joined[:-cut_tail]
        before = ChunkSpan(
            before.index,
            before.start_sample,
            before.end_sample - cut_tail,
            before.trimmed_lead,
            before.trimmed_trail + cut_tail,
            before.cross_fade,
            before.silence_before,
        )
    silence = pause - (tail - cut_tail) - (head - cut_head)
    piece = piece[cut_head:]
    joined = np.concatenate([joined, np.zeros(silence, dtype=np.float32), piece])
    return joined, piece, before, start + cut_head, silence


def script_chunks(texts: list[tuple[str, ...]]) -> list[Chunk]:
    """The plan's chunks for ``texts`` (one tuple of sentences per chunk), for the text files."""
    ids = iter(range(sum(len(t) for t in texts)))  # the script's sentences, numbered across chunks
    return [
        Chunk("s", k, "anna", " ".join(t), 1.0, t, sentence_ids=tuple(next(ids) for _ in t))
        for k, t in enumerate(texts)
    ]


PARTS = st.lists(
    st.tuples(st.floats(0.01, 1.5), st.floats(0.0, 0.3), st.floats(0.0, 0.3), st.floats(100.0, 900.0)),
    min_size=1,
    max_size=7,
)


@settings(deadline=None, max_examples=60)
@given(
    parts=PARTS,
    cross_fade=st.floats(0.0, 0.4),
    trim=st.booleans(),
    aligned=st.booleans(),
    pauses=st.none() | st.lists(st.sampled_from([0.0, 0.01, 0.3, 0.8]), min_size=7, max_size=7),
)
def test_linear_joining_gives_the_same_samples_and_cues_as_before(
    parts: list, cross_fade: float, trim: bool, aligned: bool, pauses: list[float] | None
) -> None:
    chunks = [tone(body, lead, trail, freq) for body, lead, trail, freq in parts]
    texts = [tuple(f"Sentence {i}-{j} has words." for j in range(1 + i % 3)) for i in range(len(chunks))]
    # Measured word times (verification), some words unplaced: they must survive the restructuring.
    times = None
    if aligned:
        times = []
        for k, sentences in enumerate(texts):
            count = sum(len(s.split()) for s in sentences)
            step = chunks[k].shape[0] / RATE / (count + 1)
            times.append([None if w % 4 == 3 else (w * step, (w + 0.8) * step) for w in range(count)])
    # Pauses between chunks (some 0: cross-faded), a margin-cutting 10 ms among them.
    pauses = pauses[: len(chunks)] if pauses is not None else None
    expected = assemble_before_issue_11(
        chunks, texts, cross_fade=cross_fade, trim=trim, word_times=times, pauses=pauses
    )
    out = assemble(chunks, texts, cross_fade=cross_fade, trim=trim, word_times=times, pauses=pauses)
    assert np.array_equal(out.samples, expected[0]), "the same samples, bit for bit"
    assert (out.chunks, out.sentences, out.words) == expected[1:]


def test_joining_reads_chunks_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator of chunks is consumed as the joining goes: when chunk k is read, chunk k-2
    is no longer referenced (a book is never held whole); the file, written through to the
    disk as it goes, holds the joined signal."""
    from voicebatch.render import join_file as longform

    monkeypatch.setattr(longform, "SYNC_BYTES", 100_000)
    alive: list[weakref.ref] = []
    held_back: list[int] = []

    def chunks():
        for k in range(12):
            gc.collect()
            held_back.append(sum(r() is not None for r in alive[: max(0, k - 1)]))
            audio = tone(0.5, 0.1, 0.1, 200.0 + 30 * k)
            alive.append(weakref.ref(audio))
            yield audio

    texts = [(f"Chunk {k}.",) for k in range(12)]
    joined = assemble_to_file(chunks(), texts, tmp_path / "joined.f32")
    assert held_back == [0] * 12
    expected = assemble([tone(0.5, 0.1, 0.1, 200.0 + 30 * k) for k in range(12)], texts)
    assert np.array_equal(np.concatenate(list(read_blocks(joined.path, 5000))), expected.samples)
    assert joined.timeline.chunks == expected.chunks and joined.timeline.words == expected.words


@pytest.mark.parametrize("audio_format", ["wav", "flac", "mp3"])
@pytest.mark.parametrize("loudness", [-16.0, None])
def test_streamed_render_gives_the_same_files_as_in_memory(
    tmp_path: Path, audio_format: str, loudness: float | None
) -> None:
    chunks = [tone(2.0, 0.2, 0.3, 180.0 + 50 * k) * (0.2 + 0.3 * k) for k in range(5)]
    chunks[2][RATE // 2] = 0.95  # a click: the true-peak ceiling decides the gain
    texts = [(f"Chunk {k} speaks.", "A second sentence.") for k in range(5)]
    options = OutputOptions(audio_format=audio_format, loudness_lufs=loudness)
    in_memory = render_outputs(assemble(chunks, texts), "s", options, chunks=script_chunks(texts))
    joined = assemble_to_file(iter(chunks), texts, tmp_path / "joined.f32")
    np.testing.assert_array_equal(np.fromfile(joined.path, dtype=np.float32), assemble(chunks, texts).samples)
    streamed = render_files(joined, "s", tmp_path, options, chunks=script_chunks(texts))
    assert streamed.loudness == in_memory.loudness
    assert set(streamed.files) == set(in_memory.files)
    for name, data in streamed.files.items():
        as_bytes = data.read_bytes() if isinstance(data, Path) else data
        assert as_bytes == in_memory.files[name], name
    assert isinstance(streamed.files[f"s.{audio_format}"], Path)


def test_loudness_of_the_streamed_render_is_measured_on_the_published_file(tmp_path: Path) -> None:
    import pyloudnorm

    chunks = [tone(3.0, 0.1, 0.1, 150.0 + 70 * k) * 0.05 for k in range(4)]
    texts = [(f"Part {k}.",) for k in range(4)]
    joined = assemble_to_file(chunks, texts, tmp_path / "joined.f32")
    rendered = render_files(joined, "quiet", tmp_path, OutputOptions(loudness_lufs=-20.0), chunks=script_chunks(texts))
    samples, rate = sf.read(rendered.files["quiet.wav"], dtype="float64")
    measured = pyloudnorm.Meter(rate).integrated_loudness(samples)
    assert abs(measured + 20.0) <= 0.05 and abs(rendered.loudness.output_lufs - measured) <= 0.05


def test_wav_past_4_gib_is_written_as_rf64(monkeypatch: pytest.MonkeyPatch) -> None:
    """A WAV's sizes are 32-bit (24.8 h of 24 kHz PCM16): past that the file is RF64."""
    samples = tone(1.0)
    assert sf.info(io.BytesIO(encode_audio(samples, RATE, "wav"))).format == "WAV"
    monkeypatch.setattr(outputs, "WAV_MAX_DATA_BYTES", samples.shape[0] * 2 - 1)
    data = encode_audio(samples, RATE, "wav")
    assert data[:4] == b"RF64" and sf.info(io.BytesIO(data)).format == "RF64"
    back, _ = sf.read(io.BytesIO(data), dtype="int16")
    assert np.array_equal(back, outputs.to_pcm16(samples))


PROSE = "the quiet river carried every small boat past the old mill and far beyond the hills"


def book_text(hours: float) -> str:
    """Narration of about ``hours`` (15 characters a second), in sentences of varied length."""
    words = PROSE.split()
    sentences, size, n = [], 0, 0
    while size < hours * 3600 * 15:
        length = 6 + n % 17
        sentence = " ".join(words[(n + i) % len(words)] for i in range(length)).capitalize() + "."
        sentences.append(sentence + ("\n\n" if n % 12 == 11 else " "))
        size += len(sentence) + 1
        n += 1
    return "".join(sentences)


def test_a_ten_hour_book_plans_assembles_and_renders_without_a_length_cap(tmp_path: Path) -> None:
    """A 10-hour script (~540,000 characters, past the old cap of 200,000) loads, plans, and its
    every chunk is assembled, rendered and published; the chunk audio here is short (the
    full-length figures are the benchmark's), the chunk count and text are the book's."""
    from voicebatch.inputs.scripts import load_scripts
    from voicebatch.locations.storage import open_storage
    from voicebatch.run.pipeline import RunSettings, plan_scripts, publish_script_outputs

    from publish_helpers import model, voice

    text = book_text(10.0)
    assert len(text) > 500_000
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "book.txt").write_text("---\nvoice: anna\n---\n" + text, encoding="utf-8")
    scripts, problems = load_scripts(folder, ["anna"])
    assert problems == [] and len(scripts) == 1
    (plan,) = plan_scripts(scripts, {"anna": voice()}, model().checksum, RunSettings())
    words = text.split()
    assert [w for c in plan.chunks for s in c.sentences for w in s.split()] == words
    # F5's rule sizes chunks from the reference's pace: the book is ten hours of chunks.
    pace = len(voice().text.encode()) / voice().duration
    assert sum(len(c.text.encode()) for c in plan.chunks) / pace > 9.5 * 3600
    out = open_storage(str(tmp_path / "out"))
    audio = (tone(0.05, freq=200.0 + (k % 7) * 50) for k in range(len(plan.chunks)))
    published = publish_script_outputs(out, plan, audio, {"anna": voice()}, model().lineage(), RunSettings())
    manifest = json.loads(out.get_bytes(published.manifest_key))
    assert len(manifest["chunks"]) == len(plan.chunks) > 3000
    rows = out.get_bytes(published.prefix + "book.csv").decode().splitlines()
    assert sum(1 for row in rows if row.startswith("book,anna,word,")) == len(words)
    info = sf.info(out.uri_for(published.prefix + "book.wav"))
    assert abs(info.duration - manifest["durations"]["audio_seconds"]) < 1e-3


def test_timing_table_is_the_table_pandas_writes(tmp_path: Path) -> None:
    """The CSV is written row by row (the rows are yielded, so a book's cues never become one
    dict each at once), and it is the same file pandas writes from those rows: quoting,
    rounding, booleans as ``true``/``false``."""
    import types

    import pandas as pd

    from voicebatch.render.outputs import timing_csv
    from voicebatch.render.timetable import COLUMNS, timing_table

    texts = [('He said, "no".', "Plain words here."), ("Ünïcödé, and 'quotes'.",), ("Numbers 1,234.5 stay.",)]
    out = assemble([tone(1.3), tone(0.7, freq=330.0), tone(1.1, freq=440.0)], texts)
    rows = timing_table(out, script_chunks(texts), "s")
    assert isinstance(rows, types.GeneratorType)
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame["estimated"] = frame["estimated"].map({True: "true", False: "false"})
    expected = frame.to_csv(index=False, lineterminator="\n", float_format="%.3f")
    assert timing_csv(out, script_chunks(texts), "s") == expected
    assert len(expected.splitlines()) == 1 + 4 + 12, "a header, four sentences, twelve words"
