"""Rules of the code base a reviewer would otherwise check by hand: each default is defined once
(in the settings catalogue), and the code explains itself without pointing at tracker history."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = [*(ROOT / "src").rglob("*.py"), *(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").glob("*.py")]
CATALOGUE = ROOT / "src" / "voicebatch" / "settings.py"


def _constants(path: Path) -> list[tuple[int, object]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)]


def test_the_frame_budget_default_is_written_once() -> None:
    """The 16,384-frame budget lived in nine places; now only the catalogue says it."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in CODE
        for line, value in _constants(path)
        if type(value) is int and value == 16_384
    ]
    assert found == [f"{CATALOGUE.relative_to(ROOT)}:{_line_of(CATALOGUE, 16_384)}"]


def test_the_default_model_name_is_written_once_outside_the_model_registry() -> None:
    registry = ROOT / "src" / "voicebatch" / "synthesis" / "model_store.py"  # the hub entry: a name, not a default
    found = [
        str(path.relative_to(ROOT))
        for path in CODE
        if path not in (CATALOGUE, registry)
        for _, value in _constants(path)
        if value == "F5TTS_v1_Base"
    ]
    assert found == []


def test_no_module_is_over_400_lines() -> None:
    """A module that grows past a screenful of screens is doing more than one job."""
    long = {str(p.relative_to(ROOT)): n for p in CODE if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_the_dag_file_fits_on_a_screen() -> None:
    """The DAG is wiring: its Params come from the settings catalogue, its work from the library."""
    assert len((ROOT / "dags" / "voice_batch.py").read_text(encoding="utf-8").splitlines()) <= 150


def test_no_code_points_at_issue_numbers() -> None:
    pattern = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
    scripts = [*(ROOT / "deploy").glob("*.py"), *(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [*CODE, *scripts]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line) and path != Path(__file__)
    ]
    assert found == []


def _line_of(path: Path, value: object) -> int:
    (line,) = [line for line, found in _constants(path) if type(found) is type(value) and found == value]
    return line
