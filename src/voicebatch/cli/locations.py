"""The ``voicebatch`` command's locations against the deployment's allow-list.

On a laptop none of the allow-list settings is set and the command reads and writes wherever
its user asks. In a worker's environment (docker compose, Helm) they are set, and every
location a command names is checked before it is read or written, as the DAG's tasks check
theirs: inputs against ``VOICEBATCH_ALLOWED_INPUTS``, outputs against
``VOICEBATCH_ALLOWED_OUTPUTS``, models against ``VOICEBATCH_MODEL_ROOTS``
(``voicebatch.locations.allowlist``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING

from voicebatch.locations.allowlist import AllowList

if TYPE_CHECKING:
    from voicebatch.cli.synth_records import SynthRequest

INPUT, OUTPUT, MODEL = "input", "output", "model"
POSITIONALS = {"file", "directory", "spec", "audio", "output", "manifest"}
# command -> {argparse dest: what the location is}; --voice, --script and the TOML's paths of
# `synth` are checked on the request they become (check_synth_request).
COMMAND_LOCATIONS: dict[str, dict[str, str]] = {
    "transcripts convert": {"file": INPUT},
    "voices check": {"directory": INPUT, "out": OUTPUT, "vocab": INPUT},
    "scripts check": {"directory": INPUT, "voices": INPUT, "lexicon": INPUT, "vocab": INPUT},
    "text normalize": {"lexicon": INPUT},
    "model tiny": {"directory": MODEL},
    "model resolve": {"spec": MODEL, "s3_prefix": MODEL},
    "synth": {"config": INPUT, "lexicon": INPUT},
    "book": {"lexicon": INPUT},  # the book, --voice, --out and --model: on the request (check_synth_request)
    "verify": {"audio": INPUT, "text_file": INPUT},
    "report share": {"output": OUTPUT},
    "retake": {"manifest": OUTPUT, "out": OUTPUT, "model": MODEL},
}


def allow_list() -> AllowList:
    """Enforced only where the deployment set one of the allow-list's variables."""
    return AllowList.from_env(required=False)


def check_command_locations(command: str, args: argparse.Namespace) -> None:
    """Every location the command's arguments name. Raises ``LocationRefused``."""
    allowed = allow_list()
    if not allowed.enforced:
        return
    for dest, kind in COMMAND_LOCATIONS.get(command, {}).items():
        value = getattr(args, dest, None)
        if value is None or str(value) == "-":  # standard input
            continue
        _check(allowed, kind, _flag(dest), str(value))


def check_input_path(name: str, location: object) -> None:
    """One more input (a path read from a config file, before it is read)."""
    allow_list().check_input(name, str(location))


def check_synth_request(request: SynthRequest) -> None:
    """What ``voicebatch synth`` will read, write and load, flags and TOML alike."""
    allowed = allow_list()
    if not allowed.enforced:
        return
    voices: Iterable[tuple[str, object]] = (
        (voice.where, path) for voice in request.voices for path in (voice.path, voice.ref_audio) if path is not None
    )
    for where, path in (*voices, *(("--script", s) for s in request.scripts)):
        allowed.check_input(where, str(path))
    if request.lexicon:
        allowed.check_input("--lexicon", request.lexicon)
    allowed.check_output("--out", request.out)
    allowed.check_model(request.model)


def _check(allowed: AllowList, kind: str, name: str, location: str) -> None:
    if kind == INPUT:
        allowed.check_input(name, location)
    elif kind == OUTPUT:
        allowed.check_output(name, location)
    elif name == "spec":  # a model spec: a name, or a folder / s3:// prefix
        allowed.check_model(location)
    else:
        allowed.check_model_location(name, location)


def _flag(dest: str) -> str:
    """How the command line names an argument: positionals by name, options as flags."""
    return dest if dest in POSITIONALS else f"--{dest.replace('_', '-')}"
