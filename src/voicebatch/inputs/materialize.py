"""Inputs (voices, scripts) as a local folder, holding only what is safe to read, within limits.

S3 inputs are downloaded to a temporary folder; every listed key is checked before it
becomes a local path (``storage.key_problem``: no ``..``, not absolute, no empty segments,
no backslashes, length limits), and a bad key is refused and skipped, never written. Local
inputs are mirrored into a temporary folder of links to their regular files; a symbolic link
that resolves outside the input folder (or nowhere) is skipped, and the skipped links are
counted, not listed. Either way the caller gets the refusals (whatever ``only`` selects) as
one-line input errors, and ``label`` turns temporary paths in messages back into the input's
location.

Bounded (``InputLimits``, set by the deployment): a listing or walk stops with an
``InputError`` past ``VOICEBATCH_INPUT_MAX_FILES`` entries, a stage that would read more than
``VOICEBATCH_INPUT_MAX_BYTES`` stops before reading them, and nothing deeper than
``VOICEBATCH_INPUT_MAX_DEPTH`` folder levels (or the caller's own ``depth``) is looked at.
The temporary folder lives under the known work folder (``voicebatch.locations.workdir``): removed when
the block ends, and by the next run on the host when a killed process could not.

Only what a stage needs crosses the network: ``prefix`` lists only the keys under it (one
voice's files, not the whole voices folder), and keys that ``fetch`` leaves out become empty
placeholder files, so a stage that needs the names of things (the voices listing) downloads
none of their bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.locations.storage import Storage, UnsafeKeyError, is_s3_uri, key_problem, local_path, local_target
from voicebatch.locations.workdir import work_folder

KeyFilter = Callable[[str], bool]

FILES_ENV = "VOICEBATCH_INPUT_MAX_FILES"
BYTES_ENV = "VOICEBATCH_INPUT_MAX_BYTES"
DEPTH_ENV = "VOICEBATCH_INPUT_MAX_DEPTH"
LISTED_REFUSALS = 10  # unsafe keys named one by one; past this, a count


class InputLimitError(InputError):
    """An input past a limit the deployment set."""


@dataclass(frozen=True, slots=True)
class InputLimits:
    files: int = 50_000  # files, folders and links listed or looked at, per input
    bytes: int = 20 * 2**30  # bytes one stage reads from one input
    depth: int = 8  # folder levels below the input's root

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> InputLimits:
        env = os.environ if env is None else env
        values = {}
        for name, variable in (("files", FILES_ENV), ("bytes", BYTES_ENV), ("depth", DEPTH_ENV)):
            text = env.get(variable, "").strip().replace("_", "")
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise InputError(variable, f"{text!r}: expected a whole number of at least 1")
            values[name] = int(text)
        return cls(**values)


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
    depth: int | None = None,
    limits: InputLimits | None = None,
) -> Iterator[Materialized]:
    """A local folder holding what ``uri`` holds: only keys that start with ``prefix``, at most
    ``depth`` levels deep, for which ``only`` is true; those for which ``fetch`` is false are
    empty placeholders (S3: not downloaded; a local input is linked, never copied, either way)."""
    limits = limits or InputLimits.from_env()
    budget = _Budget(uri, limits, min(depth or limits.depth, limits.depth))
    with work_folder("inputs") as root:
        if is_s3_uri(uri):
            rejected = _download(open_uri(uri), root, only, prefix, fetch, budget)
        else:
            rejected = _mirror(local_path(uri), root, only, prefix, fetch, budget)
        yield Materialized(root, uri, tuple(rejected))


@dataclass(slots=True)
class _Budget:
    """What one materialisation may still look at and read."""

    uri: str
    limits: InputLimits
    depth: int
    entries: int = 0
    bytes: int = 0
    links: list[str] = field(default_factory=list)  # keys of the links skipped

    def look(self) -> None:
        self.entries += 1
        if self.entries > self.limits.files:
            raise InputLimitError(
                self.uri,
                f"more than {self.limits.files:,} files and folders: stopped without reading them (point it at the "
                f"voices or scripts folder itself, or raise {FILES_ENV} in the deployment)",
            )

    def read(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.limits.bytes:
            raise InputLimitError(
                self.uri,
                f"more than {self.limits.bytes:,} bytes to read: stopped (raise {BYTES_ENV} in the deployment)",
            )

    def too_deep(self, key: str) -> bool:
        return key.count("/") + 1 > self.depth


def _download(
    storage: Storage, root: Path, only: KeyFilter, prefix: str, fetch: KeyFilter, budget: _Budget
) -> list[InputError]:
    unsafe: list[InputError] = []
    wanted: list[tuple[str, Path]] = []
    for key, size in _listing(storage, prefix):
        budget.look()
        if key.endswith("/") and key_problem(key[:-1]) is None:
            continue  # a console's "folder" marker: an empty object, not a file
        if key_problem(key) is None and (not only(key) or budget.too_deep(key)):
            continue  # not wanted here; unsafe keys are reported whatever the filter
        try:
            target = local_target(root, key)
            target.parent.mkdir(parents=True, exist_ok=True)
        except UnsafeKeyError as e:
            unsafe.append(InputError(storage.uri, f"{e}: refused and skipped"))
            continue
        except (FileExistsError, NotADirectoryError):  # "a" and "a/b" both listed
            error = UnsafeKeyError(key, "is inside a key that is a file")
            unsafe.append(InputError(storage.uri, f"{error}: refused and skipped"))
            continue
        if fetch(key):
            budget.read(size if size is not None else 0)  # checked before any byte is downloaded
            wanted.append((key, target))
        else:
            target.touch()  # the name is all the caller needs
    for key, target in wanted:
        storage.get_file(key, target)
    return _summarised(storage.uri, unsafe)


def _listing(storage: Storage, prefix: str) -> Iterable[tuple[str, int | None]]:
    """(key, size) pairs, page by page where the storage can (stopping early costs nothing)."""
    walk = getattr(storage, "walk", None)
    return walk(prefix) if walk is not None else ((key, None) for key in storage.list(prefix))


def _summarised(uri: str, refused: list[InputError]) -> list[InputError]:
    if len(refused) <= LISTED_REFUSALS:
        return refused
    more = len(refused) - LISTED_REFUSALS
    return [*refused[:LISTED_REFUSALS], InputError(uri, f"{more:,} more unsafe keys refused and skipped")]


def _mirror(
    source: Path, root: Path, only: KeyFilter, prefix: str, fetch: KeyFilter, budget: _Budget
) -> list[InputError]:
    if not source.is_dir():
        raise InputError(source, "no such directory")
    base = source.resolve()
    seen = {base}
    wanted: list[tuple[str, Path]] = []  # (key, the file's real path)
    # Breadth first, in name order ("the first" link is the same every time); each folder with
    # its real path, so a file's real path needs no resolving of its own.
    folders = deque([(base, "")])
    while folders:
        folder, parent = folders.popleft()
        with os.scandir(folder) as entries:
            found = sorted(entries, key=lambda e: e.name)
        for entry in found:
            key = parent + entry.name
            if not (key.startswith(prefix) or prefix.startswith(key + "/")):
                continue  # outside the prefix: not looked at
            budget.look()
            if entry.is_symlink():
                real = _inside(Path(entry.path), base)
                if real is None:
                    budget.links.append(key)
                    continue
                is_dir, is_file = real.is_dir(), real.is_file()
            else:  # the kind scandir read with the name: no system call per entry
                real = folder / entry.name
                is_dir, is_file = entry.is_dir(follow_symlinks=False), entry.is_file(follow_symlinks=False)
            if is_dir:
                if real not in seen and not budget.too_deep(key + "/x"):  # a link back up is walked once
                    seen.add(real)
                    folders.append((real, key + "/"))
            elif is_file and only(key) and not budget.too_deep(key):  # no FIFOs or devices
                if fetch(key):
                    budget.read(real.stat().st_size)
                wanted.append((key, real))
    # Linked only once the whole walk is within the limits: a tree past them costs no writes.
    made: set[Path] = set()
    for key, real in wanted:
        target = root / key
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.symlink_to(real)
    if not budget.links:
        return []
    count = len(budget.links)
    what = "symbolic link" if count == 1 else "symbolic links"
    first = budget.links[0]
    return [InputError(source, f"{count:,} {what} leading outside it (or nowhere) skipped, the first: {first}")]


def _inside(link: Path, base: Path) -> Path | None:
    """Where a symbolic link leads, when that is inside ``base``; else None."""
    try:
        real = link.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link or a link loop
        return None
    return real if real.is_relative_to(base) else None
