"""Reading transcript bytes as text.

Encoding rule (documented in the README), applied in this order:

1. A byte-order mark decides: UTF-8 BOM -> UTF-8, UTF-16 LE/BE BOM -> UTF-16.
2. A NUL byte anywhere (without a UTF-16 BOM) means the file is binary: rejected.
3. Bytes that decode as strict UTF-8 are UTF-8 (pure ASCII included).
4. Otherwise the file is a legacy Western export: Windows-1252 (cp1252), the encoding
   of subtitle editors on Windows. cp1252 leaves five byte values undefined
   (0x81 0x8D 0x8F 0x90 0x9D); a file holding one of them is read as Latin-1
   (ISO-8859-1), which defines every byte.

Why not statistical detection (chardet): on short subtitle files it guesses differently
from run to run of the library's versions; a fixed rule is predictable and explainable.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from voicebatch.errors import TranscriptError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_transcript_bytes(data: bytes, path: str | Path) -> tuple[str, str]:
    """Return ``(text, encoding)`` with line endings normalised to ``\\n``."""
    if not data.strip():
        raise TranscriptError(path, "the file is empty")
    encoding = _detect_encoding(data, path)
    text = data.decode(encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise TranscriptError(path, "the file is empty")
    return text, encoding


def read_transcript_text(path: str | Path) -> tuple[str, str]:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TranscriptError(path, f"cannot read the file: {e.strerror or e}") from e
    return decode_transcript_bytes(data, path)


def _detect_encoding(data: bytes, path: str | Path) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    if b"\x00" in data:
        raise TranscriptError(path, "binary data (NUL bytes), not a text transcript")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"
