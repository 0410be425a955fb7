"""Each chunk's own audio, kept beside a published output, so one chunk can be re-taken later.

The published audio is the chunks trimmed, cross-faded and gain-adjusted: a chunk cannot be
cut back out of it (its edges are blended with its neighbours'). So the publisher also keeps
every chunk's audio as the engine gave it (the kept take, untrimmed), one after the other in
one FLAC file, ``chunks.flac`` in the output's prefix. The manifest names the file
(``chunk_audio``) and where each chunk lies in it (``chunks[].audio``: offset, frames, scale).

FLAC stores integers: each chunk is stored at 24 bits divided by its own ``scale`` (its peak
when that is above full scale, else 1), so a model output louder than 0 dBFS is kept, not
clipped; reading multiplies it back. The error is below 2^-23 of full scale, far under what the
published 16-bit audio can show. Written as the chunks pass by (a book is never in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.audio import MODEL_SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

CHUNK_AUDIO_NAME = "chunks.flac"
CHUNK_AUDIO_FORMAT = {"format": "flac", "subtype": "PCM_24", "sample_rate": MODEL_SAMPLE_RATE}
_FULL_SCALE = 1.0 - 2.0**-23  # the largest 24-bit sample


@dataclass(frozen=True, slots=True)
class StoredChunk:
    offset: int  # first frame of the chunk in the file
    frames: int
    scale: float  # stored = samples / scale

    def as_json(self) -> dict:
        return {"offset": self.offset, "frames": self.frames, "scale": self.scale}


class ChunkAudioWriter:
    """Writes chunks to one FLAC file as ``keep`` hands them on; ``spans`` says where each lies."""

    def __init__(self, path: Path) -> None:
        import soundfile as sf

        self.path = path
        self.spans: list[StoredChunk] = []
        self._file = sf.SoundFile(str(path), "w", MODEL_SAMPLE_RATE, 1, "PCM_24", format="FLAC")
        self._offset = 0

    def keep(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``chunks``, unchanged, each written to the file on its way through."""
        import numpy as np

        for samples in chunks:
            mono = np.asarray(samples, dtype=np.float32).reshape(-1)
            peak = float(np.max(np.abs(mono))) if mono.size else 0.0
            scale = peak / _FULL_SCALE if peak > _FULL_SCALE else 1.0
            self._file.write(mono / scale if scale != 1.0 else mono)
            self.spans.append(StoredChunk(self._offset, int(mono.size), scale))
            self._offset += int(mono.size)
            yield samples

    def close(self) -> None:
        self._file.close()


def read_chunks(path: Path, spans: Iterable[dict]) -> Iterator[np.ndarray]:
    """The chunks at ``spans`` (manifest ``chunks[].audio`` records) of a chunk-audio file, in order."""
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(str(path)) as audio:
        for span in spans:
            audio.seek(int(span["offset"]))
            samples = audio.read(int(span["frames"]), dtype="float32")
            if samples.shape[0] != int(span["frames"]):
                raise ValueError(f"{path.name}: chunk at frame {span['offset']} is cut short")
            yield (samples * np.float32(span["scale"])).astype(np.float32)
