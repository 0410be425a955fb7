"""Installed size of each image target's Python packages, measured in this virtual environment
(which `make install` builds from the same lock): `.venv/bin/python deploy/lock_sizes.py`.

Sums the files each installed distribution records, over the dependency closure of the
target's requirements (deploy/requirements.py). The base image (apache/airflow, about 1.5 GB
with its own copy of Airflow) comes on top of both and is not counted.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re

from packaging.requirements import Requirement
from requirements import requirements


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


DISTS = {norm(d.metadata["Name"]): d for d in metadata.distributions()}


def closure(requirement_lines: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [Requirement(line) for line in requirement_lines]
    while todo:
        requirement = todo.pop()
        name = norm(requirement.name)
        if name in seen or name not in DISTS:
            continue
        seen.add(name)
        extras = list(requirement.extras) or [""]
        for line in DISTS[name].requires or []:
            child = Requirement(line)
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(child)
    return seen


def megabytes(names: set[str]) -> float:
    return sum(f.size or 0 for name in names for f in DISTS[name].files or []) / 1e6


if __name__ == "__main__":
    control, worker = closure(requirements("control")), closure(requirements("worker"))
    print(f"control: {len(control)} distributions, {megabytes(control):,.0f} MB")
    print(f"worker:  {len(worker)} distributions, {megabytes(worker):,.0f} MB")
    largest = sorted(worker - control, key=lambda n: -megabytes({n}))[:6]
    print("largest in worker only: " + ", ".join(f"{n} {megabytes({n}):,.0f} MB" for n in largest))
