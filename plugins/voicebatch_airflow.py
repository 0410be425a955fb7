"""What the voicebatch DAG needs from Airflow: storage from a connection, the model store,
the run's configuration from its Params, and errors Airflow understands. Thin by design:
the work is in the voicebatch library."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicebatch.runs import RunConfig
    from voicebatch.storage import Storage
    from voicebatch.synthesis.models import ModelStore

# Where models are published after a hub download, so the next worker starts warm.
MODELS_URI_ENV = "VOICEBATCH_MODELS_URI"


def storage_opener(aws_conn_id: str | None) -> Callable[[str], Storage]:
    """URI -> Storage; S3 clients come from the Airflow AWS connection (endpoint URL in its extra)."""
    from voicebatch.storage import open_storage

    client = None

    def open_uri(uri: str) -> Storage:
        nonlocal client
        if uri.startswith("s3://") and client is None:
            client = s3_client(aws_conn_id)
        return open_storage(uri, client=client)

    return open_uri


def s3_client(aws_conn_id: str | None) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    from voicebatch.storage import S3_RETRIES

    # Path-style addressing works with MinIO and B2 as well as AWS; SigV4 for presigned links.
    config = Config(retries=S3_RETRIES, signature_version="s3v4", s3={"addressing_style": "path"})
    return S3Hook(aws_conn_id=aws_conn_id, config=config).get_conn()


def model_store(open_uri: Callable[[str], Storage]) -> ModelStore:
    from voicebatch.synthesis.models import ModelStore

    models_uri = os.environ.get(MODELS_URI_ENV)
    return ModelStore(s3_prefix=open_uri(models_uri) if models_uri else None)


def run_config(params: Mapping[str, Any]) -> RunConfig:
    from voicebatch.outputs import OutputOptions
    from voicebatch.pipeline import RunSettings
    from voicebatch.runs import RunConfig
    from voicebatch.synthesis.engine import SynthesisParams
    from voicebatch.text.lexicon import read_lexicon
    from voicebatch.text.markup import PauseRules

    settings = RunSettings(
        params=SynthesisParams(nfe_steps=int(params["nfe_steps"]), cfg_strength=float(params["cfg_strength"])),
        options=OutputOptions(
            audio_format=params["audio_format"],
            loudness_lufs=None if params["loudness_lufs"] is None else float(params["loudness_lufs"]),
        ),
        seed=int(params["seed"]),
        speed=float(params["speed"]),
        pauses=PauseRules(
            float(params.get("sentence_pause", 0.3)),
            float(params.get("paragraph_pause", 0.8)),
            float(params.get("speaker_pause", 0.5)),
        ),
        # Read by every task that builds the settings: plan (the spoken form) and publish (its hash).
        lexicon=read_lexicon(lexicon, storage_opener(params["aws_conn_id"]))
        if (lexicon := params.get("lexicon_uri"))
        else None,
    )
    return RunConfig(
        voices_uri=params["voices_uri"],
        scripts_uri=params["scripts_uri"],
        settings=settings,
        batch_frames=int(params["batch_frames"]),
        chunks_per_task=int(params["chunks_per_task"]),
        task_gpu_seconds=float(params["task_gpu_seconds"]),
        voices=tuple(params["voices"] or ()),
        force=bool(params["force"]),
    )


def run_day(context: Mapping[str, Any]) -> datetime.date | None:
    """The run's date for the dated scripts folder; None for runs without a logical date."""
    start = context.get("data_interval_start") or context.get("logical_date")
    return start.date() if start else None


def worker_hostname() -> str:
    """``[core] hostname_callable`` for workers that share a host (tests, one-machine setups):
    ``VOICEBATCH_WORKER_HOSTNAME`` names the worker, else the host's FQDN as Airflow does."""
    import socket

    return os.environ.get("VOICEBATCH_WORKER_HOSTNAME") or socket.getfqdn()


def run_context(context: Mapping[str, Any]) -> dict:
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number}
