"""A timed script's audio: each cue's take placed at its cue's start, silence between.

Each take is trimmed first: its leading silence entirely (so the speech's onset, the first
10 ms frame above -45 dBFS, lands on the cue's start; a 5 ms fade-in keeps the cut silent),
its trailing silence down to a 50 ms margin, as chunks are trimmed elsewhere
(``timings.quiet_margins``). ``timed.lay_out`` then places the trimmed takes; the
gaps are exact zeros, and the track is as long as the source track (longer only when the
last take spills past it). A take that starts late or lasts past the next cue's start is
flagged: in the manifest (``timed``), the run report and the log.

The published subtitles are the source cues with their own times and text; the timing
table (CSV) says where each take really lies (sentence rows) and its words (estimated in
proportion to UTF-8 bytes). The takes are held in memory while they are placed (a dubbing
track's speech, not a book's); the joined signal goes to a file (``longform``) or an array.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE as SAMPLE_RATE
from voicebatch.inputs.timed import TimedLayout, lay_out
from voicebatch.inputs.timed_plan import TIMED_GAP, track_end
from voicebatch.render.cues import ChunkSpan, Cue, utf8_len
from voicebatch.render.join import TRIM_MARGIN_SECONDS, ArraySink, Assembly, Timeline, Write, quiet_margins
from voicebatch.render.join_file import JoinedAudio, join_to_file
from voicebatch.render.loudness import BLOCK

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.inputs.chunking import Chunk
    from voicebatch.inputs.scripts import Script
    from voicebatch.render.outputs import RenderedOutputs

log = logging.getLogger(__name__)

FADE_IN_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class TimedResult:
    timeline: Timeline
    layout: TimedLayout
    record: dict  # the manifest's ``timed`` section

    @property
    def flagged(self) -> tuple[int, ...]:
        return self.layout.flagged


def trim_take(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
    """(start, end) of a take's speech: from its onset, to its last loud frame plus 50 ms."""
    lead, trail = quiet_margins(samples, sample_rate)
    end = min(samples.shape[0], samples.shape[0] - trail + round(TRIM_MARGIN_SECONDS * sample_rate))
    return lead, max(lead, end)


def join_timed(
    chunks: Iterable[np.ndarray], script: Script, plan_chunks: Sequence[Chunk], write: Write, sample_rate: int
) -> TimedResult:
    """Trim the takes (in cue order), place them, and write the track to ``write`` in order."""
    import numpy as np

    takes, trims = [], []
    fade = round(FADE_IN_SECONDS * sample_rate)
    for audio in chunks:
        start, end = trim_take(audio, sample_rate)
        take = np.array(audio[start:end], dtype=np.float32)  # our own copy: the fade-in changes it
        if start and take.shape[0]:
            ramp = min(fade, take.shape[0])
            take[:ramp] *= np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
        takes.append(take)
        trims.append((start, audio.shape[0] - end))
    if len(takes) != len(script.cues):
        raise ValueError(f"{script.id}: {len(takes)} takes for {len(script.cues)} cues")
    layout = lay_out(
        script.cues,
        [t.shape[0] for t in takes],
        sample_rate=sample_rate,
        track_end=track_end(script),
        gap=TIMED_GAP,
    )
    for placement, take in zip(layout.placements, takes, strict=True):
        _silence(write, placement.silence_before)
        write(take)
    _silence(write, layout.trailing_silence)
    spans = tuple(
        ChunkSpan(p.index, p.start, p.end, lead, trail, 0, p.silence_before)
        for p, (lead, trail) in zip(layout.placements, trims, strict=True)
    )
    sentences, words = _cues(layout, plan_chunks, sample_rate)
    timeline = Timeline(layout.total, sample_rate, spans, sentences, words)
    record = timed_record(script, plan_chunks, layout)
    for cue in record["cues"]:
        if not cue["fits"]:
            log.warning(
                "%s: cue %d does not fit its slot: starts %.3f s late, lasts %.3f s past the next cue's start",
                script.id,
                cue["index"] + 1,
                cue["late"],
                cue["overrun"],
            )
    return TimedResult(timeline, layout, record)


def assemble_timed(
    chunks: Iterable[np.ndarray], script: Script, plan_chunks: Sequence[Chunk], sample_rate: int = SAMPLE_RATE
) -> tuple[Assembly, TimedResult]:
    """The track in memory (``voicebatch synth`` to a folder)."""
    sink = ArraySink(round(track_end(script) * sample_rate) + 1)
    result = join_timed(chunks, script, plan_chunks, sink.write, sample_rate)
    timeline = result.timeline
    return Assembly(sink.samples, timeline), result


def assemble_timed_to_file(
    chunks: Iterable[np.ndarray],
    script: Script,
    plan_chunks: Sequence[Chunk],
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[JoinedAudio, TimedResult]:
    """The track in a file, its loudness measured (publishing)."""
    results: list[TimedResult] = []

    def join(write: Write) -> Timeline:
        results.append(join_timed(chunks, script, plan_chunks, write, sample_rate))
        return results[0].timeline

    return join_to_file(join, path, sample_rate), results[0]


def with_source_subtitles(rendered: RenderedOutputs, script: Script) -> RenderedOutputs:
    """The rendered files with the SRT and WebVTT replaced by the source cues, times and text
    as the source has them (the subtitle rules do not apply: the track is the source's)."""
    from voicebatch.inputs.transcripts.writers import to_srt, to_vtt

    files = dict(rendered.files)
    for name in files:
        if name.endswith(".srt"):
            files[name] = to_srt(script.cues).encode("utf-8")
        elif name.endswith(".vtt"):
            files[name] = to_vtt(script.cues).encode("utf-8")
    return replace(rendered, files=files, subtitle_problems=())


def timed_record(script: Script, plan_chunks: Sequence[Chunk], layout: TimedLayout) -> dict:
    """Each cue: its source times, the rate it was spoken at, where its take lies, and
    whether it fits (``late``: seconds after its cue's start; ``overrun``: seconds past the
    next cue's start, the track's end for the last)."""
    rate = layout.sample_rate
    cues = [
        {
            "index": p.index,
            "cue_start": round(cue.start, 3),
            "cue_end": round(cue.end, 3),
            "speed": chunk.speed,
            "start": round(p.start / rate, 3),
            "end": round(p.end / rate, 3),
            "late": round(p.late / rate, 3),
            "overrun": round(p.overrun / rate, 3),
            "fits": p.fits,
        }
        for p, cue, chunk in zip(layout.placements, script.cues, plan_chunks, strict=True)
    ]
    return {
        "track_end": round(track_end(script), 3),
        "gap": TIMED_GAP,
        "cues": cues,
        "flagged": [c["index"] for c in cues if not c["fits"]],
    }


def _silence(write: Write, samples: int) -> None:
    import numpy as np

    while samples > 0:  # in blocks: a long gap is never one large array
        size = min(samples, BLOCK)
        write(np.zeros(size, dtype=np.float32))
        samples -= size


def _cues(layout: TimedLayout, chunks: Sequence[Chunk], rate: int) -> tuple[tuple[Cue, ...], tuple[Cue, ...]]:
    """A sentence cue where each take lies, its words shared out by UTF-8 bytes."""
    sentences, words = [], []
    for p, chunk in zip(layout.placements, chunks, strict=True):
        text = chunk.sentences[0]
        sentences.append(Cue("sentence", p.index, p.start, p.end, text, "chunk_boundary", rate))
        own = re.findall(r"\S+", text)
        total = sum(utf8_len(w) for w in own) or 1
        done = 0
        for word in own:
            start = p.start + round(p.length * done / total)
            done += utf8_len(word)
            source = "chunk_boundary" if len(own) == 1 else "estimated"
            words.append(Cue("word", len(words), start, p.start + round(p.length * done / total), word, source, rate))
    return tuple(sentences), tuple(words)
