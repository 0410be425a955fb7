"""The tests run the tree they sit in: in this process, in subprocesses that inherit or replace
the environment, and in the Airflow processes the DAG tests start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import voicebatch

from airflow_helpers import airflow_env
from conftest import SRC, tree_env

WHERE = "import voicebatch; print(voicebatch.__file__)"


def imported_from(env: dict[str, str]) -> Path:
    result = subprocess.run([sys.executable, "-c", WHERE], env=env, capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_this_process_imports_the_tree_under_test() -> None:
    assert Path(voicebatch.__file__).is_relative_to(SRC)


def test_subprocesses_import_the_tree_under_test(tmp_path: Path) -> None:
    import os

    assert imported_from(dict(os.environ)).is_relative_to(SRC), "an inherited environment"
    assert imported_from(tree_env({"PATH": "/usr/bin:/bin"})).is_relative_to(SRC), "a replaced environment"
    assert imported_from(airflow_env(tmp_path / "airflow")).is_relative_to(SRC), "Airflow's processes"
