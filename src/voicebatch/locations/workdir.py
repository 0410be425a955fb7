"""Temporary folders under one known parent, so that what a killed process leaves behind is
removed by the next one.

``VOICEBATCH_WORK_DIR`` (default: ``<system temp>/voicebatch-work-<uid>``, the user's own, refused
when it is a link or someone else's) holds one folder per use,
named ``<purpose>-<host>-<pid>-<random>``. A folder is removed when its use ends, however it
ends (an error, a SIGTERM that Airflow turns into an exception). A process killed outright
(SIGKILL, the OOM killer, a lost machine) cannot clean up: the next use on the same host
removes every folder whose process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

WORK_DIR_ENV = "VOICEBATCH_WORK_DIR"


def work_root(env: Mapping[str, str] | None = None) -> Path:
    """``VOICEBATCH_WORK_DIR``, else one folder per user under the system's temporary folder."""
    env = os.environ if env is None else env
    return Path(env.get(WORK_DIR_ENV) or Path(tempfile.gettempdir()) / f"voicebatch-work-{os.getuid()}")


@contextlib.contextmanager
def work_folder(purpose: str) -> Iterator[Path]:
    """A fresh folder under ``work_root()``, removed when the block ends; stale folders of
    dead processes on this host are removed first."""
    root = work_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = os.lstat(root)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():  # a link or another user's, planted
        raise PermissionError(f"{root}: not a folder of this user's; set {WORK_DIR_ENV} to one")
    remove_stale(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{purpose}-{_host()}-{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path) -> list[str]:
    """Remove the folders under ``root`` left by processes of this host that no longer run."""
    removed = []
    for entry in root.iterdir():
        owner = _owner(entry.name)
        if owner is None or owner[0] != _host() or _alive(owner[1]):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    if removed:
        log.info("removed %d temporary folder(s) left by killed processes under %s", len(removed), root)
    return removed


def _owner(name: str) -> tuple[str, int] | None:
    """(host, pid) of a folder named ``<purpose>-<host>-<pid>-<random>``, or None."""
    head, _, rest = name.partition("-")
    parts = rest.rsplit("-", 2)
    if not head or len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _host() -> str:
    return "".join(c if c.isalnum() or c == "." else "_" for c in socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The model store's local cache (``VOICEBATCH_MODEL_DIR``; default ``~/.cache/voicebatch/models``)."""
    env = os.environ if env is None else env
    return Path(env.get("VOICEBATCH_MODEL_DIR") or Path.home() / ".cache" / "voicebatch" / "models")
