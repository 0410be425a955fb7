"""The last line of `make compose-test`: its figures, from STATE/build.json and STATE/figures.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state", type=Path)
    parser.add_argument("--total-seconds", type=int, required=True)
    parser.add_argument("--status", type=int, required=True)
    args = parser.parse_args()
    build = json.loads((args.state / "build.json").read_text()) if (args.state / "build.json").exists() else {}
    found = json.loads((args.state / "figures.json").read_text()) if (args.state / "figures.json").exists() else {}
    sizes = build.get("sizes", {})
    images = ", ".join(f"{name.split(':')[0]} {mb(size)}" for name, size in sizes.items() if "standin" not in name)
    verdict = "PASSED" if args.status == 0 else f"FAILED (pytest exit {args.status})"
    run = found.get("main_run_state", "not run")
    print(
        f"compose-test {verdict} in {args.total_seconds} s: build {build.get('build_seconds', '?')} s; "
        f"images {images or '?'}; time to healthy {found.get('time_to_healthy_s', '?')} s; "
        f"voice_batch run {run} in {found.get('run_main_s', '?')} s, "
        f"{found.get('main_tasks_succeeded', '?')}/{found.get('main_tasks', '?')} tasks succeeded, "
        f"{found.get('main_objects_published', '?')} objects published"
    )


if __name__ == "__main__":
    main()
