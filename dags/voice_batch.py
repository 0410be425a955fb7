"""
### voice_batch: batch voice cloning with F5-TTS

Turns **voice folders** (a recording and its transcript) and **scripts** into cloned-voice
narration with subtitles, and publishes it to a local directory or S3-compatible storage.

1. **list_voices / ingest_voice** (one task per voice): check the recording, pick a reference
   clip whose text matches its audio, register it under `voices/<voice>/<clip_hash>/`.
   A bad voice fails only its own task.
2. **plan**: load the scripts (`{scripts_uri}/{YYYY-MM-DD}/` for the run's date when that
   folder exists, else `scripts_uri`), skip outputs already published, write batch specs.
3. **synthesize** (one task per batch spec, pool `f5_gpu`, queue `gpu`): F5-TTS on a leased GPU.
4. **publish**: audio, SRT, WebVTT, CSV, then the manifest, per script.
5. **report**: `runs/<dag_id>/<run_id>/report.html`; with `strict`, fails the run on any failure.

Trigger with a form (Params below), by schedule (daily) or with `airflow backfill create`.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from f5_operator import F5SynthesizeOperator
from voicebatch_assets import AUDIO, VOICE_REGISTRY

PROJECT = Path(__file__).resolve().parent.parent
ENV = os.environ.get


def _param(default: object, title: str, description: str, **schema: object) -> Param:
    return Param(default, title=title, description=description, **schema)


PARAMS = {
    "voices_uri": _param(
        ENV("VOICEBATCH_VOICES_URI", str(PROJECT / "include" / "voices")),
        "Voices",
        "Voice folders: a local path or s3://bucket/prefix.",
        type="string",
        minLength=1,
    ),
    "scripts_uri": _param(
        ENV("VOICEBATCH_SCRIPTS_URI", str(PROJECT / "include" / "scripts")),
        "Scripts",
        "Scripts; a YYYY-MM-DD sub-folder for the run's date is used when it exists.",
        type="string",
        minLength=1,
    ),
    "output_uri": _param(
        ENV("VOICEBATCH_OUTPUT_URI", str(PROJECT / "output")),
        "Output",
        "Where outputs are published: a local path or s3://bucket/prefix.",
        type="string",
        minLength=1,
    ),
    "aws_conn_id": _param(
        ENV("VOICEBATCH_AWS_CONN_ID", "aws_default"),
        "AWS connection",
        "Airflow connection for S3 (set endpoint_url in its extra for B2 or MinIO).",
        type="string",
    ),
    "model": _param(
        ENV("VOICEBATCH_MODEL", "F5TTS_v1_Base"),
        "Model",
        "A model name, a model directory or an s3:// prefix.",
        type="string",
        minLength=1,
    ),
    "nfe_steps": _param(
        32,
        "Sampling steps (NFE)",
        "More is slower and cleaner; 7 (or 5, 6, 10, 12, 16) uses F5's EPSS step schedule, ~4.5x faster than 32.",
        type="integer",
        minimum=4,
        maximum=64,
    ),
    "cfg_strength": _param(
        2.0, "Guidance strength (CFG)", "How closely speech follows the text.", type="number", minimum=0, maximum=5
    ),
    "speed": _param(1.0, "Speed", "Multiplies each script's own speed.", type="number", minimum=0.5, maximum=2.0),
    "seed": _param(0, "Seed", "Same seed and inputs give the same audio.", type="integer", minimum=0),
    "batch_frames": _param(
        16384,
        "Frames per forward pass",
        "GPU batch budget in padded mel frames.",
        type="integer",
        minimum=1000,
        maximum=1_000_000,
    ),
    "task_gpu_seconds": _param(
        150,
        "GPU seconds per synthesize task",
        "Tasks are sized by estimated GPU time so model loading stays under 10 % of each task.",
        type="number",
        minimum=1,
        maximum=86_400,
    ),
    "chunks_per_task": _param(
        1024,
        "Most chunks per synthesize task",
        "A cap on top of the GPU-time sizing.",
        type="integer",
        minimum=1,
        maximum=10_000,
    ),
    "audio_format": _param(
        "wav", "Audio format", "WAV PCM16, FLAC or MP3.", type="string", enum=["wav", "flac", "mp3"]
    ),
    "loudness_lufs": _param(
        -16.0,
        "Loudness (LUFS)",
        "Integrated loudness target; empty for none.",
        type=["number", "null"],
        minimum=-40,
        maximum=-5,
    ),
    "lexicon_uri": _param(
        ENV("VOICEBATCH_LEXICON_URI") or None,
        "Pronunciation lexicon",
        "A .csv or .pls (W3C) file, or a folder of them (lexicon.* for all voices, <voice>.* per voice), "
        "local or s3://; empty for none. Applied to what F5 speaks, never to the subtitles.",
        type=["null", "string"],  # the trigger form sends an empty field as null
    ),
    "sentence_pause": _param(
        0.3,
        "Pause between sentences (s)",
        "Silence between sentences; 0 packs sentences as F5 does.",
        type="number",
        minimum=0,
        maximum=20,
    ),
    "paragraph_pause": _param(
        0.8, "Pause between paragraphs (s)", "Silence at a blank line.", type="number", minimum=0, maximum=20
    ),
    "speaker_pause": _param(
        0.5, "Pause between voices (s)", "Silence where the voice changes.", type="number", minimum=0, maximum=20
    ),
    "voices": _param([], "Only these voices", "Voice names; empty for all.", type="array", items={"type": "string"}),
    "force": _param(False, "Force", "Synthesize again even when the output is published.", type="boolean"),
    "strict": _param(False, "Strict", "Fail the run when any voice or script failed.", type="boolean"),
}

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": datetime.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": datetime.timedelta(minutes=10),
}


@dag(
    dag_id="voice_batch",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["voicebatch", "tts", "f5-tts"],
    max_active_runs=4,
)
def voice_batch() -> None:
    from voicebatch_airflow import run_config, storage_opener

    @task
    def list_voices(params: dict | None = None) -> list[str]:
        from voicebatch.errors import InputError
        from voicebatch.runs import list_voice_names

        try:
            return list_voice_names(run_config(params), storage_opener(params["aws_conn_id"]))
        except InputError as e:
            raise AirflowFailException(str(e)) from e

    @task(map_index_template="{{ voice_name }}")
    def ingest_voice(voice: str, params: dict | None = None, run_id: str | None = None) -> dict:
        from voicebatch.errors import InputError
        from voicebatch.runs import ingest_voice as ingest
        from voicebatch.runs import staging_prefix

        get_current_context()["voice_name"] = voice  # the mapped task's label in the UI
        open_uri = storage_opener(params["aws_conn_id"])
        try:
            return ingest(voice, run_config(params), open_uri(params["output_uri"]), staging_prefix(run_id), open_uri)
        except InputError as e:
            raise AirflowFailException(str(e)) from e  # bad input: no retry

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def plan(params: dict | None = None, run_id: str | None = None) -> list[str]:
        from voicebatch.runs import plan_run, staging_prefix

        from voicebatch_airflow import model_store, run_day

        open_uri = storage_opener(params["aws_conn_id"])
        model = model_store(open_uri).resolve(params["model"])
        out = open_uri(params["output_uri"])
        day = run_day(get_current_context())
        counts = plan_run(run_config(params), out, staging_prefix(run_id), model, open_uri, day)
        return counts["batches"]  # one synthesize task per batch spec key

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[AUDIO, VOICE_REGISTRY])
    def publish(params: dict | None = None, run_id: str | None = None) -> dict:
        from voicebatch.runs import publish_run, staging_prefix

        from voicebatch_airflow import run_context

        open_uri = storage_opener(params["aws_conn_id"])
        context = get_current_context()
        counts = publish_run(
            open_uri(params["output_uri"]),
            staging_prefix(run_id),
            run_config(params).settings,
            run_context(context),
        )
        context["outlet_events"][AUDIO].extra = counts
        context["outlet_events"][VOICE_REGISTRY].extra = {"run_id": run_id}
        return counts

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report(params: dict | None = None, run_id: str | None = None, dag_run: object = None) -> dict:
        from voicebatch.runs import finish_run, staging_prefix

        out = storage_opener(params["aws_conn_id"])(params["output_uri"])
        started = dag_run.start_date.isoformat() if dag_run and dag_run.start_date else None
        summary = finish_run(out, staging_prefix(run_id), dag_id="voice_batch", run_id=run_id, started_at=started)
        logging.getLogger(__name__).info("report: %s", out.uri_for(summary["report"]))
        if params["strict"] and (summary["failed"] or summary["voices_failed"]):
            raise AirflowFailException(
                f"strict: {summary['failed']} script(s), {summary['voices_failed']} voice(s) failed"
            )
        return summary

    voices = ingest_voice.expand(voice=list_voices())
    planned = plan()
    synthesized = F5SynthesizeOperator.partial(
        task_id="synthesize",
        pool="f5_gpu",
        queue="gpu",
        output_uri="{{ params.output_uri }}",
        aws_conn_id="{{ params.aws_conn_id }}",
        model="{{ params.model }}",
        batch_frames="{{ params.batch_frames }}",
    ).expand(batch_key=planned)
    voices >> planned
    synthesized >> publish() >> report()


voice_batch()
