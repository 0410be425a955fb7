"""
### voice_batch: voice folders and scripts in; narration, subtitles, timings and a report out

1. **list_voices / ingest_voice**: a task per voice picks a reference clip whose text matches its audio.
2. **plan**: loads the scripts (`{scripts_uri}/{YYYY-MM-DD}/` when it exists), skips what is published.
3. **synthesize**: a task per batch spec (pool `f5_gpu`, queue `gpu`); every chunk verified, re-taken.
4. **publish**: audio, SRT, WebVTT, CSV, then the manifest, per script; Asset events.
5. **report** (`runs/<dag_id>/<run_id>/report.html`) and **final_check**: a failed stage turns the run red.
6. **notify** (a teardown): with `callback_url`, POSTs the run's signed summary, green or red.
7. **review_list / review / apply_review** (Param `review`): quarantined chunks answered in the UI, re-taken.

Trigger with the form (Params below), by schedule (daily) or with `airflow backfill create`.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from airflow.sdk import TriggerRule, dag, get_current_context, task

from callback_operator import RunCallbackOperator
from f5_operator import F5SynthesizeOperator
from report_operator import RunReportOperator
from voicebatch_assets import AUDIO, VOICE_REGISTRY, add_publish_events
from voicebatch_params import trigger_form
from voicebatch_review import add_review

PROJECT = Path(__file__).resolve().parent.parent
# Where every operator's run keeps its bytes (an optional Param left empty is None: no connection).
STORAGE = {"output_uri": "{{ params.output_uri }}", "aws_conn_id": "{{ params.aws_conn_id or '' }}"}
GPU_QUEUE = "gpu"  # synthesize's Celery queue: only GPU workers consume it (deploy/worker.sh gpu)
# The form from the settings catalogue; env variables change defaults, the demo's folders are fallbacks.
DEMO_FOLDERS = {"voices_uri": "include/voices", "scripts_uri": "include/scripts", "output_uri": "output"}
PARAMS = trigger_form({name: str(PROJECT / folder) for name, folder in DEMO_FOLDERS.items()})

RETRY = datetime.timedelta(seconds=30), datetime.timedelta(minutes=10)  # the first delay; doubled up to the second
DEFAULT_ARGS = {"retries": 2, "retry_delay": RETRY[0], "retry_exponential_backoff": True, "max_retry_delay": RETRY[1]}


@dag(
    dag_id="voice_batch",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    description="Batch voice cloning with F5-TTS: voices and scripts in; audio, subtitles, timings and a report out",
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["voicebatch", "tts", "f5-tts"],
    max_active_runs=4,
)
def voice_batch() -> None:
    from voicebatch_airflow import airflow_errors, check_param_names, preflight, run_config, run_stage, storage_opener

    @task
    def list_voices(params: dict | None = None, run_id: str | None = None) -> list[list[str]]:
        from voicebatch.run.ingest import list_voice_names, task_groups

        with run_stage(params["aws_conn_id"], params["output_uri"], run_id, "list_voices") as stage:
            check_param_names(params, PARAMS)  # a misspelt --conf key fails here, naming the valid ones
            preflight(params, stage.open_uri)  # bad configuration fails here, once
            config = run_config(params)
            names = list_voice_names(config, stage.out, stage.staging, stage.open_uri)
            return task_groups(names, config.max_tasks)  # one voice a task, in groups past max_map_length

    @task(map_index_template="{{ voice_name }}")
    def ingest_voice(voices: list[str], params: dict | None = None, run_id: str | None = None) -> list[dict]:
        from voicebatch.run.ingest import group_label, ingest_voices
        from voicebatch.run.layout import staging_prefix

        get_current_context()["voice_name"] = group_label(voices)  # the mapped task's label in the UI
        with airflow_errors():  # a bad voice fails only its own task (its group's), at once
            open_uri = storage_opener(params["aws_conn_id"])
            out = open_uri(params["output_uri"])
            return ingest_voices(voices, run_config(params), out, staging_prefix(run_id), open_uri)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def plan(params: dict | None = None, run_id: str | None = None) -> list[str]:
        from voicebatch.run.ingest import voices_listed
        from voicebatch.run.plan import plan_run

        from voicebatch_airflow import model_manifest, require_queue_worker, run_day

        with run_stage(params["aws_conn_id"], params["output_uri"], run_id, "plan") as stage:
            voices_listed(stage.out, stage.staging)  # skipped, not failed, when list_voices did not finish
            model = model_manifest(params["model"], stage.open_uri)  # no weights; a missing model fails here, once
            day = run_day(get_current_context())
            counts = plan_run(run_config(params), stage.out, stage.staging, model, stage.open_uri, day)
            if counts["batches"]:  # fail now, not wait forever, when no worker takes synthesize's queue
                require_queue_worker(GPU_QUEUE, len(counts["batches"]))
        return counts["batches"]  # one synthesize task per batch spec key

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[AUDIO, VOICE_REGISTRY])
    def publish(params: dict | None = None, run_id: str | None = None) -> dict:
        from voicebatch.run.plan import planned
        from voicebatch.run.publish import publish_run

        from voicebatch_airflow import run_context

        context = get_current_context()
        with run_stage(params["aws_conn_id"], params["output_uri"], run_id, "publish") as stage:
            planned(stage.out, stage.staging)  # skipped, not failed, when plan (or list_voices) did not finish
            counts = publish_run(stage.out, stage.staging, run_config(params).settings, run_context(context))
        add_publish_events(context["outlet_events"], counts, run_id, params["output_uri"])
        return counts

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def final_check(run_id: str | None = None) -> None:
        """The run's verdict (Airflow decides a run's state from its leaves, and report succeeds
        whenever it could publish): runs only when no stage failed, else upstream_failed: red."""
        logging.getLogger(__name__).info("run %s: no stage failed", run_id)

    listed = list_voices()
    voices = ingest_voice.expand(voices=listed)
    planned = plan()
    synthesized = F5SynthesizeOperator.partial(
        task_id="synthesize",
        pool="f5_gpu",
        queue=GPU_QUEUE,
        model="{{ params.model }}",
        **STORAGE,
        map_index_template="{{ batch_label }}",  # the UI labels each task with the scripts it speaks
    ).expand(batch_key=planned)
    voices >> planned
    published = publish()
    reported = RunReportOperator(
        task_id="report",
        trigger_rule=TriggerRule.ALL_DONE,
        strict="{{ params.strict }}",
        **STORAGE,
    )
    synthesized >> published >> reported
    verdict = final_check()
    [listed, planned, synthesized, published, reported] >> verdict
    # A teardown: Airflow leaves it out of the run's state, so a failed callback changes nothing. After
    # the report too: final_check is decided (upstream_failed) as soon as a stage fails, the report later.
    notify = RunCallbackOperator(
        task_id="notify",
        callback_url="{{ params.callback_url or '' }}",
        strict="{{ params.strict }}",
        **STORAGE,
    )
    [reported, verdict] >> notify.as_teardown()
    add_review(reported, GPU_QUEUE, "f5_gpu") >> verdict  # re-takes before the verdict (and the callback)


voice_batch()
