"""The Assets voice_batch produces: the published audio and the voice registry of each run's
own output location.

The publish task's outlets are two Asset aliases; at run time it adds an event for the
concrete Asset of the run's ``output_uri`` (``<output>/audio/``, ``<output>/voices/``), and
only when that run published something there, with the counts in the event's extra.
Downstream DAGs schedule on an alias (any output location) or on a concrete Asset URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias

AUDIO = AssetAlias("voicebatch_audio")
VOICE_REGISTRY = AssetAlias("voicebatch_voice_registry")
# Airflow's Assets have no description field: it goes in the Asset's extra, shown on its page.
DESCRIPTIONS = {
    "audio": "voicebatch outputs: audio/<script>/<output_hash>/ (audio, SRT, WebVTT, CSV timings, manifest.json "
    "written last) and audio/<script>/latest.json; an event per run that published, with its counts",
    "voices": "voicebatch voice registry: voices/<voice>/<clip_hash>/ (reference.wav, reference.txt, voice.json); "
    "an event per run that registered new voices",
}


def output_asset(output_uri: str, folder: str) -> Asset:
    """The Asset for ``folder`` (audio, voices) under a run's output location."""
    root = output_uri.rstrip("/")
    extra = {"description": DESCRIPTIONS[folder]}
    if root.startswith("s3://"):
        return Asset(uri=f"{root}/{folder}/", extra=extra)
    path = Path(root[7:] if root.startswith("file://") else root).expanduser().resolve()
    return Asset(uri=(path / folder).as_uri(), extra=extra)


def add_publish_events(outlet_events: Any, counts: Mapping[str, int], run_id: str, output_uri: str) -> None:
    """Asset events only for what this run published, naming the run's own output location."""
    extra = {"run_id": run_id, "output_uri": output_uri}
    if counts["published"]:
        audio = {k: counts[k] for k in ("published", "skipped", "failed")}
        outlet_events[AUDIO].add(output_asset(output_uri, "audio"), extra={**audio, **extra})
    if counts["voices_registered"]:
        voices = {k: counts[k] for k in ("voices_registered", "voices_reused", "voices_failed")}
        outlet_events[VOICE_REGISTRY].add(output_asset(output_uri, "voices"), extra={**voices, **extra})
