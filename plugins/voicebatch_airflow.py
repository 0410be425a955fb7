"""What the voicebatch DAG needs from Airflow: storage from a connection, the model store,
the run's configuration from its Params, and errors Airflow understands. Thin by design:
the work is in the voicebatch library.

Errors: the library raises its own types; ``airflow_errors`` translates them. Bad input and
bad configuration (a missing model, an unknown connection or bucket, invalid Params) fail
the task at once (``AirflowFailException``); an upstream stage that did not finish skips
it; transient trouble (throttling, 5xx, resets, timeouts) is left to Airflow's retries.

Locations: every location a run's Params name must be on the deployment's allow-list
(``voicebatch.locations.allowlist``, read here from the environment or Airflow's ``[voicebatch]``
config): the first task refuses the run otherwise, with one line naming the setting, before
anything is read or written; every opener and model store checks again.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicebatch.locations.allowlist import AllowList
    from voicebatch.locations.storage import Storage
    from voicebatch.run.config import RunConfig
    from voicebatch.synthesis.model_store import ModelStore

# Where models are published after a hub download, so the next worker starts warm.
MODELS_URI_ENV = "VOICEBATCH_MODELS_URI"


def allow_list() -> AllowList:
    """The deployment's allow-list (``voicebatch.locations.allowlist``): from the environment, else from
    Airflow's config (``[voicebatch] allowed_inputs``, ``allowed_outputs``, ``model_roots``).
    Enforced in every task: a deployment that names nothing allows nothing."""
    from airflow.sdk.configuration import conf

    from voicebatch.locations.allowlist import SETTINGS, AllowList

    env = dict(os.environ)
    for name in SETTINGS:
        key = name.removeprefix("VOICEBATCH_").lower()
        if name not in env and (value := conf.get("voicebatch", key, fallback=None)):
            env[name] = value
    return AllowList.from_env(env, required=True)


def check_locations(params: Mapping[str, Any]) -> None:
    """Every location the run's Params name, against the allow-list, before anything is read
    or written. Raises ``LocationRefused`` (an ``InputError``: the task fails at once)."""
    allowed = allow_list()
    for name in ("voices_uri", "scripts_uri", "lexicon_uri"):
        if params.get(name):
            allowed.check_input(name, params[name])
    allowed.check_output("output_uri", params["output_uri"])
    allowed.check_model(params["model"])


def storage_opener(aws_conn_id: str | None) -> Callable[[str], Storage]:
    """URI -> Storage; S3 clients come from the Airflow AWS connection (endpoint URL in its extra).
    Only locations the deployment named open (a second guard behind ``check_locations``)."""
    from voicebatch.locations.storage import open_storage

    client = None
    allowed = allow_list()

    def open_uri(uri: str) -> Storage:
        nonlocal client
        allowed.check_readable("location", uri)
        if uri.startswith("s3://") and client is None:
            client = s3_client(aws_conn_id)
        return open_storage(uri, client=client)

    return open_uri


def s3_client(aws_conn_id: str | None) -> Any:
    """A client from the connection. An empty id means the worker's own AWS credentials
    (instance profile, IRSA, environment); a named connection must exist: the amazon
    provider would otherwise fall back to those silently and fail later, or elsewhere."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
    from botocore.config import Config

    from voicebatch.locations.storage import S3_RETRIES

    if aws_conn_id:
        try:
            BaseHook.get_connection(aws_conn_id)
        except AirflowNotFoundException:
            raise AirflowFailException(
                f"Airflow connection {aws_conn_id!r} is not defined: add it (Admin > Connections, "
                f"`airflow connections add`, or AIRFLOW_CONN_{aws_conn_id.upper()}), or leave aws_conn_id "
                "empty to use the worker's own AWS credentials"
            ) from None

    # Path-style addressing works with MinIO and B2 as well as AWS; SigV4 for presigned links. A
    # config given to the hook replaces the connection's "config_kwargs", so they are merged over it.
    config = Config(retries=S3_RETRIES, signature_version="s3v4", s3={"addressing_style": "path"})
    own = S3Hook(aws_conn_id=aws_conn_id or None).conn_config.botocore_config
    return S3Hook(aws_conn_id=aws_conn_id or None, config=config.merge(own) if own else config).get_conn()


def model_store(open_uri: Callable[[str], Storage]) -> ModelStore:
    from voicebatch.synthesis.model_store import ModelStore

    models_uri = os.environ.get(MODELS_URI_ENV)
    return ModelStore(s3_prefix=open_uri(models_uri) if models_uri else None, allowed=allow_list())


def model_manifest(spec: str, open_uri: Callable[[str], Storage]) -> Any:
    """The model's manifest through the store (checksums only: planning downloads no weights);
    random weights are announced loudly (the tiny model that `make airflow` and `make demo` fall
    back to offline: deploy/local_model.py)."""
    import logging

    files = model_store(open_uri).manifest(spec)
    if files.random_weights:
        line = "!" * 78
        logging.getLogger(__name__).warning(
            "\n%s\nmodel %s has RANDOM WEIGHTS: every audio file of this run is NOISE, NOT A VOICE\n"
            "(the tiny model the local setup uses offline; set the model Param or VOICEBATCH_MODEL)\n%s",
            line,
            files.name,
            line,
        )
    return files


def speech_model_store(open_uri: Callable[[str], Storage]) -> Any:
    """ASR and aligner weights: the same cache and S3 models prefix as F5's."""
    from voicebatch.verify.store import SpeechModelStore

    models_uri = os.environ.get(MODELS_URI_ENV)
    return SpeechModelStore(s3_prefix=open_uri(models_uri) if models_uri else None)


def run_config(params: Mapping[str, Any]) -> RunConfig:
    """The run's configuration from its Params. An optional Param left empty (None) means its
    default: the library's own, so the form, ``--conf`` and the CLI agree."""
    from voicebatch.render.outputs import DEFAULT_OUTPUT_OPTIONS, OutputOptions
    from voicebatch.run.config import RunConfig
    from voicebatch.run.pipeline import RunSettings
    from voicebatch.synthesis.engine import DEFAULT_PARAMS, SynthesisParams
    from voicebatch.text.lexicon import read_lexicon
    from voicebatch.text.markup import PauseRules
    from voicebatch.verify.settings import VerifySettings

    check_locations(params)  # before the lexicon (or anything else) is read
    defaults = RunConfig("", "")
    verify, pauses = VerifySettings(), PauseRules()

    def get(name: str, default: Any, kind: Callable[[Any], Any] = lambda v: v) -> Any:
        value = params.get(name)
        return default if value is None else kind(value)

    settings = RunSettings(
        params=SynthesisParams(
            nfe_steps=get("nfe_steps", DEFAULT_PARAMS.nfe_steps, int),
            cfg_strength=get("cfg_strength", DEFAULT_PARAMS.cfg_strength, float),
        ),
        options=OutputOptions(
            audio_format=get("audio_format", DEFAULT_OUTPUT_OPTIONS.audio_format),
            # None here is a choice (no normalisation), not "the default": the Param's own default is -16.
            loudness_lufs=None if params.get("loudness_lufs") is None else float(params["loudness_lufs"]),
        ),
        seed=get("seed", 0, int),
        speed=get("speed", 1.0, float),
        verify=VerifySettings(
            mode=get("verify", verify.mode),
            max_takes=get("max_takes", verify.max_takes, int),
            max_cer=get("max_cer", None, float),
            asr_model=get("asr_model", verify.asr_model),
            publish_unverified=get("publish_unverified", verify.publish_unverified, bool),
        ),
        pauses=PauseRules(
            get("sentence_pause", pauses.sentence, float),
            get("paragraph_pause", pauses.paragraph, float),
            get("speaker_pause", pauses.speaker, float),
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
        batch_frames=get("batch_frames", defaults.batch_frames, int),
        chunks_per_task=get("chunks_per_task", defaults.chunks_per_task, int),
        task_gpu_seconds=get("task_gpu_seconds", defaults.task_gpu_seconds, float),
        voices=tuple(params.get("voices") or ()),
        script_files=tuple(params.get("script_files") or ()),
        force=get("force", False, bool),
        max_tasks=max_map_length(),
    )


def check_param_names(params: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    """Airflow keeps a ``--conf`` key the DAG does not declare as a Param of its own, silently:
    a misspelt ``nfe_step`` would run with the default NFE. Raises ``InputError`` naming the
    unknown keys, the likely intended ones and every valid key."""
    import difflib

    from voicebatch.errors import InputError

    unknown = sorted(set(params) - set(known))
    if not unknown:
        return
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(known), n=1)
        guesses.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise InputError(
        "conf",
        f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(guesses)}; valid keys: {', '.join(known)}",
    )


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length``: a mapped task never expands past it (voices and
    synthesize tasks are grouped to fit). The API server enforces it: workers and API server
    must share the setting, as they share the rest of Airflow's configuration."""
    from airflow.sdk.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)


def run_day(context: Mapping[str, Any]) -> datetime.date | None:
    """The run's date for the dated scripts folder; None for runs without a logical date."""
    start = context.get("data_interval_start") or context.get("logical_date")
    return start.date() if start else None


def worker_hostname() -> str:
    """``[core] hostname_callable`` for workers that share a host (tests, one-machine setups):
    ``VOICEBATCH_WORKER_HOSTNAME`` names the worker, else the host's FQDN as Airflow does."""
    import socket

    return os.environ.get("VOICEBATCH_WORKER_HOSTNAME") or socket.getfqdn()


# How long plan waits for a worker on the GPU queue before failing the run (a worker may be starting).
QUEUE_WAIT_ENV = "VOICEBATCH_QUEUE_WAIT_SECONDS"


def require_queue_worker(queue: str, tasks: int, *, wait_seconds: float | None = None) -> None:
    """With the CeleryExecutor, fail unless a Celery worker consumes ``queue``: tasks sent to a
    queue nobody consumes wait in the broker forever and no log says why (docker compose without
    ``--profile gpu`` and no GPU host). Waits up to ``wait_seconds`` (``$VOICEBATCH_QUEUE_WAIT_SECONDS``,
    default 120) for one to come up, then raises one line naming the missing worker."""
    import logging
    import time

    from airflow.configuration import conf
    from airflow.sdk.exceptions import AirflowFailException

    if "CeleryExecutor" not in conf.get("core", "executor"):
        return  # other executors run every queue's tasks themselves
    from airflow.providers.celery.executors.celery_executor import app

    log = logging.getLogger(__name__)
    wait = float(os.environ.get(QUEUE_WAIT_ENV, "120")) if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    while True:
        replies = app.control.inspect(timeout=5).active_queues() or {}
        nodes = sorted(node for node, queues in replies.items() if any(q.get("name") == queue for q in queues or ()))
        if nodes:
            log.info("queue %s: consumed by %s", queue, ", ".join(nodes))
            return
        if time.monotonic() >= deadline:
            raise AirflowFailException(
                f"no Celery worker consumes queue '{queue}' (waited {wait:.0f} s), so this run's {tasks} "
                "synthesize task(s) would wait forever: start the GPU worker (docker compose --profile gpu up -d, "
                "docker-compose.worker.yaml on a GPU host, or the Helm chart's gpu worker set)"
            )
        log.warning(
            "no Celery worker consumes queue %s yet; waiting up to %.0f s more", queue, deadline - time.monotonic()
        )
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))  # polling the workers, not timing


def run_context(context: Mapping[str, Any]) -> dict:
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": ti.try_number}


@contextlib.contextmanager
def airflow_errors() -> Iterator[None]:
    """Library errors in Airflow's terms (see the module docstring). By exception type:
    only errors known to be permanent fail at once; anything else is retried."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from voicebatch.errors import InputError
    from voicebatch.locations.retry import is_permanent
    from voicebatch.run.outcomes import StageNotReady, error_line
    from voicebatch.synthesis.models import ModelError

    try:
        yield
    except StageNotReady as e:
        raise AirflowSkipException(str(e)) from e
    except (InputError, ModelError) as e:
        raise AirflowFailException(error_line(e)) from e
    except Exception as e:
        if is_permanent(e):
            raise AirflowFailException(error_line(e)) from e
        raise


@dataclass(frozen=True, slots=True)
class Stage:
    open_uri: Callable[[str], Storage]
    out: Storage
    staging: str


@contextlib.contextmanager
def run_stage(
    aws_conn_id: str | None, output_uri: str, run_id: str, name: str, part: str | None = None
) -> Iterator[Stage]:
    """One stage of a run: its outcome is recorded for the report (``voicebatch.run.outcomes``),
    and its errors are translated for Airflow."""
    from voicebatch.run.layout import staging_prefix
    from voicebatch.run.outcomes import record_stage

    with airflow_errors():
        output_allowed(output_uri, first=name == "list_voices")
        open_uri = storage_opener(aws_conn_id)
        out = open_uri(output_uri)
        staging = staging_prefix(run_id)
        with record_stage(out, staging, name, part):
            yield Stage(open_uri, out, staging)


def output_allowed(output_uri: str, *, first: bool, listed: Callable[[], bool] | None = None) -> None:
    """The output location must be allowed before a stage writes its outcome there. The run's
    first stage fails on it, once (``LocationRefused``). A later stage (plan, publish, the
    report) skips, naming it, when the listing was refused too: there is nowhere to write, and
    the cause is already reported. When the listing went through, the worker running this
    stage has another allow-list than the first one's: that fails too, or the run would end
    green having published nothing. ``listed``: whether list_voices finished (its XCom)."""
    from voicebatch.locations.allowlist import LocationRefused
    from voicebatch.run.outcomes import StageNotReady

    try:
        allow_list().check_output("output_uri", output_uri)
    except LocationRefused as e:
        if first:
            raise
        if (listed or _listing_finished)():
            inconsistent = f"{e.message} (list_voices, on another worker, was allowed it: one allow-list for all)"
            raise LocationRefused(e.path, inconsistent) from None
        raise StageNotReady(f"not run: {e}") from None


def _listing_finished() -> bool:
    """list_voices returned its voice groups (an XCom only a finished task leaves)."""
    from airflow.sdk import get_current_context

    return get_current_context()["ti"].xcom_pull(task_ids="list_voices") is not None


def preflight(params: Mapping[str, Any], open_uri: Callable[[str], Storage]) -> None:
    """Configuration no run can succeed with fails the first task, once, with one line:
    invalid Param combinations, and S3 buckets that do not exist or cannot be reached with
    the connection. Raises ``InputError``."""
    from botocore.exceptions import ClientError

    from voicebatch.errors import InputError
    from voicebatch.run.config import check_run_config

    check_locations(params)  # outside the allow-list: one line naming the setting, nothing read
    check_run_config(run_config(params), params["output_uri"])
    for name in ("voices_uri", "scripts_uri", "output_uri"):
        if not params[name].startswith("s3://"):
            continue
        storage = open_uri(params[name])
        try:
            storage.client.head_bucket(Bucket=storage.bucket)  # type: ignore[attr-defined]
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code"))
            if code in ("404", "NoSuchBucket"):
                raise InputError(name, f"{params[name]}: bucket {storage.bucket!r} does not exist") from None
            if code in ("403", "AccessDenied"):
                raise InputError(
                    name,
                    f"{params[name]}: access to bucket {storage.bucket!r} denied with connection "
                    f"{params['aws_conn_id']!r}",
                ) from None
            raise
