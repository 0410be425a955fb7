"""How the command prints: JSON documents, aligned tables, seconds, and text made safe for a terminal."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """One line a terminal shows as it is: whitespace runs become one space, other control
    characters (escape sequences from a file name, say) are written as \\xNN, and a location
    said twice in a row (``a.csv: a.csv: row 3``) is said once."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))
    return re.sub(r"^([^:\s][^:]*): \1: ", r"\1: ", text)


def print_json(document: object) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2))


def format_seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    widths[-1] = 0  # the last column runs free
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
