"""Inputs (voices, scripts) as a local folder, holding only what is safe to read.

S3 inputs are downloaded to a temporary folder; every listed key is checked before it
becomes a local path (``storage.key_problem``: no ``..``, not absolute, no empty segments,
no backslashes, length limits), and a bad key is refused and skipped, never written. Local
inputs are mirrored into a temporary folder of links to their regular files, leaving out any
symbolic link that resolves outside the input folder: readers downstream then cannot follow
one out. Either way the caller gets every refusal (whatever ``only`` selects) as a one-line
input error, and ``label`` turns temporary paths in messages back into the input's location.

Only what a stage needs crosses the network (issue 11): ``prefix`` lists only the keys under
it (one voice's files, not the whole voices folder), and keys that ``fetch`` leaves out
become empty placeholder files, so a stage that needs the names of things (the voices
listing) downloads none of their bytes.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.storage import Storage, UnsafeKeyError, is_s3_uri, key_problem, local_path, local_target

KeyFilter = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Materialized:
    root: Path  # a local folder holding what the URI holds (what passed the checks)
    uri: str
    rejected: tuple[InputError, ...]  # inputs refused, one line each

    def label(self, text: str) -> str:
        """``text`` with the temporary folder replaced by the location it stands for."""
        return text.replace(str(self.root), self.uri.rstrip("/"))

    def relabel(self, error: InputError) -> InputError:
        """The same error, naming the input's own location instead of the temporary folder."""
        return type(error)(self.label(error.path), self.label(error.message), where=error.where)


@contextlib.contextmanager
def materialize(
    uri: str,
    open_uri: Callable[[str], Storage],
    only: KeyFilter = lambda key: True,
    *,
    prefix: str = "",
    fetch: KeyFilter = lambda key: True,
) -> Iterator[Materialized]:
    """A local folder holding what ``uri`` holds: only keys that start with ``prefix`` and
    for which ``only`` is true; those for which ``fetch`` is false are empty placeholders
    (S3: not downloaded; a local input is linked, never copied, either way)."""
    with tempfile.TemporaryDirectory(prefix="voicebatch-") as tmp:
        root = Path(tmp)
        if is_s3_uri(uri):
            rejected = _download(open_uri(uri), root, only, prefix, fetch)
        else:
            rejected = _mirror(local_path(uri), root, only, prefix)
        yield Materialized(root, uri, tuple(rejected))


def _download(storage: Storage, root: Path, only: KeyFilter, prefix: str, fetch: KeyFilter) -> list[InputError]:
    rejected = []
    for key in storage.list(prefix):
        if key.endswith("/") and key_problem(key[:-1]) is None:
            continue  # a console's "folder" marker: an empty object, not a file
        if not only(key) and key_problem(key) is None:
            continue  # not wanted here; unsafe keys are reported whatever the filter
        try:
            target = local_target(root, key)
            target.parent.mkdir(parents=True, exist_ok=True)
        except UnsafeKeyError as e:
            rejected.append(InputError(storage.uri, f"{e}: refused and skipped"))
            continue
        except (FileExistsError, NotADirectoryError):  # "a" and "a/b" both listed
            error = UnsafeKeyError(key, "is inside a key that is a file")
            rejected.append(InputError(storage.uri, f"{error}: refused and skipped"))
            continue
        if fetch(key):
            storage.get_file(key, target)
        else:
            target.touch()  # the name is all the caller needs
    return rejected


def _mirror(source: Path, root: Path, only: KeyFilter, prefix: str = "") -> list[InputError]:
    if not source.is_dir():
        raise InputError(source, "no such directory")
    base = source.resolve()
    rejected: list[InputError] = []
    seen: set[Path] = set()

    def walk(folder: Path, parent: str) -> None:
        for entry in sorted(folder.iterdir()):
            key = parent + entry.name
            if not (key.startswith(prefix) or prefix.startswith(key + "/")):
                continue  # outside the prefix: not looked at
            try:
                real = entry.resolve(strict=True)
            except (OSError, RuntimeError):  # dangling link or a link loop
                if entry.is_symlink():
                    rejected.append(InputError(source / key, "broken symbolic link: refused"))
                continue
            if not real.is_relative_to(base):
                rejected.append(InputError(source / key, f"symbolic link resolves outside {source}: refused"))
                continue
            if real.is_dir():
                if real not in seen:  # a link back up the tree is walked once
                    seen.add(real)
                    walk(entry, key + "/")
            elif real.is_file() and only(key):  # regular files only: no FIFOs or devices
                target = root / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(real)

    seen.add(base)
    walk(source, "")
    return rejected
