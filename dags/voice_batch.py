"""
### voice_batch: batch voice cloning with F5-TTS

Turns **voice folders** (a recording and its transcript) and **scripts** into cloned-voice
narration with subtitles, and publishes it to a local directory or S3-compatible storage.

1. **list_voices / ingest_voice** (one task per voice; in groups past `[core] max_map_length`):
   check the recording, pick a reference clip whose text matches its audio, register it under
   `voices/<voice>/<clip_hash>/`. A bad voice fails only its own task.
2. **plan**: load the scripts (`{scripts_uri}/{YYYY-MM-DD}/` for the run's date when that
   folder exists, else `scripts_uri`), skip outputs already published, write batch specs.
3. **synthesize** (one task per batch spec, pool `f5_gpu`, queue `gpu`): F5-TTS on a leased GPU;
   every chunk is checked (`verify`), failures re-taken with their next seed (`max_takes`).
4. **publish**: audio, SRT, WebVTT, CSV, then the manifest, per script; Asset events for
   what was published.
5. **report**: `runs/<dag_id>/<run_id>/report.html`, naming any stage that failed; with
   `strict`, fails the run on any voice, script or input failure or quarantined chunk.
6. **final_check**: fails (upstream_failed) when any stage failed, so the run ends red.
7. **notify** (a teardown: never changes the run's state): with `callback_url`, POSTs the run's
   signed summary there, green or red.
8. **review_list / review / apply_review**: when published scripts have quarantined chunks, the
   run waits for a reviewer (Human-in-the-loop: accept, re-take with a new seed or edited text, or
   drop; accept when nobody answers in time), then re-takes the chosen chunks as new outputs.

Trigger with a form (Params below), by schedule (daily) or with `airflow backfill create`.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from callback_operator import RunCallbackOperator
from f5_operator import F5SynthesizeOperator
from report_operator import RunReportOperator
from voicebatch_assets import AUDIO, VOICE_REGISTRY, output_asset

try:
    from voicebatch.limits import LIMITS
except ImportError:  # the control image has no voicebatch library, only this one file of it (Dockerfile)
    from voicebatch_limits import LIMITS

PROJECT = Path(__file__).resolve().parent.parent
ENV = os.environ.get
INPUTS, MODEL, SOUND, CONTROL = "Inputs", "Model", "Sound", "Run control"  # the trigger form's sections
GPU_QUEUE = "gpu"  # synthesize's Celery queue: only GPU workers consume it (deploy/worker.sh gpu)


def _param(default: object, title: str, description: str, section: str, **schema: object) -> Param:
    return Param(default, title=title, description=description, section=section, **schema)


def _optional(kind: str) -> list[str]:
    """An optional field: empty (null) means the default. Airflow's form marks a field required
    unless its type allows null."""
    return [kind, "null"]


def _ranged(name: str, default: object, title: str, description: str, section: str, kind: str) -> Param:
    """A number with its range from voicebatch.limits (shared with the CLI's flags)."""
    limit = LIMITS[name]
    text = f"{description} Range {limit.span()}; empty: {default}."
    return _param(default, title, text, section, type=_optional(kind), **limit.schema())


PARAMS = {
    "voices_uri": _param(
        ENV("VOICEBATCH_VOICES_URI", str(PROJECT / "include" / "voices")),
        "Voices",
        "Voice folders: a local path or s3://bucket/prefix, among the inputs this deployment allows.",
        INPUTS,
        type="string",
        minLength=1,
    ),
    "scripts_uri": _param(
        ENV("VOICEBATCH_SCRIPTS_URI", str(PROJECT / "include" / "scripts")),
        "Scripts",
        "Scripts, among the inputs this deployment allows; a YYYY-MM-DD sub-folder for the run's date is used "
        "when it exists.",
        INPUTS,
        type="string",
        minLength=1,
    ),
    "output_uri": _param(
        ENV("VOICEBATCH_OUTPUT_URI", str(PROJECT / "output")),
        "Output",
        "Where outputs are published: a local path or s3://bucket/prefix this deployment allows.",
        INPUTS,
        type="string",
        minLength=1,
    ),
    "aws_conn_id": _param(
        ENV("VOICEBATCH_AWS_CONN_ID", "aws_default"),
        "AWS connection",
        "Airflow connection for S3 (set endpoint_url in its extra for B2 or MinIO); empty: the worker's own "
        "AWS credentials.",
        INPUTS,
        type=_optional("string"),
    ),
    "voices": _param(
        [],
        "Only these voices",
        "Voice names, one per line; empty: every voice.",
        INPUTS,
        type=_optional("array"),
        items={"type": "string"},
    ),
    "model": _param(
        ENV("VOICEBATCH_MODEL", "F5TTS_v1_Base"),
        "Model",
        "A model name, or a model directory or s3:// prefix under this deployment's model roots.",
        MODEL,
        type="string",
        minLength=1,
    ),
    "nfe_steps": _ranged(
        "nfe_steps",
        32,
        "Sampling steps (NFE)",
        "More is slower and cleaner; 7 (or 5, 6, 10, 12, 16) uses F5's EPSS step schedule, ~4.5x faster than 32.",
        MODEL,
        "integer",
    ),
    "cfg_strength": _ranged(
        "cfg_strength", 2.0, "Guidance strength (CFG)", "How closely speech follows the text.", MODEL, "number"
    ),
    "seed": _ranged("seed", 0, "Seed", "Same seed and inputs give the same audio.", MODEL, "integer"),
    "speed": _ranged("speed", 1.0, "Speed", "Multiplies each script's own speed.", SOUND, "number"),
    "audio_format": _param(
        "wav",
        "Audio format",
        "WAV PCM16, FLAC or MP3; empty: WAV.",
        SOUND,
        type=_optional("string"),
        enum=["wav", "flac", "mp3", None],
        values_display={"wav": "WAV (PCM16)", "flac": "FLAC", "mp3": "MP3", "null": "default (WAV)"},
    ),
    "loudness_lufs": _param(
        -16.0,
        "Loudness (LUFS)",
        f"Integrated loudness target, {LIMITS['loudness_lufs'].span()}; empty: no normalisation.",
        SOUND,
        type=_optional("number"),
        **LIMITS["loudness_lufs"].schema(),
    ),
    "lexicon_uri": _param(
        ENV("VOICEBATCH_LEXICON_URI") or None,
        "Pronunciation lexicon",
        "A .csv or .pls (W3C) file, or a folder of them (lexicon.* for all voices, <voice>.* per voice), "
        "local or s3://; empty: none. Applied to what F5 speaks, never to the subtitles.",
        SOUND,
        type=_optional("string"),
    ),
    "sentence_pause": _ranged(
        "sentence_pause",
        0.3,
        "Pause between sentences (s)",
        "Silence between sentences; 0 packs sentences as F5 does.",
        SOUND,
        "number",
    ),
    "paragraph_pause": _ranged(
        "paragraph_pause", 0.8, "Pause between paragraphs (s)", "Silence at a blank line.", SOUND, "number"
    ),
    "speaker_pause": _ranged(
        "speaker_pause", 0.5, "Pause between voices (s)", "Silence where the voice changes.", SOUND, "number"
    ),
    "verify": _param(
        "asr",
        "Verify",
        "off: no checks; signal: silence, level, clipping, duration; asr: also transcribe and compare with the text "
        "(signal when no ASR backend is available, announced in the log). Empty: asr.",
        SOUND,
        type=_optional("string"),
        enum=["off", "signal", "asr", None],
        values_display={"off": "off", "signal": "signal", "asr": "asr", "null": "default (asr)"},
    ),
    "max_takes": _ranged(
        "max_takes",
        3,
        "Takes per chunk",
        "A failing chunk is synthesized again with its next seed, up to this many takes.",
        SOUND,
        "integer",
    ),
    "max_cer": _param(
        None,
        "Max character error rate",
        f"A take passes at or below it, {LIMITS['max_cer'].span()}; empty: the backend's calibrated threshold "
        "(pocketsphinx 0.10, whisper 0.15).",
        SOUND,
        type=_optional("number"),
        **LIMITS["max_cer"].schema(),
    ),
    "asr_model": _param(
        "pocketsphinx:en-us",
        "ASR model",
        "pocketsphinx:en-us (offline, English) or whisper:<size> (e.g. whisper:large-v3-turbo, via the model store); "
        "empty: pocketsphinx:en-us.",
        SOUND,
        type=_optional("string"),
        pattern="^(pocketsphinx:en-us|whisper:.+)$",
    ),
    "force": _param(
        False, "Force", "Synthesize again even when the output is published.", CONTROL, type=_optional("boolean")
    ),
    "strict": _param(
        False,
        "Strict",
        "Fail the run when any voice or script failed or a chunk was quarantined.",
        CONTROL,
        type=_optional("boolean"),
    ),
    "publish_unverified": _param(
        True,
        "Publish unverified",
        "Publish a script whose chunk never passed (marked needs_review); off: hold it back and list it in the report.",
        CONTROL,
        type=_optional("boolean"),
    ),
    "review": _param(
        False,
        "Review quarantined chunks",
        "Wait for a reviewer (Human-in-the-loop task review) on the published scripts' quarantined chunks: "
        "accept, re-take with a new seed or edited text, or drop; accept when nobody answers in time. "
        "Off: publish them as they are.",
        CONTROL,
        type=_optional("boolean"),
    ),
    "callback_url": _param(
        None,
        "Callback URL",
        "When the run ends, green or red, a signed JSON summary is POSTed here (http or https, among the callback "
        "URLs this deployment allows); empty: none.",
        CONTROL,
        type=_optional("string"),
        pattern=r"^https?://\S+$",
        maxLength=2048,
    ),
    "batch_frames": _ranged(
        "batch_frames", 16384, "Frames per forward pass", "GPU batch budget in padded mel frames.", CONTROL, "integer"
    ),
    "task_gpu_seconds": _ranged(
        "task_gpu_seconds",
        150,
        "GPU seconds per synthesize task",
        "Tasks are sized by estimated GPU time so model loading stays under 10 % of each task.",
        CONTROL,
        "number",
    ),
    "chunks_per_task": _ranged(
        "chunks_per_task",
        1024,
        "Most chunks per synthesize task",
        "A cap on top of the GPU-time sizing.",
        CONTROL,
        "integer",
    ),
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
        from voicebatch.runs import list_voice_names, task_groups

        with run_stage(params["aws_conn_id"], params["output_uri"], run_id, "list_voices") as stage:
            check_param_names(params, PARAMS)  # a misspelt --conf key fails here, naming the valid ones
            preflight(params, stage.open_uri)  # bad configuration fails here, once
            config = run_config(params)
            names = list_voice_names(config, stage.out, stage.staging, stage.open_uri)
            return task_groups(names, config.max_tasks)  # one voice a task, in groups past max_map_length

    @task(map_index_template="{{ voice_name }}")
    def ingest_voice(voices: list[str], params: dict | None = None, run_id: str | None = None) -> list[dict]:
        from voicebatch.runs import group_label, ingest_voices, staging_prefix

        get_current_context()["voice_name"] = group_label(voices)  # the mapped task's label in the UI
        with airflow_errors():  # a bad voice fails only its own task (its group's), at once
            open_uri = storage_opener(params["aws_conn_id"])
            out = open_uri(params["output_uri"])
            return ingest_voices(voices, run_config(params), out, staging_prefix(run_id), open_uri)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def plan(params: dict | None = None, run_id: str | None = None) -> list[str]:
        from voicebatch.runs import plan_run, voices_listed

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
        from voicebatch.runs import planned, publish_run

        from voicebatch_airflow import run_context

        context = get_current_context()
        with run_stage(params["aws_conn_id"], params["output_uri"], run_id, "publish") as stage:
            planned(stage.out, stage.staging)  # skipped, not failed, when plan (or list_voices) did not finish
            counts = publish_run(stage.out, stage.staging, run_config(params).settings, run_context(context))
        # Events only for what this run published, naming the run's own output location.
        extra = {"run_id": run_id, "output_uri": params["output_uri"]}
        if counts["published"]:
            audio = {k: counts[k] for k in ("published", "skipped", "failed")}
            context["outlet_events"][AUDIO].add(output_asset(params["output_uri"], "audio"), extra={**audio, **extra})
        if counts["voices_registered"]:
            voices = {k: counts[k] for k in ("voices_registered", "voices_reused", "voices_failed")}
            registry = output_asset(params["output_uri"], "voices")
            context["outlet_events"][VOICE_REGISTRY].add(registry, extra={**voices, **extra})
        return counts

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def final_check(run_id: str | None = None) -> None:
        """The run's verdict. Airflow decides a run's state from its leaves, and report succeeds
        whenever it could publish the report: this leaf runs only when no stage failed (skipped
        stages, such as no synthesis on a cached re-run, are fine) and is upstream_failed, so
        the run red, otherwise."""
        logging.getLogger(__name__).info("run %s: no stage failed", run_id)

    listed = list_voices()
    voices = ingest_voice.expand(voices=listed)
    planned = plan()
    synthesized = F5SynthesizeOperator.partial(
        task_id="synthesize",
        pool="f5_gpu",
        queue=GPU_QUEUE,
        output_uri="{{ params.output_uri }}",
        aws_conn_id="{{ params.aws_conn_id or '' }}",  # optional Params are None when left empty
        model="{{ params.model }}",
        batch_frames="{{ params.batch_frames or '' }}",
        map_index_template="{{ batch_label }}",  # the UI labels each task with the scripts it speaks
    ).expand(batch_key=planned)
    voices >> planned
    published = publish()
    reported = RunReportOperator(
        task_id="report",
        trigger_rule=TriggerRule.ALL_DONE,
        output_uri="{{ params.output_uri }}",
        aws_conn_id="{{ params.aws_conn_id or '' }}",
        strict="{{ params.strict }}",
    )
    synthesized >> published >> reported
    verdict = final_check()
    [listed, planned, synthesized, published, reported] >> verdict
    # A teardown: Airflow leaves it out of the run's state, so a failed callback changes nothing. After
    # the report too: final_check is decided (upstream_failed) as soon as a stage fails, the report later.
    notify = RunCallbackOperator(
        task_id="notify",
        callback_url="{{ params.callback_url or '' }}",
        output_uri="{{ params.output_uri }}",
        aws_conn_id="{{ params.aws_conn_id or '' }}",
        strict="{{ params.strict }}",
    )
    [reported, verdict] >> notify.as_teardown()
    # Quarantined chunks of published scripts wait for a reviewer (Human-in-the-loop), then are
    # re-taken; the verdict (and so the callback) waits for them, and a failed re-take turns the run red.
    from voicebatch_review import add_review

    add_review(reported, GPU_QUEUE, "f5_gpu") >> verdict


voice_batch()
