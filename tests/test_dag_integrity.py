"""Every DAG imports cleanly and fast, is tagged and retried, and its Params guard the form."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_helpers import ROOT, airflow_env

CHECK = r"""
import json, sys, time
t0 = time.perf_counter()
from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
parse = time.perf_counter() - t0
heavy = [m for m in ("torch", "f5_tts", "librosa", "pandas", "soundfile", "matplotlib") if m in sys.modules]
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tags": sorted(dag.tags), "doc": bool(dag.doc_md), "schedule": str(dag.schedule),
        "catchup": dag.catchup, "params": sorted(dag.params.keys()),
        "tasks": {t.task_id: {"retries": t.retries, "backoff": t.retry_exponential_backoff,
                              "max_delay": str(t.max_retry_delay), "pool": t.pool, "queue": t.queue,
                              "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule),
                              "mapped": hasattr(t, "expand_input"),
                              "leaf": not t.downstream_task_ids, "upstream": sorted(t.upstream_task_ids),
                              "teardown": t.is_teardown, "fails_run": t.on_failure_fail_dagrun,
                              "outlets": [o.name for o in t.outlets],
                              "hitl": {"options": t.options, "defaults": t.defaults,
                                       "timeout_s": t.response_timeout.total_seconds(),
                                       "params": sorted(t.params.keys())} if hasattr(t, "options") else None}
                  for t in dag.tasks},
    }
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "heavy": heavy, "dags": dags}))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = airflow_env(tmp_path_factory.mktemp("airflow"))
    result = subprocess.run([sys.executable, "-c", CHECK, str(ROOT / "dags")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_import_errors_and_no_heavy_module_at_parse_time(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["heavy"] == [], "DAG files must not import heavy modules at parse time"
    assert "voice_batch" in parsed["dags"]


def test_every_dag_is_documented_tagged_and_retried(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert dag["doc"], f"{dag_id} has no doc_md"
        for task_id, t in dag["tasks"].items():
            assert t["retries"] >= 2, f"{dag_id}.{task_id} retries {t['retries']}"
            assert t["backoff"] and t["max_delay"] != "None", f"{dag_id}.{task_id} needs backoff and a max delay"


def test_voice_batch_structure(parsed: dict) -> None:
    dag = parsed["dags"]["voice_batch"]
    tasks = dag["tasks"]
    assert set(tasks) == {
        "list_voices",
        "ingest_voice",
        "plan",
        "synthesize",
        "publish",
        "report",
        "final_check",
        "notify",
        *("review_list", "review", "apply_review"),
    }
    assert dag["catchup"] is False and dag["schedule"] == "@daily"
    assert tasks["synthesize"]["pool"] == "f5_gpu" and tasks["synthesize"]["queue"] == "gpu"
    assert tasks["synthesize"]["mapped"] and tasks["ingest_voice"]["mapped"]
    for name in ("plan", "publish", "report"):
        assert tasks[name]["trigger_rule"] == "all_done", name
    # The run's verdict: downstream of every stage, it fails when any of them failed.
    assert tasks["final_check"]["trigger_rule"] == "none_failed"
    stages = {"list_voices", "plan", "synthesize", "publish", "report", "apply_review"}
    assert set(tasks["final_check"]["upstream"]) == stages
    # The review of quarantined chunks: after the report, one Human-in-the-loop task, accept on timeout,
    # then the re-takes on the GPU queue.
    assert tasks["review_list"]["upstream"] == ["report"] and tasks["review"]["upstream"] == ["review_list"]
    assert tasks["apply_review"]["upstream"] == ["review", "review_list"]
    assert (tasks["apply_review"]["pool"], tasks["apply_review"]["queue"]) == ("f5_gpu", "gpu")
    review = tasks["review"]["hitl"]
    assert review["options"][0] == "accept" and review["defaults"] == ["accept"] and len(review["options"]) == 4
    assert review["timeout_s"] == 24 * 3600 and review["params"] == ["chunks", "text"]
    # The callback comes last, as a teardown that Airflow leaves out of the run's state: final_check
    # stays the leaf that decides it; after the report, which it reads.
    assert [n for n, t in tasks.items() if t["leaf"]] == ["notify"]
    assert tasks["notify"]["upstream"] == ["final_check", "report"]
    assert tasks["notify"]["teardown"] and not tasks["notify"]["fails_run"]
    assert [n for n, t in tasks.items() if t["teardown"]] == ["notify"]
    assert sorted(tasks["publish"]["outlets"]) == ["voicebatch_audio", "voicebatch_voice_registry"]
    assert dag["params"] == sorted(
        [
            "voices_uri",
            "scripts_uri",
            "output_uri",
            "aws_conn_id",
            "model",
            "nfe_steps",
            "cfg_strength",
            "speed",
            "seed",
            "batch_frames",
            "task_gpu_seconds",
            "chunks_per_task",
            "audio_format",
            "loudness_lufs",
            "lexicon_uri",
            "sentence_pause",
            "paragraph_pause",
            "speaker_pause",
            "voices",
            "script_files",
            "force",
            "strict",
            "verify",
            "max_takes",
            "max_cer",
            "asr_model",
            "publish_unverified",
            "review",
            "callback_url",
        ]
    )


PARAMS_CHECK = r"""
import copy, json, sys
from airflow.models.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
dag = DagBag(sys.argv[1]).dags["voice_batch"]
out = {}
for name, conf in json.loads(sys.argv[2]).items():
    params = copy.deepcopy(dag.params)
    try:
        params.update(conf)  # what a trigger's conf does to the DAG's Params (validates each)
        params.validate()
        out[name] = "ok"
    except ParamValidationError as e:
        out[name] = str(e).splitlines()[0]
schemas = {}
for k in dag.params.keys():
    schemas[k] = {**dag.params.get_param(k).schema, "help": dag.params.get_param(k).description}
defaults = {k: dag.params.get_param(k).value for k in dag.params.keys()}
print(json.dumps({"verdicts": out, "schemas": schemas, "defaults": defaults, "description": dag.description}))
"""

CONFS = {
    "defaults": {},
    "good": {"nfe_steps": 16, "speed": 1.5, "audio_format": "mp3", "loudness_lufs": None, "voices": ["nature"]},
    "epss": {"nfe_steps": 7, "task_gpu_seconds": 600},
    "good_verify": {"verify": "signal", "max_takes": 5, "max_cer": 0.2, "asr_model": "whisper:large-v3-turbo"},
    # Every optional field left empty in the form arrives as null: the run uses the default.
    "all_optional_empty": {
        k: None
        for k in [
            "aws_conn_id",
            "voices",
            "script_files",
            "nfe_steps",
            "cfg_strength",
            "seed",
            "speed",
            "audio_format",
            "loudness_lufs",
            "verify",
            "max_takes",
            "max_cer",
            "asr_model",
            "force",
            "strict",
            "publish_unverified",
            "review",
            "batch_frames",
            "task_gpu_seconds",
            "chunks_per_task",
            "lexicon_uri",
            "sentence_pause",
            "paragraph_pause",
            "speaker_pause",
            "callback_url",
        ]
    },
    "nfe_too_high": {"nfe_steps": 100},
    "nfe_too_low": {"nfe_steps": 3},
    "task_gpu_seconds_zero": {"task_gpu_seconds": 0},
    "speed_too_fast": {"speed": 3.0},
    "cfg_too_strong": {"cfg_strength": 5.5},
    "unknown_format": {"audio_format": "ogg"},
    "loudness_too_loud": {"loudness_lufs": 0},
    "voices_not_a_list": {"voices": "nature"},
    "script_files_not_a_list": {"script_files": "a.txt"},
    "negative_seed": {"seed": -1},
    "unknown_verify_mode": {"verify": "maybe"},
    "no_takes": {"max_takes": 0},
    "cer_above_one": {"max_cer": 1.5},
    "unknown_asr_model": {"asr_model": "kaldi:en"},
    "empty_output": {"output_uri": ""},
    "no_model": {"model": None},
    "pauses": {"sentence_pause": 0, "paragraph_pause": 1.2, "speaker_pause": 0.4, "lexicon_uri": "s3://b/lexicon.pls"},
    "no_lexicon": {"lexicon_uri": None},
    "pause_too_long": {"paragraph_pause": 25},
    "negative_pause": {"speaker_pause": -0.1},
    "callback": {"callback_url": "https://hooks.example.com/voicebatch?token=abc"},
    # Only http(s): where it may go is the deployment's allow-list, checked when the run ends.
    "callback_not_http": {"callback_url": "file:///etc/passwd"},
    "callback_with_space": {"callback_url": "https://hooks.example.com/a b"},
}
GOOD = ("defaults", "good", "epss", "good_verify", "all_optional_empty", "pauses", "no_lexicon", "callback")


@pytest.fixture(scope="module")
def params_check(tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = airflow_env(tmp_path_factory.mktemp("params"))
    result = subprocess.run(
        [sys.executable, "-c", PARAMS_CHECK, str(ROOT / "dags"), json.dumps(CONFS)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_params_validate_good_conf_and_reject_out_of_range(params_check: dict) -> None:
    verdicts = params_check["verdicts"]
    assert {k: verdicts[k] for k in GOOD} == dict.fromkeys(GOOD, "ok")
    rejected = {k: v for k, v in verdicts.items() if k not in GOOD}
    assert all(v != "ok" for v in rejected.values()), rejected
    # The message names the Param, the value and the bound (what the form shows), not a clamp.
    assert verdicts["nfe_too_high"] == "Invalid input for param nfe_steps: 100 is greater than the maximum of 64"
    assert verdicts["speed_too_fast"] == "Invalid input for param speed: 3.0 is greater than the maximum of 2.0"
    assert "audio_format" in verdicts["unknown_format"]
    assert (
        verdicts["pause_too_long"] == "Invalid input for param paragraph_pause: 25 is greater than the maximum of 20.0"
    )


def test_params_form_sections_and_only_required_fields_required(params_check: dict) -> None:
    schemas = params_check["schemas"]
    sections = {name: schema.get("section") for name, schema in schemas.items()}
    assert set(sections.values()) == {"Inputs", "Model", "Sound", "Run control"}, sections
    # Airflow's form marks a field required unless its type allows null.
    required = {n for n, s in schemas.items() if not (isinstance(s["type"], list) and "null" in s["type"])}
    assert required == {"voices_uri", "scripts_uri", "output_uri", "model"}
    # No top-level minimum/maximum: the form's number input would clamp to them (NFE 100 -> 64).
    assert not [n for n, s in schemas.items() if "minimum" in s or "maximum" in s]
    assert all(s.get("title") and s.get("help") for s in schemas.values())
    assert params_check["description"], "the DAG has a description"


def test_params_ranges_are_the_clis(params_check: dict) -> None:
    """One definition for the form and the CLI: every ranged Param's bounds are the settings catalogue's."""
    from voicebatch.settings import LIMITS

    ranged = {n: s["allOf"][0] for n, s in params_check["schemas"].items() if "allOf" in s}
    assert set(ranged) == set(LIMITS) & set(params_check["schemas"])
    for name, bounds in ranged.items():
        limit = LIMITS[name]
        assert (bounds.get("minimum"), bounds.get("maximum")) == (limit.low, limit.high), name


def test_params_defaults_and_help_are_the_catalogues(params_check: dict) -> None:
    """The form is generated from the settings catalogue: no Param copies a library default."""
    from voicebatch.run.config import RunConfig
    from voicebatch.run.pipeline import RunSettings
    from voicebatch.settings import CATALOGUE

    defaults = params_check["defaults"]
    cli_only = {n for n, s in CATALOGUE.items() if not s.param}
    assert list(defaults) == [n for n in CATALOGUE if n not in cli_only]  # the catalogue's order is the form's
    # The library's dataclasses agree with the form: a run with every Param at its default is the default run.
    config, settings = RunConfig("", ""), RunSettings()
    library = {
        "nfe_steps": settings.params.nfe_steps,
        "cfg_strength": settings.params.cfg_strength,
        "seed": settings.seed,
        "speed": settings.speed,
        "audio_format": settings.options.audio_format,
        "loudness_lufs": settings.options.loudness_lufs,
        "sentence_pause": settings.pauses.sentence,
        "paragraph_pause": settings.pauses.paragraph,
        "speaker_pause": settings.pauses.speaker,
        "verify": settings.verify.mode,
        "max_takes": settings.verify.max_takes,
        "asr_model": settings.verify.asr_model,
        "publish_unverified": settings.verify.publish_unverified,
        "batch_frames": config.batch_frames,
        "task_gpu_seconds": config.task_gpu_seconds,
        "chunks_per_task": config.chunks_per_task,
        "force": config.force,
    }
    assert {n: defaults[n] for n in library} == library
    assert {n: params_check["schemas"][n]["help"] for n in library} == {n: CATALOGUE[n].description() for n in library}


CONTROL_IMAGE_CHECK = r"""
import json, sys
sys.modules["voicebatch"] = None  # the control image: no voicebatch library
sys.path.insert(0, sys.argv[2])  # ... but the one file the Dockerfile copies beside the plugins
from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}))
"""


def test_the_dag_parses_without_the_library_as_in_the_control_image(tmp_path: Path) -> None:
    import shutil

    copied = tmp_path / "copied"
    copied.mkdir()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY --chown=50000:0 src/voicebatch/settings.py /opt/airflow/plugins/voicebatch_settings.py" in dockerfile
    shutil.copy(ROOT / "src" / "voicebatch" / "settings.py", copied / "voicebatch_settings.py")
    env = airflow_env(tmp_path / "airflow")
    result = subprocess.run(
        [sys.executable, "-c", CONTROL_IMAGE_CHECK, str(ROOT / "dags"), str(copied)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"errors": {}, "dags": ["voice_batch"]}


ARRIVALS_CHECK = r"""
import json, sys
if sys.argv[2] == "control":
    sys.modules["voicebatch"] = None  # the control image: no voicebatch library
    sys.path.insert(0, sys.argv[3])
from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}
dag = bag.dags.get("voice_batch_on_arrival")
if dag is not None:
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    out["asset"] = asset.name
    out["trigger"] = watcher.trigger.serialize()
    out["tasks"] = {t.task_id: {"retries": t.retries, "upstream": sorted(t.upstream_task_ids)} for t in dag.tasks}
    out["params"] = sorted(dag.params.keys())
print(json.dumps(out))
"""


def arrivals_parse(tmp_path: Path, how: str, **extra: str) -> dict:
    import shutil

    copied = tmp_path / "copied"
    copied.mkdir(exist_ok=True)
    shutil.copy(ROOT / "src" / "voicebatch" / "settings.py", copied / "voicebatch_settings.py")
    env = airflow_env(tmp_path / "airflow", **extra)
    result = subprocess.run(
        [sys.executable, "-c", ARRIVALS_CHECK, str(ROOT / "dags"), how, str(copied)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("how", ["worker", "control"])
def test_the_arrivals_dag_watches_the_deployments_queue(tmp_path: Path, how: str) -> None:
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/scripts-arrived"
    found = arrivals_parse(tmp_path, how, VOICEBATCH_ARRIVALS_QUEUE_URL=queue, VOICEBATCH_AWS_CONN_ID="media_s3")
    assert found["errors"] == {} and found["dags"] == ["voice_batch", "voice_batch_on_arrival"]
    assert found["asset"] == "voicebatch_script_arrivals"
    path, kwargs = found["trigger"]
    assert path == "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"
    assert kwargs["sqs_queue"] == queue and kwargs["aws_conn_id"] == "media_s3", "the runs' connection by default"
    assert kwargs["delete_message_on_reception"] and kwargs["wait_time_seconds"] == 20
    assert found["tasks"] == {
        "select_scripts": {"retries": 2, "upstream": []},
        "start_voice_batch": {"retries": 2, "upstream": ["select_scripts"]},
    }
    assert found["params"] == [], "nothing a run's conf could change: the queue is the deployment's"
    own = arrivals_parse(
        tmp_path, how, VOICEBATCH_ARRIVALS_QUEUE_URL=queue, VOICEBATCH_ARRIVALS_AWS_CONN_ID="queue_reader"
    )
    assert own["trigger"][1]["aws_conn_id"] == "queue_reader"


def test_without_a_queue_there_is_no_arrivals_dag(tmp_path: Path) -> None:
    assert arrivals_parse(tmp_path, "worker")["dags"] == ["voice_batch"]
