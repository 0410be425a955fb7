"""The Assets voice_batch produces, defined once: the published audio and the voice registry.

Their URIs are the deployment's output root (``VOICEBATCH_OUTPUT_URI``; the demo's local
``output/`` otherwise). Downstream DAGs can schedule on them; each event carries counts.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import Asset

PROJECT = Path(__file__).resolve().parent.parent
OUTPUT_URI = os.environ.get("VOICEBATCH_OUTPUT_URI") or str(PROJECT / "output")


def _asset_uri(suffix: str) -> str:
    root = OUTPUT_URI.rstrip("/")
    return f"{root}/{suffix}/" if root.startswith("s3://") else Path(root, suffix).as_uri() + "/"


AUDIO = Asset(name="voicebatch_audio", uri=_asset_uri("audio"))
VOICE_REGISTRY = Asset(name="voicebatch_voice_registry", uri=_asset_uri("voices"))
