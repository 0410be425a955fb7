"""The compose stack, built from this repository and started with docker compose (`make compose-test`).

The stand-ins and what they leave unproven: docs/deploy/compose-test.md. Every run is triggered
through the REST API with the login of the generated `.env`, runs the tiny random model from
the stack's S3 models prefix, and `synthesize` runs on a Celery worker consuming queue `gpu` on
the CPU. Tests run in file order (`-p no:randomly`): each sets up the workers it needs.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from stack import HERE, ROOT, Network, Project, gather, set_env_values, wait_until

from conftest import BUCKET, DRILL, STATE, Figures, _objects, container_ids, docker, output_uri, timed_run

GPU_WORKER = "airflow-gpu-worker"


def published(s3, root: str) -> dict[str, dict]:
    """script id -> its current output: hash, manifest and the bytes of every other file."""
    outputs = {}
    for obj in _objects(s3, f"{root}/audio/"):
        key = obj["Key"]
        if not key.endswith("/latest.json"):
            continue
        script_id = key.split("/")[-2]
        latest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        prefix = f"{root}/audio/{script_id}/{latest['output_hash']}/"
        files = {
            o["Key"][len(prefix) :]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            for o in _objects(s3, prefix)
        }
        manifest = json.loads(files.pop("manifest.json"))
        outputs[script_id] = {"hash": latest["output_hash"], "manifest": manifest, "files": files}
    return outputs


def synthesize_tis(tis: list[dict]) -> list[dict]:
    return [t for t in tis if t["task_id"] == "synthesize"]


def test_voice_batch_runs_green_through_the_rest_api(stack: dict, main_run: dict) -> None:
    tis = main_run["task_instances"]
    table = "\n".join(
        f"{t['task_id']:>14} {t['map_index']:>3} {t['state']:>8} {t['queue']:>8} {t['hostname']}" for t in tis
    )
    print(f"\nmain run {main_run['run_id']}:\n{table}")
    assert main_run["state"] == "success", table
    synth = synthesize_tis(tis)
    assert len(synth) >= 2, table
    gpu_host = docker("inspect", "-f", "{{.Config.Hostname}}", stack["project"].container(GPU_WORKER)).strip()
    assert all(t["state"] == "success" and t["queue"] == "gpu" and t["hostname"] == gpu_host for t in synth), table
    assert all(t["queue"] == "default" for t in tis if t["task_id"] != "synthesize"), table
    outputs = published(stack["s3"], "output/main")
    scripts = {p.stem for p in (ROOT / "include" / "scripts").iterdir()}
    assert set(outputs) >= {"fable", "welcome"} and len(outputs) >= len(scripts), sorted(outputs)
    for script_id, output in outputs.items():
        names = set(output["files"])
        assert {f"{script_id}.wav", f"{script_id}.srt", f"{script_id}.vtt", f"{script_id}.csv"} <= names, names
        assert output["manifest"]["model"]["random_weights"] is True  # the tiny model, from the S3 models prefix
        assert output["manifest"]["run"]["run_id"] == main_run["run_id"]


def test_the_run_report_through_the_api_servers_voicebatch_app(stack: dict, main_run: dict) -> None:
    airflow, s3 = stack["airflow"], stack["s3"]
    run_id = main_run["run_id"]
    status, page, url = airflow.fetch(f"/voicebatch/runs/voice_batch/{run_id}/")
    assert status == 200 and url.endswith(f"/files/runs/voice_batch/{run_id}/report.html"), url
    stored = s3.get_object(Bucket=BUCKET, Key=f"output/main/runs/voice_batch/{run_id}/report.html")["Body"].read()
    assert page == stored
    report = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"output/main/runs/voice_batch/{run_id}/report.json")["Body"].read()
    )
    assert report["totals"]["published"] >= 2, report["totals"]
    # Without the token the app refuses.
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=30)
        raise AssertionError("the report was served without a token")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code


def test_without_a_gpu_worker_the_run_fails_within_minutes_naming_it(
    stack: dict, figures: Figures, main_run: dict
) -> None:
    """docker compose up without --profile gpu (and no GPU host): nothing consumes queue gpu."""
    project, s3 = stack["project"], stack["s3"]
    project.compose("stop", GPU_WORKER)
    start = time.monotonic()
    found = timed_run(stack, figures, "noworker")
    elapsed = time.monotonic() - start
    assert found["state"] == "failed"
    assert elapsed < 300, f"the run took {elapsed:.0f} s to fail"
    states = {(t["task_id"], t["state"]) for t in stack["airflow"].task_instances("voice_batch", found["run_id"])}
    assert ("plan", "failed") in states and ("synthesize", "success") not in states, states
    report = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"output/noworker/runs/voice_batch/{found['run_id']}/report.json")[
            "Body"
        ].read()
    )
    line = "no Celery worker consumes queue 'gpu'"
    assert line in json.dumps(report), json.dumps(report)[:3000]
    logs = [o["Key"] for o in _objects(s3, f"logs/dag_id=voice_batch/run_id={found['run_id']}/task_id=plan/")]
    text = "".join(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode() for k in logs)
    assert line in text and "start the GPU worker" in text, text[-3000:]


def test_a_second_host_runs_synthesize_through_the_published_ports(
    stack: dict, figures: Figures, drill_run: dict
) -> None:
    """docker-compose.worker.yaml as its own compose project on its own network (another machine's
    stand-in): it reaches PostgreSQL, Redis, the execution API and S3 only through the ports the
    main stack publishes on VOICEBATCH_MAIN_HOST."""
    main, ident = stack["project"], stack["ident"]
    main.compose("stop", GPU_WORKER)
    network = Network.create(f"vbct{ident}-host2")
    env_file = STATE / "host2.env"
    shutil.copyfile(main.env_file, env_file)  # the documented step: copy the main host's .env
    worker_address = network.gateway
    set_env_values(
        env_file,
        {
            "VOICEBATCH_MAIN_HOST": stack["gateway"],
            "VOICEBATCH_WORKER_ADDRESS": worker_address,
            "WORKER_S3_ENDPOINT_URL": f"http://{stack['gateway']}:9000",
        },
    )
    host2 = Project(
        name=f"vbct{ident}-host2",
        files=[ROOT / "docker-compose.worker.yaml", HERE / "docker-compose.worker.standins.yaml"],
        env_file=env_file,
        network=network,
        logs=STATE / "logs",
    )
    try:
        start = time.monotonic()
        host2.compose("up", "-d")
        figures.set("second_host_time_to_healthy_s", round(time.monotonic() - start + host2.wait_healthy()))
        cid = host2.container(GPU_WORKER)
        networks = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid))
        assert list(networks) == [network.name], networks  # not on the main stack's network
        found = timed_run(stack, figures, "host2")
        tis = stack["airflow"].task_instances("voice_batch", found["run_id"])
        synth = synthesize_tis(tis)
        assert found["state"] == "success", tis
        # The name the worker records (VOICEBATCH_WORKER_ADDRESS): this host ran every synthesize task.
        assert synth and all(t["hostname"] == worker_address and t["state"] == "success" for t in synth), synth
        assert "synthesize" in host2.compose("logs", "--no-color", GPU_WORKER)
        assert _same_outputs(published(stack["s3"], "output/host2"), published(stack["s3"], "output/drill"))
    finally:
        host2.down()
        network.remove()


def test_killing_the_gpu_worker_mid_synthesize_loses_and_repeats_no_chunk(
    stack: dict, figures: Figures, drill_run: dict
) -> None:
    project, airflow, s3 = stack["project"], stack["airflow"], stack["s3"]
    project.compose("start", GPU_WORKER)
    wait_until("the gpu worker to be healthy", lambda: project.health().get(GPU_WORKER) == "healthy", 300)
    run_id = f"kill-{stack['ident']}"
    start = time.monotonic()
    airflow.trigger("voice_batch", run_id, {**DRILL, "output_uri": output_uri("kill")})

    def running_synthesize() -> dict | None:
        running = [t for t in synthesize_tis(airflow.task_instances("voice_batch", run_id)) if t["state"] == "running"]
        return running[0] if running else None

    victim = wait_until("a synthesize task to be running", running_synthesize, 600)
    cid = project.container(GPU_WORKER)
    docker("kill", cid)  # SIGKILL: no warm shutdown, the task dies mid-batch
    killed_at = time.monotonic()
    docker("start", cid)  # restart: always may already have done it
    found = airflow.wait_finished("voice_batch", run_id)
    figures.set("run_kill_s", round(time.monotonic() - start))
    figures.set("kill_recovery_s", round(time.monotonic() - killed_at))
    tis = airflow.task_instances("voice_batch", run_id)
    assert found["state"] == "success", tis
    # The worker runs one task at a time: the one running at the kill (the one seen running, or
    # the next if that one had just finished) ran again.
    retried = [t for t in synthesize_tis(tis) if t["try_number"] >= 2]
    assert retried, f"no synthesize task was retried after the kill (seen running: {victim['map_index']}): {tis}"
    figures.set("kill_retried_tasks", [t["map_index"] for t in retried])
    kill = published(s3, "output/kill")
    single = published(s3, "output/drill")
    check_chunks_complete_and_unique(kill, single)
    assert _same_outputs(kill, single)
    # One output per script: nothing half-published beside it.
    for script_id in kill:
        hashes = {
            o["Key"].split("/")[4] for o in _objects(s3, f"output/kill/audio/{script_id}/") if o["Key"].count("/") > 4
        }
        assert hashes == {kill[script_id]["hash"]}, hashes


def check_chunks_complete_and_unique(outputs: dict[str, dict], reference: dict[str, dict]) -> None:
    """Every chunk of every script once, in order, as the scripts split (`voicebatch scripts check`
    on this machine), each placed after the one before it in the audio."""
    expected = scripts_chunks()
    assert set(outputs) == set(expected) == set(reference), (sorted(outputs), sorted(expected))
    for script_id, output in outputs.items():
        chunks = output["manifest"]["chunks"]
        assert [c["index"] for c in chunks] == list(range(len(expected[script_id]))), script_id
        assert [c["text"] for c in chunks] == expected[script_id], script_id
        assert all(c["start"] < c["end"] for c in chunks), script_id
        assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(chunks)), f"{script_id}: chunks overlap"
        assert chunks[-1]["end"] <= output["manifest"]["durations"].get("audio", chunks[-1]["end"]) + 0.01, script_id


def scripts_chunks() -> dict[str, list[str]]:
    voices = STATE / "voices"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "voicebatch"),
            "scripts",
            "check",
            str(STATE / "drill-scripts"),
            "--voices",
            str(voices),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout)
    rows = found if isinstance(found, list) else found["scripts"]
    assert all(row["status"] == "ok" for row in rows), rows
    return {row["script"]: [c["text"] for c in row["chunk_list"]] for row in rows}


def _same_outputs(a: dict[str, dict], b: dict[str, dict]) -> bool:
    """Same scripts, same output hashes, byte-identical audio, subtitles and timing tables."""
    assert set(a) == set(b), (sorted(a), sorted(b))
    for script_id in a:
        assert a[script_id]["hash"] == b[script_id]["hash"], script_id
        assert a[script_id]["files"] == b[script_id]["files"], f"{script_id}: files differ"
    return True


def test_restarting_postgres_and_the_scheduler_mid_run(stack: dict, figures: Figures, drill_run: dict) -> None:
    project, airflow = stack["project"], stack["airflow"]
    project.compose("start", GPU_WORKER)
    run_id = f"restart-{stack['ident']}"
    airflow.trigger("voice_batch", run_id, {**DRILL, "output_uri": output_uri("restart")})
    wait_until(
        "synthesis to start",
        lambda: any(
            t["state"] in ("running", "success") for t in synthesize_tis(airflow.task_instances("voice_batch", run_id))
        ),
        600,
    )
    docker("restart", project.container("postgres"))
    docker("restart", project.container("airflow-scheduler"))
    found = airflow.wait_finished("voice_batch", run_id)
    figures.set("restart_run_state", found["state"])
    if found["state"] == "failed":  # red is acceptable with a reason: a failed task the UI shows
        tis = airflow.task_instances("voice_batch", run_id)
        assert any(t["state"] in ("failed", "upstream_failed") for t in tis), tis
    again = timed_run(stack, figures, "restart")
    assert again["state"] == "success"
    assert _same_outputs(published(stack["s3"], "output/restart"), published(stack["s3"], "output/drill"))


def test_three_runs_at_once_match_a_single_run(stack: dict, figures: Figures, drill_run: dict) -> None:
    stack["project"].compose("start", GPU_WORKER)
    start = time.monotonic()
    runs = list(gather([lambda n=n: timed_run(stack, figures, f"parallel-{n}") for n in (1, 2, 3)]))
    figures.set("three_runs_at_once_s", round(time.monotonic() - start))
    assert [r["state"] for r in runs] == ["success"] * 3, runs
    single = published(stack["s3"], "output/drill")
    for n in (1, 2, 3):
        assert _same_outputs(published(stack["s3"], f"output/parallel-{n}"), single)


def test_containers_run_the_images_built_here(stack: dict) -> None:
    project = stack["project"]
    for service, image in (("airflow-scheduler", "voicebatch-control:"), (GPU_WORKER, "voicebatch:")):
        found = docker("inspect", "-f", "{{.Config.Image}}", project.container(service)).strip()
        assert found.startswith(image), (service, found)
    assert container_ids(project, "postgres")
