"""Names that become storage keys (voice names, script ids)."""

from __future__ import annotations

import re

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def key_segment(text: str) -> str:
    """``text`` as one storage key segment: anything but letters, digits, '.', '_', '-' becomes '_'
    (Airflow run ids hold ':' and '+', which some S3 tools read as a space)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def key_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be one storage key segment, or None when it can."""
    if not name:
        return "is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains control characters"
    if "/" in name or "\\" in name:
        return "contains a slash"
    if ".." in name:
        return "contains '..'"
    if not _SAFE.match(name):
        return "must be 1–128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None
