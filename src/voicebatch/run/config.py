"""A run's configuration: the Params as the library takes them, checked before anything is read."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.errors import InputError
from voicebatch.locations.names import key_name_problem
from voicebatch.locations.storage import Storage, is_s3_uri, key_problem, local_path
from voicebatch.run.pipeline import RunSettings
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.batching import DEFAULT_TASK_GPU_SECONDS

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


Opener = Callable[[str], Storage]  # URI -> Storage (the Airflow layer builds S3 from a connection)


DEFAULT_MAX_TASKS = 1024  # Airflow's default [core] max_map_length


@dataclass(frozen=True, slots=True)
class RunConfig:
    voices_uri: str
    scripts_uri: str
    settings: RunSettings = field(default_factory=RunSettings)
    batch_frames: int = DEFAULTS["batch_frames"]
    chunks_per_task: int = DEFAULTS["chunks_per_task"]  # caps the GPU-time sizing
    task_gpu_seconds: float = DEFAULT_TASK_GPU_SECONDS
    voices: tuple[str, ...] = ()  # only these voices; empty: all
    script_files: tuple[str, ...] = ()  # only these files of the scripts folder; empty: all
    force: bool = DEFAULTS["force"]
    max_tasks: int = DEFAULT_MAX_TASKS  # mapped tasks per stage at most: Airflow's [core] max_map_length


def check_run_config(config: RunConfig, output_uri: str) -> None:
    """Reject Param combinations no run can succeed with. Raises ``InputError``."""
    locations = {"voices_uri": config.voices_uri, "scripts_uri": config.scripts_uri, "output_uri": output_uri}
    for name, uri in locations.items():
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme not in ("", "s3", "file"):
            raise InputError(name, f"{uri}: unsupported location (a local path, file:// or s3://bucket/prefix)")
        if scheme == "s3" and not uri[5:].split("/", 1)[0]:
            raise InputError(name, f"{uri}: no bucket in the S3 URI")
    out = _location(output_uri)
    for name in ("voices_uri", "scripts_uri"):
        source = _location(locations[name])
        if out == source or out.startswith(source + "/") or source.startswith(out + "/"):
            raise InputError(
                "output_uri",
                f"{output_uri} overlaps {name} {locations[name]}: outputs would be read back as inputs "
                "(or inputs overwritten); use separate locations",
            )
    for name in config.voices:
        if problem := key_name_problem(name):
            raise InputError("voices", f"voice name {name!r} {problem}")
    for name in config.script_files:
        if problem := ("contains a slash" if "/" in name else key_problem(name)):
            raise InputError("script_files", f"file name {name!r} {problem} (a file of the scripts folder)")


def _location(uri: str) -> str:
    """A comparable form of a location: s3://bucket/prefix, or an absolute local path."""
    if is_s3_uri(uri):
        return uri.rstrip("/")
    return str(local_path(uri).expanduser().resolve())


def scripts_location(scripts_uri: str, day: datetime.date | None, open_uri: Opener) -> str:
    """``{scripts_uri}/{YYYY-MM-DD}/`` when that folder exists for the run's date, else ``scripts_uri``."""
    if day is None:
        return scripts_uri
    dated = f"{scripts_uri.rstrip('/')}/{day:%Y-%m-%d}"
    return dated if open_uri(dated).list("") else scripts_uri
