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
                              "outlets": [o.name for o in t.outlets]} for t in dag.tasks},
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
    assert set(tasks) == {"list_voices", "ingest_voice", "plan", "synthesize", "publish", "report", "final_check"}
    assert dag["catchup"] is False and dag["schedule"] == "@daily"
    assert tasks["synthesize"]["pool"] == "f5_gpu" and tasks["synthesize"]["queue"] == "gpu"
    assert tasks["synthesize"]["mapped"] and tasks["ingest_voice"]["mapped"]
    for name in ("plan", "publish", "report"):
        assert tasks[name]["trigger_rule"] == "all_done", name
    # The run's verdict: a leaf downstream of every stage that fails when any of them failed.
    assert tasks["final_check"]["trigger_rule"] == "none_failed" and tasks["final_check"]["leaf"]
    assert set(tasks["final_check"]["upstream"]) == {"list_voices", "plan", "synthesize", "publish", "report"}
    assert [n for n, t in tasks.items() if t["leaf"]] == ["final_check"]
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
            "force",
            "strict",
            "verify",
            "max_takes",
            "max_cer",
            "asr_model",
            "publish_unverified",
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
print(json.dumps(out))
"""

CONFS = {
    "defaults": {},
    "good": {"nfe_steps": 16, "speed": 1.5, "audio_format": "mp3", "loudness_lufs": None, "voices": ["nature"]},
    "epss": {"nfe_steps": 7, "task_gpu_seconds": 600},
    "good_verify": {"verify": "signal", "max_takes": 5, "max_cer": 0.2, "asr_model": "whisper:large-v3-turbo"},
    "nfe_too_high": {"nfe_steps": 100},
    "nfe_too_low": {"nfe_steps": 3},
    "task_gpu_seconds_zero": {"task_gpu_seconds": 0},
    "speed_too_fast": {"speed": 3.0},
    "unknown_format": {"audio_format": "ogg"},
    "loudness_too_loud": {"loudness_lufs": 0},
    "voices_not_a_list": {"voices": "nature"},
    "negative_seed": {"seed": -1},
    "unknown_verify_mode": {"verify": "maybe"},
    "no_takes": {"max_takes": 0},
    "cer_above_one": {"max_cer": 1.5},
    "unknown_asr_model": {"asr_model": "kaldi:en"},
    "pauses": {"sentence_pause": 0, "paragraph_pause": 1.2, "speaker_pause": 0.4, "lexicon_uri": "s3://b/lexicon.pls"},
    "no_lexicon": {"lexicon_uri": None},
    "pause_too_long": {"paragraph_pause": 25},
}


def test_params_validate_good_conf_and_reject_out_of_range(tmp_path: Path) -> None:
    env = airflow_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", PARAMS_CHECK, str(ROOT / "dags"), json.dumps(CONFS)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = json.loads(result.stdout.strip().splitlines()[-1])
    accepted = ("defaults", "good", "epss", "good_verify", "pauses", "no_lexicon")
    assert all(verdicts[k] == "ok" for k in accepted), verdicts
    rejected = {k: v for k, v in verdicts.items() if k not in accepted}
    assert all(v != "ok" for v in rejected.values()), rejected
    assert "nfe_steps" in verdicts["nfe_too_high"] and "audio_format" in verdicts["unknown_format"]
