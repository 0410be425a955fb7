"""`make demo`: the whole pipeline once, on the demo voices and scripts, with Airflow.

1. Model: ``$VOICEBATCH_MODEL`` if set; else the real F5TTS_v1_Base when it is cached or the
   Hugging Face hub can be reached; else the tiny random model, announced loudly (its audio
   is noise, not a voice).
2. S3: the connection named by ``$VOICEBATCH_DEMO_CONN`` with ``$VOICEBATCH_DEMO_OUTPUT``
   (s3://bucket/prefix) when set; else a local S3 endpoint (moto's server on a free
   127.0.0.1 port) and a connection to it, both gone when the demo ends.
3. Airflow: ``AIRFLOW_HOME`` inside the repository (SQLite), migrated, pools created, then
   ``airflow dags test voice_batch`` with the demo configuration.
4. Prints the model, the published keys and where the report is; copies everything
   published to ``output/demo/`` (with a report whose links work offline).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow_env import ROOT, VENV_BIN, airflow_env  # deploy/ is on sys.path: this file runs as a script
from local_model import banner

AIRFLOW_HOME = ROOT / "airflow_home"
LOCAL_COPY = ROOT / "output" / "demo"
DEMO_CONN = "voicebatch_demo_s3"
BUCKET = "voicebatch-demo"


def choose_model() -> tuple[str, bool]:
    """(model spec, random weights?)"""
    from voicebatch.synthesis.model_store import ModelStore
    from voicebatch.synthesis.models import ModelError

    from local_model import announce_tiny, tiny_model

    if spec := os.environ.get("VOICEBATCH_MODEL"):
        return spec, False
    try:
        files = ModelStore().resolve("F5TTS_v1_Base")
        return str(files.directory), files.random_weights
    except ModelError as e:
        reason = " ".join(str(e).split())[:300]
    announce_tiny(reason, "The demo")
    return str(tiny_model(AIRFLOW_HOME)), True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("moto server did not start")


def main() -> int:
    AIRFLOW_HOME.mkdir(exist_ok=True)
    model, random_weights = choose_model()
    print(f"model: {model}{'  (RANDOM WEIGHTS: noise, not a voice)' if random_weights else ''}", flush=True)
    moto = None
    conn_id = os.environ.get("VOICEBATCH_DEMO_CONN")
    output = os.environ.get("VOICEBATCH_DEMO_OUTPUT", f"s3://{BUCKET}/output")
    # The allow-list (docs/security.md): the demo's own output location; its inputs (include/)
    # and models (airflow_home/models, or the model cache) are the project's defaults.
    extra: dict[str, str] = {"VOICEBATCH_ALLOWED_OUTPUTS": os.environ.get("VOICEBATCH_ALLOWED_OUTPUTS") or output}
    if not conn_id:
        moto, endpoint = start_moto()
        conn_id = DEMO_CONN
        # Demo credentials for the throw-away local endpoint; real ones belong in a connection.
        connection = {
            "conn_type": "aws",
            "login": "demo",
            "password": "demo-secret",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        extra[f"AIRFLOW_CONN_{DEMO_CONN.upper()}"] = json.dumps(connection)
        print(f"S3: local endpoint {endpoint} (moto server, pid {moto.pid}), bucket {BUCKET}", flush=True)
    env = airflow_env(AIRFLOW_HOME, **extra)
    try:
        if moto is not None:
            client = _client(endpoint)
            client.create_bucket(Bucket=BUCKET)
        subprocess.run(["bash", str(ROOT / "deploy" / "airflow-init.sh")], env=env, check=True)
        conf = {"output_uri": output, "aws_conn_id": conn_id, "model": model}
        if random_weights:
            # Noise from random weights fails every content check, and the ASR would spend most of
            # the run saying so: the report's QA section shows the signal checks instead.
            conf["verify"] = "signal"
            print("verify: signal (random weights speak noise, so the ASR check is skipped: a real model gets asr)")
            # Noise is noise at any step count; 8 steps instead of 32 cut the CPU run by about three quarters.
            conf["nfe_steps"] = 8
            print("nfe_steps: 8 (random weights; a real model gets the default, 32)")
        print(f"running: airflow dags test voice_batch --conf '{json.dumps(conf)}'", flush=True)
        log_path = AIRFLOW_HOME / "demo-dags-test.log"
        with log_path.open("w") as log:
            result = subprocess.run(
                [str(VENV_BIN / "airflow"), "dags", "test", "voice_batch", "--conf", json.dumps(conf)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            print(log_path.read_text()[-6000:])
            print(f"demo: airflow dags test failed (full log: {log_path})")
            return 1
        if moto is not None:
            _show_and_copy(client, output, random_weights)
        print(f"\nAirflow log of the run: {log_path}")
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)
    print(f"\nmodel used: {model}")
    if random_weights:
        print(banner("Reminder: TINY RANDOM MODEL. Every audio file of this demo is noise, not a voice."))
    return 0


def _client(endpoint: str) -> Any:  # a boto3 S3 client
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="demo",
        aws_secret_access_key="demo-secret",
        region_name="us-east-1",
    )


def _show_and_copy(client: Any, output: str, random_weights: bool) -> None:
    from voicebatch.locations.storage import open_storage

    s3 = open_storage(output, client=client)
    keys = s3.list("")
    print(f"\npublished under {output}/ ({len(keys)} objects):")
    for key in keys:
        if not key.startswith("voices/"):
            print(f"  {key}")
    local = open_storage(str(LOCAL_COPY))
    for key in keys:
        local.put_bytes(key, s3.get_bytes(key))
    (report_key,) = [k for k in keys if k.endswith("report.html")]
    print(f"\nreport in S3: {output}/{report_key}")
    print(f"local copy of everything published: {LOCAL_COPY}/")
    # report.html links every file relative to its own place, so the copy works offline as it is.
    print(f"open the report: {Path(local.uri_for(report_key)).as_uri()}")
    if random_weights:
        print("(the report says so too: 'random weights: noise, not a voice')")


if __name__ == "__main__":
    sys.exit(main())
