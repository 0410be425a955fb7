"""Mirroring an input stops at the deployment's limits, counts the links it skips, and leaves
no temporary folder behind, also when its process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voicebatch.errors import InputError
from voicebatch.inputs.materialize import InputLimitError, InputLimits, materialize
from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.ingest import list_voice_names

from conftest import tree_env


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The known work folder, where every temporary folder lives."""
    root = tmp_path / "work"
    monkeypatch.setenv("VOICEBATCH_WORK_DIR", str(root))
    return root


def huge_tree(root: Path, folders: int = 200, files: int = 100) -> Path:
    """20,000 files in 200 folders, and 2,000 links out of the tree: what /root looked like."""
    for n in range(folders):
        folder = root / f"d{n:03d}"
        folder.mkdir(parents=True)
        for m in range(files):
            (folder / f"f{m:03d}.txt").touch()
        for m in range(10):
            (folder / f"link{m}").symlink_to("/etc/hostname")
    return root


def test_voices_at_a_huge_tree_stop_at_the_limit_and_leave_no_folder(
    tmp_path: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = huge_tree(tmp_path / "root")
    monkeypatch.setenv("VOICEBATCH_INPUT_MAX_FILES", "1000")
    opened: list[str] = []
    scandir = os.scandir

    def counting(path):  # the folders of the tree the walk opened
        if not isinstance(path, int) and Path(path).is_relative_to(tree):  # rmtree scans by descriptor
            opened.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    out = open_storage(str(tmp_path / "out"))
    with pytest.raises(InputLimitError) as stopped:
        list_voice_names(RunConfig(str(tree), str(tmp_path / "scripts")), out, "_staging/r/", open_storage)
    message = str(stopped.value)
    assert message.startswith(f"{tree}: more than 1,000 files and folders: stopped without reading them")
    assert "VOICEBATCH_INPUT_MAX_FILES" in message and "\n" not in message
    assert len(opened) <= 1000 / 110 + 2, f"the walk went on past the limit: {len(opened)} of 201 folders opened"
    assert list(work.iterdir()) == [], "no temporary folder left"
    assert out.list("") == [], "nothing staged"


def test_skipped_links_are_counted_not_listed(tmp_path: Path, work: Path) -> None:
    tree = huge_tree(tmp_path / "root", folders=30, files=1)
    with materialize(str(tree), open_storage) as found:
        assert len(list(found.root.rglob("*.txt"))) == 30
    (line,) = found.rejected
    assert str(line) == f"{tree}: 300 symbolic links leading outside it (or nowhere) skipped, the first: d000/link0"
    assert list(work.iterdir()) == []


def test_nothing_deeper_than_the_callers_depth_is_looked_at(tmp_path: Path, work: Path) -> None:
    deep = tmp_path / "voices" / "anna" / "old" / "older"
    deep.mkdir(parents=True)
    (deep / "take.wav").touch()
    (tmp_path / "voices" / "anna" / "take.wav").touch()
    with materialize(str(tmp_path / "voices"), open_storage, depth=2) as found:
        assert sorted(p.relative_to(found.root).as_posix() for p in found.root.rglob("*.wav")) == ["anna/take.wav"]


def test_bytes_past_the_limit_are_never_read(tmp_path: Path, work: Path) -> None:
    class Listing:  # an S3-like storage that lists sizes and counts what is fetched
        uri = "s3://big/voices"

        def __init__(self) -> None:
            self.fetched: list[str] = []

        def walk(self, prefix: str = ""):
            yield from (("anna/take.wav", 600), ("anna/take.srt", 600))

        def get_file(self, key: str, path) -> None:
            self.fetched.append(key)

    storage = Listing()
    limits = InputLimits(bytes=1000)
    stopped = pytest.raises(InputLimitError, match="more than 1,000 bytes to read: stopped")
    with stopped, materialize("s3://big/voices", lambda uri: storage, limits=limits):
        pass
    assert storage.fetched == [] and list(work.iterdir()) == []


def test_a_listing_is_read_only_up_to_the_limit(tmp_path: Path, work: Path) -> None:
    class Endless:  # a bucket too big to list: keys for ever
        uri = "s3://huge/in"
        listed = 0

        def walk(self, prefix: str = ""):
            while True:
                self.listed += 1
                yield f"k{self.listed}.txt", 1

    storage = Endless()
    with pytest.raises(InputLimitError), materialize("s3://huge/in", lambda uri: storage, limits=InputLimits(files=50)):
        pass
    assert storage.listed == 51


def test_a_killed_process_leaves_a_folder_that_the_next_run_removes(tmp_path: Path, work: Path) -> None:
    (tmp_path / "voices" / "anna").mkdir(parents=True)
    (tmp_path / "voices" / "anna" / "take.wav").touch()
    code = (
        "import sys\nfrom voicebatch.inputs.materialize import materialize\n"
        "from voicebatch.locations.storage import open_storage\n"
        "with materialize(sys.argv[1], open_storage) as found:\n"
        "    print(found.root, flush=True); sys.stdin.read()\n"
    )
    env = tree_env(VOICEBATCH_WORK_DIR=str(work))
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "voices")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    left = Path(child.stdout.readline().strip())
    child.send_signal(signal.SIGKILL)  # no cleanup can run
    child.wait()
    assert left.parent == work and (left / "anna" / "take.wav").is_symlink(), "the killed process left its folder"
    with materialize(str(tmp_path / "voices"), open_storage) as found:
        assert [p.name for p in work.iterdir()] == [found.root.name], "the stale folder is gone"
    assert list(work.iterdir()) == []


def test_limits_come_from_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert InputLimits.from_env({}) == InputLimits()
    env = {"VOICEBATCH_INPUT_MAX_FILES": "1_000", "VOICEBATCH_INPUT_MAX_BYTES": "5", "VOICEBATCH_INPUT_MAX_DEPTH": "3"}
    assert InputLimits.from_env(env) == InputLimits(files=1000, bytes=5, depth=3)
    with pytest.raises(InputError, match="VOICEBATCH_INPUT_MAX_DEPTH: 'deep': expected a whole number"):
        InputLimits.from_env({"VOICEBATCH_INPUT_MAX_DEPTH": "deep"})


def test_a_work_folder_planted_by_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "work").symlink_to(elsewhere)  # a link where the work folder should be
    monkeypatch.setenv("VOICEBATCH_WORK_DIR", str(tmp_path / "work"))
    (tmp_path / "voices").mkdir()
    with (
        pytest.raises(PermissionError, match="not a folder of this user's"),
        materialize(str(tmp_path / "voices"), open_storage),
    ):
        pass
    assert list(elsewhere.iterdir()) == []
