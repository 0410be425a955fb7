"""Error types whose message is one line naming the file, the place and what is wrong."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A user input that cannot be used.

    ``str(error)`` is a single line: ``<file>: <where>: <what is wrong>``, where ``where``
    is ``line N`` (text files), ``row N`` (tables, spreadsheet numbering: the header is
    row 1) or ``item N`` (JSON lines), and is left out when the whole file is at fault.
    """

    def __init__(self, path: str | Path, message: str, *, where: str | None = None) -> None:
        self.path = str(path)
        self.where = where
        self.message = " ".join(message.split())  # one line, always
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.where:
            return f"{self.path}: {self.where}: {self.message}"
        return f"{self.path}: {self.message}"


class TranscriptError(InputError):
    """A transcript file that cannot be parsed."""


class AudioError(InputError):
    """A recording that cannot be decoded or is unusable as a voice."""


class ScriptError(InputError):
    """A script that cannot be synthesized."""
