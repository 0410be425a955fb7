"""A script's joined audio on disk, for works of any length.

``assemble_to_file`` joins the chunk audio as it is read (``timings.assemble_stream``) into
a raw float32 file, and measures its loudness and true peak on the way
(``loudness.SignalMeter``); rendering then reads it back block by block
(``read_blocks``), so memory stays flat in the length and time grows linearly. The file
takes 4 bytes a sample: 346 MB an hour of audio at 24 kHz, in the temporary folder
(``TMPDIR``), plus the encoded output beside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Unpack

from voicebatch.audio import MODEL_SAMPLE_RATE
from voicebatch.render.join import JoinOptions, Timeline, Write, assemble_stream
from voicebatch.render.loudness import BLOCK, Measured, SignalMeter

if TYPE_CHECKING:
    import numpy as np

SYNC_BYTES = 64 << 20  # written through to the disk every 64 MiB (see ``flushed``)


@dataclass(frozen=True, slots=True)
class JoinedAudio:
    path: Path  # raw float32 samples, mono, native byte order
    timeline: Timeline
    measured: Measured  # loudness and true peak of the joined signal

    @property
    def frames(self) -> int:
        return self.timeline.frames

    @property
    def sample_rate(self) -> int:
        return self.timeline.sample_rate


def assemble_to_file(
    chunks: Iterable[np.ndarray], sentences: Sequence[tuple[str, ...]], path: str | Path, **options: Unpack[JoinOptions]
) -> JoinedAudio:
    """Join ``chunks`` (read one at a time when it is a generator) into the file at ``path``."""
    return join_to_file(
        lambda write: assemble_stream(chunks, sentences, write, **options),
        path,
        options.get("sample_rate", MODEL_SAMPLE_RATE),
    )


def join_to_file(
    join: Callable[[Write], Timeline], path: str | Path, sample_rate: int = MODEL_SAMPLE_RATE
) -> JoinedAudio:
    """What ``join`` writes (it is handed the writer, and returns where everything lies) into
    the file at ``path``, measured on the way."""
    import numpy as np

    meter = SignalMeter(sample_rate)
    with Path(path).open("wb") as f:
        unsynced = 0

        def write(block: np.ndarray) -> None:
            nonlocal unsynced
            f.write(np.ascontiguousarray(block, dtype=np.float32).data)
            meter.add(block)
            unsynced += block.shape[0] * 4
            if unsynced >= SYNC_BYTES:
                flushed(f)
                unsynced = 0

        timeline = join(write)
    return JoinedAudio(Path(path), timeline, meter.result())


def flushed(f: BinaryIO) -> None:
    """Written through to the disk. A book's joined signal (3.5 GB for ten hours) would
    otherwise pile up as dirty pages until the kernel stalls every writer on the machine to
    catch up; written through as it goes, dirty memory stays bounded and the cost linear."""
    f.flush()
    os.fdatasync(f.fileno())


def read_blocks(path: str | Path, size: int = BLOCK) -> Iterator[np.ndarray]:
    """The float32 samples of a raw file, ``size`` at a time."""
    import numpy as np

    with Path(path).open("rb") as f:
        while (block := np.fromfile(f, dtype=np.float32, count=size)).shape[0]:
            yield block
