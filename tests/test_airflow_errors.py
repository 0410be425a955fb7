"""Library errors in Airflow's terms: permanent ones fail at once, transient ones retry, an
unfinished upstream stage skips; unknown connections and missing buckets fail the first task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from airflow_helpers import ROOT, airflow_env

CHECK = r"""
import json
from botocore.exceptions import ClientError, ReadTimeoutError
from voicebatch.errors import InputError
from voicebatch.run.outcomes import StageNotReady
from voicebatch.synthesis.models import ModelError
from voicebatch_airflow import airflow_errors, output_allowed, preflight, s3_client

def outcome(error):
    try:
        with airflow_errors():
            raise error
    except BaseException as e:
        return [type(e).__name__, str(e)]

def client_error(code, message, **more):
    return ClientError({"Error": {"Code": code, "Message": message, **more}}, "PutObject")

cases = {
    "model": ModelError("model '/x': no such directory"),
    "input": InputError("a.txt", "bad speed", where="line 2"),
    "upstream": StageNotReady("plan did not finish: nothing to publish"),
    "throttled": client_error("SlowDown", "Please reduce your request rate."),
    "server": client_error("InternalError", "We encountered an internal error."),
    "timeout": ReadTimeoutError(endpoint_url="http://s3"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "no_bucket": client_error("NoSuchBucket", "The specified bucket does not exist", BucketName="nob"),
    "denied": client_error("AccessDenied", "Access Denied"),
    "bug": KeyError("x"),
}
found = {name: outcome(error) for name, error in cases.items()}
try:
    s3_client("no_such_connection")
    found["unknown_connection"] = None
except BaseException as e:
    found["unknown_connection"] = [type(e).__name__, str(e)]

class Missing:
    uri, bucket = "s3://nob/out", "nob"
    class client:
        @staticmethod
        def head_bucket(Bucket):
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")

params = {"voices_uri": "in/voices", "scripts_uri": "in/scripts", "output_uri": "s3://nob/out",
          "aws_conn_id": "c", "model": "m", "nfe_steps": 32, "cfg_strength": 2.0, "speed": 1.0, "seed": 0,
          "batch_frames": 16384, "task_gpu_seconds": 150, "chunks_per_task": 64, "audio_format": "wav",
          "loudness_lufs": -16.0, "voices": [], "force": False, "strict": False}
for name, changes in {"missing_bucket": {}, "overlap": {"output_uri": "in/voices/out"}}.items():
    try:
        preflight({**params, **changes}, lambda uri: Missing())
        found[name] = None
    except InputError as e:
        found[name] = outcome(e)
def stage_outcome(first, listed):
    try:
        with airflow_errors():
            output_allowed("s3://elsewhere/out", first=first, listed=lambda: listed)
        return None
    except BaseException as e:
        return [type(e).__name__, str(e)]

# A refused output: the first stage fails; a later one skips when the listing was refused too,
# and fails when the listing went through (a worker with another allow-list than the first's).
found["refused_first"] = stage_outcome(True, False)
found["refused_after_refusal"] = stage_outcome(False, False)
found["refused_after_listing"] = stage_outcome(False, True)
print(json.dumps(found))
"""


def test_errors_are_translated_for_airflow(tmp_path: Path) -> None:
    # The allow-list, as a deployer sets it: the locations the Params below name.
    allowed = {
        "VOICEBATCH_ALLOWED_INPUTS": str(ROOT / "in"),
        "VOICEBATCH_ALLOWED_OUTPUTS": f"s3://nob,{ROOT}/in/voices",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHECK], env=airflow_env(tmp_path, **allowed), capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    fail, skip = "AirflowFailException", "AirflowSkipException"
    assert found["model"] == [fail, "model '/x': no such directory"]
    assert found["input"] == [fail, "a.txt: line 2: bad speed"]
    assert found["upstream"] == [skip, "plan did not finish: nothing to publish"]
    # Transient: left as they are, so Airflow retries them with backoff.
    for name, kind in {
        "throttled": "ClientError",
        "server": "ClientError",
        "timeout": "ReadTimeoutError",
        "reset": "ConnectionResetError",
        "bug": "KeyError",
    }.items():
        assert found[name][0] == kind, name
    assert found["no_bucket"] == [fail, "NoSuchBucket: The specified bucket does not exist (BucketName nob, PutObject)"]
    assert found["denied"] == [fail, "AccessDenied: Access Denied (PutObject)"]
    assert found["unknown_connection"][0] == fail
    assert "Airflow connection 'no_such_connection' is not defined" in found["unknown_connection"][1]
    assert found["missing_bucket"] == [fail, "output_uri: s3://nob/out: bucket 'nob' does not exist"]
    assert found["overlap"][0] == fail and "overlaps voices_uri" in found["overlap"][1]
    refused = "output_uri: s3://elsewhere/out is outside the locations this deployment allows"
    assert found["refused_first"][0] == fail and found["refused_first"][1].startswith(refused)
    assert found["refused_after_refusal"][0] == skip and refused in found["refused_after_refusal"][1]
    inconsistent = found["refused_after_listing"]
    assert inconsistent[0] == fail and inconsistent[1].startswith(refused), "green with nothing published otherwise"
    assert "one allow-list for all" in inconsistent[1] and "\n" not in inconsistent[1]
