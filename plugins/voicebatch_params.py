"""The trigger form: voice_batch's Params, generated from the settings catalogue
(``voicebatch.settings``), so the form, ``--conf``, the CLI and the library share one
definition of every default, range and help text.

A deployment changes a default with the setting's environment variable (``VOICEBATCH_MODEL``,
``VOICEBATCH_OUTPUT_URI``...); the DAG file gives the fallbacks that depend on where the
project is installed (the demo's folders).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from airflow.sdk import Param

try:
    from voicebatch.settings import SETTINGS, Setting
except ImportError:  # the control image has no voicebatch library, only this one file of it (Dockerfile)
    from voicebatch_settings import SETTINGS, Setting


def trigger_form(fallbacks: Mapping[str, object], environ: Mapping[str, str] = os.environ) -> dict[str, Param]:
    """Every run setting as an Airflow Param, in the catalogue's order (the form's order)."""
    return {s.name: _param(s, _default(s, fallbacks, environ)) for s in SETTINGS if s.param}


def _default(setting: Setting, fallbacks: Mapping[str, object], environ: Mapping[str, str]) -> object:
    if setting.env and setting.env in environ:
        return environ[setting.env] or None  # set but empty: none (the worker's own credentials, no lexicon)
    default = fallbacks.get(setting.name, setting.default)
    return list(default) if isinstance(default, tuple) else default


def _param(setting: Setting, default: object) -> Param:
    # Airflow's form marks a field required unless its type allows null.
    schema: dict = {"type": [setting.kind, "null"] if setting.optional else setting.kind, **setting.schema}
    if setting.limit is not None:
        schema.update(setting.limit.schema())
    if setting.choices:
        schema["enum"] = [*setting.choices, None]
        label = setting.choices.get(str(setting.default), str(setting.default))
        schema["values_display"] = {**setting.choices, "null": f"default ({label})"}
    return Param(default, title=setting.title, description=setting.description(), section=setting.section, **schema)
