"""Joining a script's chunks into one recording, and where every sentence and word lies.

Chunks are joined with F5-TTS's linear cross-fade (default 0.15 s), or, where the script
asks for a pause (sentence, paragraph, speaker change, ``[pause 1.5s]``), with
exactly that much silence between the speech of one chunk and the next: the inserted
zeros plus the quiet margins the trim kept. Each chunk's leading and trailing silence is
trimmed first (by energy, keeping a short margin) and recorded.
Positions are tracked in samples: a chunk starts where the previous output ends minus the
cross-fade overlap. The boundary between two chunks' cues is the middle of their
cross-fade, so sentence cues that come from chunk boundaries are exact to the sample.
Inside a chunk, sentence and word times come from a forced alignment of the chunk's audio
with its text when one is given (``word_times``, from ``voicebatch.verify``): those cues
are ``aligned``. Without one (no aligner covers the language, or verification is off),
and for a word the aligner could not place, times are estimated in proportion to UTF-8
bytes (the rule F5 uses for duration) and marked ``estimated``. Every cue says where its
times come from (``source``): ``aligned``, ``chunk_boundary`` or ``estimated``.

Joining is linear in the length: each chunk is trimmed and placed as it comes,
and the joined signal is handed on in order (``assemble_stream``: to a preallocated array,
or to a file for a book), each sample written once. Only the last piece placed is held
back, since the next may still cross-fade into its tail. A join is a list of pieces (audio,
or a gap of silence) that become final, and the piece held next (``cross_faded``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypedDict, Unpack

from voicebatch.audio import MODEL_SAMPLE_RATE
from voicebatch.settings import DEFAULTS

if TYPE_CHECKING:
    import numpy as np
from voicebatch.render.cues import ChunkSpan, Cue, WordTimes, place_cues

CROSS_FADE_SECONDS: float = DEFAULTS["cross_fade"]


SILENCE_DBFS = -45.0


TRIM_MARGIN_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Timeline:
    """Where every chunk, sentence and word lies in a joined signal (held in memory by an
    ``Assembly``, or in a file by a ``JoinedAudio``)."""

    frames: int
    sample_rate: int
    chunks: tuple[ChunkSpan, ...]
    sentences: tuple[Cue, ...]
    words: tuple[Cue, ...]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True, slots=True)
class Assembly:
    """A joined signal in memory, with its timeline."""

    samples: np.ndarray
    timeline: Timeline

    @property
    def sample_rate(self) -> int:
        return self.timeline.sample_rate

    @property
    def chunks(self) -> tuple[ChunkSpan, ...]:
        return self.timeline.chunks

    @property
    def sentences(self) -> tuple[Cue, ...]:
        return self.timeline.sentences

    @property
    def words(self) -> tuple[Cue, ...]:
        return self.timeline.words

    @property
    def duration(self) -> float:
        return self.timeline.duration


class JoinOptions(TypedDict, total=False):
    """How chunks are joined (the keywords of ``assemble``, ``assemble_stream`` and
    ``join_file.assemble_to_file``)."""

    sample_rate: int
    cross_fade: float  # seconds
    trim: bool  # trim each chunk's leading and trailing silence
    word_times: Sequence[WordTimes | None] | None  # each chunk's measured word times
    pauses: Sequence[float] | None  # seconds of silence after each chunk; 0 cross-fades


Write = Callable[["np.ndarray"], None]  # takes the next stretch of the joined signal


def _loud_frames(samples: np.ndarray, sample_rate: int) -> tuple[int, np.ndarray]:
    import numpy as np

    frame = max(1, sample_rate // 100)
    count = samples.shape[0] // frame
    if count == 0:
        return frame, np.zeros(0, dtype=np.int64)
    energy = np.sqrt(np.mean(np.square(samples[: count * frame].reshape(count, frame), dtype=np.float64), axis=1))
    return frame, np.flatnonzero(energy > 10 ** (SILENCE_DBFS / 20))


def trim_silence(samples: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> tuple[int, int]:
    """(start, end) of the part louder than -45 dBFS in 10 ms frames, with a 50 ms margin."""
    frame, loud = _loud_frames(samples, sample_rate)
    if loud.size == 0:
        return 0, samples.shape[0]  # nothing above the threshold: keep it all
    margin = round(TRIM_MARGIN_SECONDS * sample_rate)
    start = max(0, int(loud[0]) * frame - margin)
    end = min(samples.shape[0], (int(loud[-1]) + 1) * frame + margin)
    return start, end


def quiet_margins(samples: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> tuple[int, int]:
    """Samples below the threshold at the start and at the end of ``samples`` (0, 0 if all quiet)."""
    frame, loud = _loud_frames(samples, sample_rate)
    if loud.size == 0:
        return 0, 0
    return int(loud[0]) * frame, max(0, samples.shape[0] - (int(loud[-1]) + 1) * frame)


def assemble(
    chunks: Sequence[np.ndarray], sentences: Sequence[tuple[str, ...]], **options: Unpack[JoinOptions]
) -> Assembly:
    """Join chunk audio (in order) and place every sentence and word, in memory.

    ``word_times[k]``, when given, holds chunk k's measured word times: one entry per
    written word of its sentences in order (``str.split`` words), ``None`` for a word the
    aligner could not place; times in seconds from the start of the chunk's own audio.
    ``pauses[k]`` is the silence (seconds) between chunk k's speech and chunk k+1's; 0 (or
    no ``pauses``) cross-fades them as F5 does.
    """
    if not chunks:
        raise ValueError("no chunks to assemble")
    rate = options.get("sample_rate", MODEL_SAMPLE_RATE)
    # Joined: never longer than the chunks plus the pauses' silence.
    out = ArraySink(sum(audio.shape[0] for audio in chunks) + round(sum(options.get("pauses") or ()) * rate))
    timeline = assemble_stream(chunks, sentences, out.write, **options)
    return Assembly(out.samples, timeline)


def assemble_stream(
    chunks: Iterable[np.ndarray],
    sentences: Sequence[tuple[str, ...]],
    write: Write,
    *,
    sample_rate: int = MODEL_SAMPLE_RATE,
    cross_fade: float = CROSS_FADE_SECONDS,
    trim: bool = True,
    word_times: Sequence[WordTimes | None] | None = None,
    pauses: Sequence[float] | None = None,
) -> Timeline:
    """``assemble`` for a signal that need not fit in memory: ``chunks`` may be read one at a
    time (a generator), and the joined signal goes to ``write`` in order, in pieces."""
    joiner = Joiner(write, sample_rate, round(cross_fade * sample_rate), measure=trim)
    for index, audio in enumerate(chunks):
        start, end = trim_silence(audio, sample_rate) if trim else (0, audio.shape[0])
        pause = pauses[index - 1] if pauses is not None and index > 0 else 0.0
        joiner.add(audio, start, end, pause=round(pause * sample_rate))
    total = joiner.close()
    if not joiner.spans:
        raise ValueError("no chunks to assemble")
    sentence_cues, word_cues = place_cues(joiner.spans, sentences, total, sample_rate, word_times)
    return Timeline(total, sample_rate, tuple(joiner.spans), tuple(sentence_cues), tuple(word_cues))


class Joiner:
    """Places trimmed chunks one after another and writes the joined signal as it becomes
    final. Holds one piece: the last placed, whose tail the next chunk may still change
    (a cross-fade mixes into it; a pause shortens its quiet margin)."""

    def __init__(self, write: Write, sample_rate: int, cross_fade: int, *, measure: bool = True) -> None:
        self.write, self.rate, self.cross_fade, self.measure = write, sample_rate, cross_fade, measure
        self.spans: list[ChunkSpan] = []
        self._held: np.ndarray | None = None
        self._written = 0  # samples written: where the held piece starts

    def add(self, audio: np.ndarray, start: int, end: int, *, pause: int = 0) -> ChunkSpan:
        """Place ``audio[start:end]`` (a chunk, trimmed) after what was placed before: with
        exactly ``pause`` quiet samples between the two speeches, or cross-faded if 0."""
        import numpy as np

        piece = audio[start:end].astype(np.float32)  # our own copy: the cross-fade mixes into it
        if pause > 0 and self._held is not None:
            return self._add_after_pause(piece, start, audio.shape[0] - end, pause)
        # F5 caps the overlap at the shorter of the two waves; we cap it at half of either
        # piece, so a very short chunk can never be overlapped past its middle and cue
        # boundaries (the middle of each cross-fade) never go backwards.
        previous = self.spans[-1].end_sample - self.spans[-1].start_sample if self.spans else 0
        overlap = min(self.cross_fade, previous // 2, piece.shape[0] // 2)
        if self._held is None:
            self._held = piece
        else:
            final, self._held = cross_faded(self._held, piece, overlap)
            self._emit(final)
        span = ChunkSpan(
            len(self.spans), self._written, self._written + piece.shape[0], start, audio.shape[0] - end, overlap
        )
        self.spans.append(span)
        return span

    def _add_after_pause(self, piece: np.ndarray, start: int, trail: int, pause: int) -> ChunkSpan:
        """Held piece + silence + ``piece`` so that exactly ``pause`` quiet samples separate the
        two speeches: the quiet margins the trim kept count, and are shortened when the pause
        is shorter than they are (the held piece's end moves if its margin is cut)."""
        import numpy as np

        held, before = self._held, self.spans[-1]
        assert held is not None
        tail = quiet_margins(held, self.rate)[1] if self.measure else 0
        head = quiet_margins(piece, self.rate)[0] if self.measure else 0
        excess = max(0, tail + head - pause)
        cut_tail = min(tail, (excess + 1) // 2)
        cut_head = min(head, excess - cut_tail)
        cut_tail = excess - cut_head
        if cut_tail:
            held = held[:-cut_tail]
            self.spans[-1] = replace(
                before, end_sample=before.end_sample - cut_tail, trimmed_trail=before.trimmed_trail + cut_tail
            )
        silence = pause - (tail - cut_tail) - (head - cut_head)
        piece = piece[cut_head:]
        self._emit(held, np.zeros(silence, dtype=np.float32))
        self._held = piece
        span = ChunkSpan(
            len(self.spans), self._written, self._written + piece.shape[0], start + cut_head, trail, 0, silence
        )
        self.spans.append(span)
        return span

    def close(self) -> int:
        """Write the held piece; the joined signal's length."""
        if self._held is not None:
            self._emit(self._held)
            self._held = None
        return self._written

    def _emit(self, *pieces: np.ndarray) -> None:
        for piece in pieces:
            if piece.shape[0]:
                self.write(piece)
                self._written += piece.shape[0]


def cross_faded(held: np.ndarray, piece: np.ndarray, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """F5's linear cross-fade of ``held``'s tail into ``piece``'s head (mixed in place): the
    part of ``held`` that is now final, and ``piece`` to hold next."""
    import numpy as np

    if overlap <= 0:
        return held, piece
    fade = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
    piece[:overlap] = held[-overlap:] * (1.0 - fade) + piece[:overlap] * fade
    return held[:-overlap], piece


class ArraySink:
    """A preallocated array the joined signal is written into (grown, by doubling, only if a
    caller's estimate was short)."""

    def __init__(self, capacity: int) -> None:
        import numpy as np

        self._buffer = np.empty(max(1, capacity), dtype=np.float32)
        self.size = 0

    def write(self, block: np.ndarray) -> None:
        import numpy as np

        end = self.size + block.shape[0]
        if end > self._buffer.shape[0]:
            grown = np.empty(max(end, 2 * self._buffer.shape[0]), dtype=np.float32)
            grown[: self.size] = self._buffer[: self.size]
            self._buffer = grown
        self._buffer[self.size : end] = block
        self.size = end

    @property
    def samples(self) -> np.ndarray:
        return self._buffer[: self.size]
