"""F5-TTS's own output, kept out of task logs and the CLI's stdout.

F5-TTS prints to stdout ("Load vocos from local path ...", "vocab : ..."), and importing it
warns about things voicebatch never uses: pydub's missing FFmpeg (voicebatch decodes with
soundfile), the attention-mask memory warning (the engine replaces F5's attention processor).
``f5_output_to_log`` wraps a call into the engine: printed lines become DEBUG records of the
given logger (visible with ``voicebatch -v`` or a DEBUG task log) and those known warnings
are dropped; any other warning still shows. Applied at the call site, never process-wide, so
nothing else's warnings or prints are touched.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

# Warnings that say nothing actionable about a voicebatch run (message prefixes, as regexes).
KNOWN_NOISE = (
    r"Couldn't find ffmpeg or avconv",  # pydub, imported by f5_tts.infer.utils_infer
    r"Couldn't find ffprobe or avprobe",
    r"attn_mask_enabled=True with attn_backend='torch'",  # F5's DiT; the engine's attention needs no mask
)


class _LogWriter(io.TextIOBase):
    """A text stream whose complete lines become log records."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger, self.level, self.pending = logger, level, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.logger.log(self.level, "f5-tts: %s", line.strip())
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            self.logger.log(self.level, "f5-tts: %s", self.pending.strip())
        self.pending = ""


@contextlib.contextmanager
def f5_output_to_log(logger: logging.Logger, level: int = logging.DEBUG) -> Iterator[None]:
    """Inside: stdout goes to ``logger`` at ``level``; F5's known-noise warnings are dropped."""
    writer = _LogWriter(logger, level)
    with warnings.catch_warnings():
        for pattern in KNOWN_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            with contextlib.redirect_stdout(writer):
                yield
        finally:
            writer.flush()
