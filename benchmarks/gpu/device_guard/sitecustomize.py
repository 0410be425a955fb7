"""Simulate the GPU machine's package set on this machine (the GPU check's CPU dry run).

Loaded through PYTHONPATH when VOICEBATCH_DEVICE_PACKAGES names files of allowed
distribution names (one per line, '#' comments): this process then sees a view of its
site-packages holding only those distributions (their modules and their metadata), so a
package missing from benchmarks/gpu/wheels.txt is absent here exactly as it would be on the
device — `import` fails and `importlib.util.find_spec` says None. The project's own code
comes from PYTHONPATH. Versions are not simulated, only presence.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import site
import sys
import tempfile
from pathlib import Path


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _allowed(listing: str) -> set[str]:
    allowed = set()
    for file in listing.split(os.pathsep):
        for line in Path(file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                allowed.add(_norm(re.split(r"[=<>!~ ]", line, maxsplit=1)[0]))
    return allowed


def _build_view(site_dirs: list[str], allowed: set[str]) -> Path:
    key = hashlib.sha256(repr((sorted(site_dirs), sorted(allowed))).encode()).hexdigest()[:16]
    view = Path(tempfile.gettempdir()) / f"voicebatch-device-view-{key}"
    if view.is_dir():
        return view
    tmp = Path(tempfile.mkdtemp(prefix=view.name + ".tmp-", dir=view.parent))
    for dist in importlib.metadata.distributions(path=site_dirs):
        if _norm(dist.metadata["Name"] or "") not in allowed:
            continue
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source, target = base / top, tmp / top
            if source.exists() and not target.exists() and not top.endswith(".pth"):
                target.symlink_to(source)
    with contextlib.suppress(OSError):  # another process built it first
        tmp.rename(view)
    return view


def _install() -> None:
    listing = os.environ.get("VOICEBATCH_DEVICE_PACKAGES")
    if not listing:
        return
    site_dirs = [p for p in site.getsitepackages() if Path(p).is_dir()]
    view = _build_view(site_dirs, _allowed(listing))
    sys.path[:] = [p for p in sys.path if p not in site_dirs] + [str(view)]
    importlib.invalidate_caches()


_install()
