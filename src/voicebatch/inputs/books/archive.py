"""An EPUB's zip container, opened without trusting it.

The zip is checked before any entry is read: at most ``MAX_ENTRIES`` entries, every name a
relative path that stays inside the package (no ``..``, no absolute path, no backslash, no
drive letter: an entry named so would be written outside its folder by whoever unpacks the
books this project writes), no entry over ``MAX_ENTRY_BYTES`` and none compressed more than
``MAX_RATIO`` to one (a zip bomb), and ``MAX_TOTAL_BYTES`` in all. An entry is then read
through a bounded reader, so a header that lies about its size cannot make a read grow past
the limit. Errors are one line naming the file and the entry, never what the entry holds.

The standard library's ``zipfile`` reads the container: an EPUB is a plain zip (deflate or
stored), and nothing more is needed to read one safely.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from voicebatch.errors import InputError

MAX_ENTRIES = 10_000
MAX_ENTRY_BYTES = 300_000_000  # an audio or video file inside a book may be large; text never is
MAX_TOTAL_BYTES = 2_000_000_000
MAX_RATIO = 200  # text deflates about 3:1, XML up to 20:1; a bomb by thousands
MAX_DOCUMENT_BYTES = 20_000_000  # one XHTML, OPF, NCX or nav document (a long chapter is ~1 MB)
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class BookError(InputError):
    """A book that cannot be read: ``<file>: <entry or element>: <what is wrong>``."""


def entry_label(name: str) -> str:
    """An entry's name as it may be printed (control characters as \\xNN, at most 120 characters)."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)
    return text if len(text) <= 120 else text[:117] + "..."


class Package:
    """A checked, open EPUB container. Use as a context manager (``open_package``)."""

    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        self.path = path
        self._zip = archive
        self._infos = {info.filename: info for info in archive.infolist()}

    def names(self) -> list[str]:
        return list(self._infos)

    def has(self, name: str) -> bool:
        return name in self._infos

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def read(self, name: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
        """The entry's bytes, at most ``limit`` of them (more is refused, not truncated)."""
        info = self._infos.get(name)
        if info is None:
            raise BookError(self.path, "not in the package", where=entry_label(name))
        if info.file_size > limit:
            raise BookError(
                self.path, f"{info.file_size:,} bytes, over the limit of {limit:,}", where=entry_label(name)
            )
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise BookError(self.path, f"unpacks past the limit of {limit:,} bytes", where=entry_label(name))
        return data

    def read_text(self, name: str) -> str:
        data = self.read(name)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                return data.decode("utf-16")  # EPUB allows UTF-16 XML; anything else is not a book
            except UnicodeDecodeError:
                raise BookError(self.path, "not UTF-8 or UTF-16 text", where=entry_label(name)) from None

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """A reader of the entry's bytes (for copying large entries in pieces)."""
        try:
            with self._zip.open(self._infos[name]) as f:
                yield f
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as e:
            # RuntimeError: an encrypted entry; NotImplementedError: a compression zipfile lacks
            raise BookError(self.path, f"cannot be unpacked ({type(e).__name__})", where=entry_label(name)) from None


@contextmanager
def open_package(path: str | Path) -> Iterator[Package]:
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not a zip package (an EPUB is one)"
        raise BookError(path, reason) from None
    with archive:
        check_entries(path, archive)
        yield Package(path, archive)


def check_entries(path: Path, archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BookError(path, f"{len(infos):,} entries in the zip, over the limit of {MAX_ENTRIES:,}")
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if problem := unsafe_name(name):
            raise BookError(path, problem, where=entry_label(name))
        if name in seen:
            raise BookError(path, "the name appears twice in the zip", where=entry_label(name))
        seen.add(name)
        if info.file_size > MAX_ENTRY_BYTES:
            raise BookError(
                path,
                f"unpacks to {info.file_size:,} bytes, over the limit of {MAX_ENTRY_BYTES:,}",
                where=entry_label(name),
            )
        if info.file_size > 1_000_000 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BookError(
                path,
                f"compressed {info.file_size // max(info.compress_size, 1):,} to 1, over the limit of {MAX_RATIO} "
                "(a zip bomb?)",
                where=entry_label(name),
            )
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise BookError(path, f"unpacks to {total:,} bytes, over the limit of {MAX_TOTAL_BYTES:,}")


def unsafe_name(name: str) -> str | None:
    """Why an entry's name is refused, or None."""
    if not name or "\x00" in name:
        return "an empty name or a NUL character in the name"
    if "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return "an absolute path or a backslash in the name (entries must be relative paths)"
    if ".." in name.split("/"):
        return "a '..' in the name (the entry would land outside the package)"
    return None


def resolve(base: str, href: str) -> str | None:
    """``href`` (relative to the entry ``base``) as an entry name; None when it leaves the package
    or names another place (a URL)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("/"):
        return None
    target = unquote(parts.path)
    if not target:
        return base
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), target))
    if joined.startswith("../") or joined == ".." or joined.startswith("/"):
        return None
    return joined


def relative(base: str, target: str) -> str:
    """The href from entry ``base`` to entry ``target`` (both package-relative, as in ``resolve``)."""
    from urllib.parse import quote

    return quote(posixpath.relpath(target, posixpath.dirname(base) or "."), safe="/#-._~!$&'()*+,;=:@")
