"""The deployment's allow-list: every location a run may read, write or load a model from.

Whoever triggers a run (the trigger form, ``--conf``, the REST API) is not whoever deploys
voicebatch: a run's conf only *selects* among the locations the deployment names here, in the
environment of the workers and the DAG processor (never in conf)::

    VOICEBATCH_ALLOWED_INPUTS   where runs may read voices, scripts and lexicons
    VOICEBATCH_ALLOWED_OUTPUTS  where runs may publish (and read back what they published)
    VOICEBATCH_MODEL_ROOTS      folders and s3:// prefixes a model spec may name

Each holds entries separated by commas or newlines: a local folder (it and everything below
it; symbolic links are resolved, in the entry and in the location checked, so a link cannot
lead out) or ``s3://bucket`` / ``s3://bucket/prefix`` (that bucket, or the keys under that
prefix). The deployment's own defaults count as named: ``VOICEBATCH_VOICES_URI``,
``VOICEBATCH_SCRIPTS_URI`` and ``VOICEBATCH_LEXICON_URI`` are inputs, ``VOICEBATCH_OUTPUT_URI``
an output; the model cache (``VOICEBATCH_MODEL_DIR``), the S3 models prefix
(``VOICEBATCH_MODELS_URI``) and a ``VOICEBATCH_MODEL`` that is a folder or s3:// prefix are
model roots. A model *name* (``F5TTS_v1_Base``) is always allowed: the store looks it up in
its cache, its S3 prefix, then the hub.

Enforced in every Airflow task (nothing named: nothing allowed), and by the ``voicebatch``
command once any of the three variables is set (as in a worker's environment); on a laptop
where none is set the command reads and writes wherever its user asks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from voicebatch.errors import InputError
from voicebatch.locations.names import key_name_problem
from voicebatch.locations.storage import is_s3_uri, key_problem, local_path

INPUTS_ENV = "VOICEBATCH_ALLOWED_INPUTS"
OUTPUTS_ENV = "VOICEBATCH_ALLOWED_OUTPUTS"
MODEL_ROOTS_ENV = "VOICEBATCH_MODEL_ROOTS"
SETTINGS = (INPUTS_ENV, OUTPUTS_ENV, MODEL_ROOTS_ENV)
# The deployment's defaults for the DAG's Params: named by the deployment, so allowed.
DEFAULT_INPUTS = ("VOICEBATCH_VOICES_URI", "VOICEBATCH_SCRIPTS_URI", "VOICEBATCH_LEXICON_URI")
DEFAULT_OUTPUTS = ("VOICEBATCH_OUTPUT_URI",)
_SEPARATORS = re.compile(r"[,\n]")


class LocationRefused(InputError):
    """A location outside what the deployment allows (one line naming the setting to change)."""


@dataclass(frozen=True, slots=True)
class Place:
    """A location in comparable form: an S3 bucket and key prefix (``""``: the whole bucket),
    or (``bucket`` None) an absolute local path with every symbolic link resolved."""

    bucket: str | None
    path: str

    def contains(self, other: Place) -> bool:
        if self.bucket != other.bucket:
            return False
        if self.bucket is None:
            return Path(other.path).is_relative_to(self.path)
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.path}".rstrip("/") if self.bucket is not None else self.path


def place(uri: str) -> Place:
    """``uri`` in comparable form. Raises ``ValueError`` for what is no location voicebatch
    reads (another scheme, an S3 URI without a bucket or with '.', '..' or empty segments)."""
    if is_s3_uri(uri):
        bucket, _, prefix = uri[5:].partition("/")
        prefix = prefix.strip("/")
        if not bucket:
            raise ValueError(f"{uri}: no bucket in the S3 URI")
        if prefix and (problem := key_problem(prefix)):
            raise ValueError(f"{uri}: the key prefix {problem}")
        return Place(bucket, prefix)
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"{uri}: unsupported location (a local path, file:// or s3://bucket/prefix)")
    return Place(None, str(local_path(uri).resolve()))


def parse_entries(value: str | None) -> tuple[Place, ...]:
    """The entries of one setting (commas or newlines between them; blanks ignored)."""
    return tuple(place(entry.strip()) for entry in _SEPARATORS.split(value or "") if entry.strip())


@dataclass(frozen=True, slots=True)
class AllowList:
    inputs: tuple[Place, ...] = ()
    outputs: tuple[Place, ...] = ()
    models: tuple[Place, ...] = ()
    enforced: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, required: bool = True) -> AllowList:
        """The deployment's allow-list. ``required`` (Airflow): enforced whatever is set;
        otherwise (the CLI) only when one of ``SETTINGS`` is in the environment."""
        env = os.environ if env is None else env
        if not required and not any(name in env for name in SETTINGS):
            return cls(enforced=False)
        try:
            inputs = parse_entries(env.get(INPUTS_ENV)) + _defaults(env, DEFAULT_INPUTS)
            outputs = parse_entries(env.get(OUTPUTS_ENV)) + _defaults(env, DEFAULT_OUTPUTS)
            models = parse_entries(env.get(MODEL_ROOTS_ENV)) + _model_defaults(env)
        except ValueError as e:
            raise InputError("deployment settings", f"{e} ({', '.join(SETTINGS)})") from None
        return cls(inputs, outputs, models)

    def check_input(self, name: str, uri: str) -> None:
        """Raises ``LocationRefused`` unless runs may read ``uri``."""
        self._check(name, uri, self.inputs, INPUTS_ENV, "inputs")

    def check_output(self, name: str, uri: str) -> None:
        """Raises ``LocationRefused`` unless runs may publish to ``uri``."""
        self._check(name, uri, self.outputs, OUTPUTS_ENV, "outputs")

    def check_readable(self, name: str, uri: str) -> None:
        """Anything the deployment named: inputs, outputs (read back) and model roots."""
        self._check(name, uri, self.inputs + self.outputs + self.models, ", ".join(SETTINGS), "any use")

    def check_model(self, spec: str) -> None:
        """A model name, or a folder / s3:// prefix under a model root. Raises ``LocationRefused``."""
        if not self.enforced:
            return
        if is_model_location(spec):
            self.check_model_location("model", model_location(spec))
        elif problem := key_name_problem(spec):
            raise LocationRefused("model", f"model name {spec!r} {problem}")

    def check_model_location(self, name: str, uri: str) -> None:
        """A folder or s3:// prefix under a model root. Raises ``LocationRefused``."""
        self._check(name, uri, self.models, MODEL_ROOTS_ENV, "models")

    def _check(self, name: str, uri: str, allowed: tuple[Place, ...], setting: str, what: str) -> None:
        if not self.enforced:
            return
        try:
            found = place(uri)
        except ValueError as e:
            raise LocationRefused(name, str(e)) from None
        if any(entry.contains(found) for entry in allowed):
            return
        shown = f"allowed: {_listing(allowed)}" if allowed else "this deployment allows none"
        raise LocationRefused(
            name,
            f"{uri} is outside the locations this deployment allows for {what} ({shown}); to allow it, "
            f"add it to {setting} where voicebatch runs",
        )


def is_model_location(spec: str) -> bool:
    """A spec naming a folder or s3:// prefix (else a model name), as the model store reads it."""
    return is_s3_uri(spec) or "/" in spec or spec.startswith((".", "~")) or Path(spec).expanduser().is_dir()


def model_location(spec: str) -> str:
    return spec if is_s3_uri(spec) else str(Path(spec).expanduser())


def _defaults(env: Mapping[str, str], names: Iterable[str]) -> tuple[Place, ...]:
    return tuple(place(env[name]) for name in names if env.get(name))


def _model_defaults(env: Mapping[str, str]) -> tuple[Place, ...]:
    from voicebatch.locations.workdir import default_cache_dir

    roots = [str(default_cache_dir(env)), env.get("VOICEBATCH_MODELS_URI", "")]
    if (model := env.get("VOICEBATCH_MODEL", "")) and is_model_location(model):
        roots.append(model_location(model))
    return tuple(place(root) for root in roots if root)


def _listing(places: tuple[Place, ...], most: int = 4) -> str:
    names = list(dict.fromkeys(str(p) for p in places))
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
