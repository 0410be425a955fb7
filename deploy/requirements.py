"""Print the requirement lines of one image target, from pyproject.toml (the Dockerfile runs it).

    python deploy/requirements.py control|worker

control: Airflow and its providers (pyproject's `airflow` and `celery` extras), for the
api-server, scheduler, dag-processor, triggerer and airflow-init: no torch. worker: the
project's own dependencies as well. Versions come from the lock (`pip install -c constraints.txt`).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent / "pyproject.toml"  # beside it in the image
if not PYPROJECT.exists():
    PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"  # in the repository


def requirements(target: str, pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    control = [*extras["airflow"], *extras["celery"]]
    if target == "control":
        return control
    if target == "worker":
        return [*project["dependencies"], *control]
    raise SystemExit(f"unknown target {target!r}: control or worker")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print("\n".join(requirements(sys.argv[1])))
