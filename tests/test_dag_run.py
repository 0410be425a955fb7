"""dag.test() end to end: the tiny model, a real HTTP S3 endpoint, a bad voice, a re-run, strict,
a failed stage turning the run red, and a hostile bucket listing.

What a run did is read from what it left: the metadata DB (states, try numbers, Asset events)
and the published objects (manifests, audio measured here), never from its own summary alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.parse
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.publish.report import report_prefix

from airflow_helpers import dag_test, demo_inputs, init_airflow, s3_connection
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY

# Every synthesis and output Param away from its default, so the run shows whether it used them.
CONF = {"nfe_steps": 8, "cfg_strength": 1.5, "seed": 5, "chunks_per_task": 1, "loudness_lufs": -30.0}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> dict:
    from voicebatch.locations.storage import s3_client

    root = tmp_path_factory.mktemp("dagrun")
    voices, scripts = demo_inputs(root)
    env = init_airflow(
        root / "airflow",
        AIRFLOW_CONN_TEST_S3=s3_connection(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY),
        # The allow-list, as a deployer sets it: this session's temporary folders and the test bucket.
        VOICEBATCH_ALLOWED_INPUTS=f"{tmp_path_factory.getbasetemp()},s3://dagrun/hostile",
        VOICEBATCH_ALLOWED_OUTPUTS="s3://dagrun",
        VOICEBATCH_MODEL_ROOTS=str(tiny_model_dir),
    )
    client = s3_client(s3_endpoint, "us-east-1", aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY)
    client.create_bucket(Bucket="dagrun")
    conf = {
        "voices_uri": str(voices),
        "scripts_uri": str(scripts),
        "output_uri": "s3://dagrun/out",
        "aws_conn_id": "test_s3",
        "model": str(tiny_model_dir),
        **CONF,
    }
    storage = open_storage("s3://dagrun/out", client=client)
    return {"env": env, "conf": conf, "storage": storage, "voices": voices, "model": tiny_model_dir}


@pytest.fixture(scope="module")
def first_run(setup: dict) -> dict:
    """The first run over fresh inputs (a fixture, so no test depends on another having run)."""
    return dag_test(setup["env"], setup["conf"])


def report_of(storage, run_id: str) -> dict:
    from voicebatch.publish.report import report_prefix

    return json.loads(storage.get_bytes(report_prefix("voice_batch", run_id) + "report.json"))


def manifests_of(storage, run_id: str) -> dict[str, dict]:
    """script id -> manifest, for the outputs this run published."""
    found = {}
    for key in storage.list("audio/"):
        if key.endswith("manifest.json"):
            manifest = json.loads(storage.get_bytes(key))
            if (manifest["run"] or {}).get("run_id") == run_id:
                found[manifest["script_id"]] = manifest
    return found


def audio_of(storage, manifest: dict):
    import soundfile as sf

    (key,) = [o["key"] for o in manifest["outputs"] if o["key"].endswith(".wav")]
    return sf.read(io.BytesIO(storage.get_bytes(key)), dtype="float64")


def test_end_to_end_a_bad_voice_fails_only_its_own_task(setup: dict, first_run: dict) -> None:
    storage, run = setup["storage"], first_run
    assert run["state"] == "success", run
    tasks, tries = run["tasks"], run["tries"]
    failed = [k for k, v in tasks.items() if k.startswith("ingest_voice") and v == "failed"]
    assert len(failed) == 1
    # From the metadata DB: bad input fails on its first try (no retry), and nothing else needed a retry.
    assert tries[failed[0]] == 1, f"the bad voice was tried {tries[failed[0]]} times"
    # (a task skipped because the one before it was skipped never ran: try 0)
    assert {t for k, t in tries.items() if tasks[k] != "skipped"} == {1}, tries
    # The review of quarantined chunks is off by default: the run does not wait for a person.
    assert {tasks[f"{t}[-1]"] for t in ("review_list", "review", "apply_review")} == {"skipped"}
    assert all(v == "success" for k, v in tasks.items() if k.startswith(("synthesize", "publish", "report")))
    keys = storage.list("")
    manifests = manifests_of(storage, run["run_id"])
    assert sorted(manifests) == ["duet", "hello"]
    for manifest in manifests.values():
        assert sorted(o["key"].rsplit(".", 1)[1] for o in manifest["outputs"]) == ["csv", "srt", "vtt", "wav"]
        # The manifest names the task and the try that published it, as the metadata DB has them.
        assert manifest["run"] == {
            "dag_id": "voice_batch",
            "run_id": run["run_id"],
            "task_id": "publish",
            "try_number": tries["publish[-1]"],
        }
    assert not [k for k in keys if k.startswith("_staging/")], "staging is removed after the run"
    report = report_of(storage, run["run_id"])
    assert report["totals"]["published"] == 2 and report["totals"]["voices_failed"] == 1
    (ghost,) = [v for v in report["voices"] if v["voice"] == "ghost"]
    assert "silent" in ghost["reason"] and report["notice"] == "random weights: noise, not a voice"
    assert any(k.endswith("report.html") for k in keys)
    assert run["tasks"]["final_check[-1]"] == "success" and report["status"] == "finished"
    # Asset events (metadata DB) name this run's own output location, with the counts of what was published.
    events = {e["uri"]: e["extra"] for e in run["events"]}
    assert set(events) == {"s3://dagrun/out/audio", "s3://dagrun/out/voices"}
    audio = events["s3://dagrun/out/audio"]
    assert (audio["published"], audio["skipped"], audio["failed"]) == (len(manifests), 0, 0) and audio["run_id"]
    assert events["s3://dagrun/out/voices"]["voices_registered"] == 2
    assert {e["task"] for e in run["events"]} == {"publish"}
    descriptions = {e["uri"]: (e["asset_extra"] or {}).get("description", "") for e in run["events"]}
    assert descriptions["s3://dagrun/out/audio"].startswith("voicebatch outputs: audio/<script>/<output_hash>/")
    assert descriptions["s3://dagrun/out/voices"].startswith("voicebatch voice registry")
    # The connection's secret is in no object, no task log (dag.test prints them) and nowhere in
    # Airflow's home (the metadata DB with XCom, its write-ahead log, config).
    home = Path(setup["env"]["AIRFLOW_HOME"])
    places = {k: storage.get_bytes(k) for k in keys}
    places |= {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file() and "dags" not in p.parts}
    places["task logs"] = run["output"].encode()
    assert "synthesizing _staging/" in run["output"] and any(p.endswith("airflow.db") for p in places)
    assert [p for p, data in places.items() if S3_SECRET_KEY.encode() in data] == []
    # Verification: the tiny random model's noise fails every content check; published anyway,
    # marked needs_review, no re-take tried (random weights), and the report says so.
    qa = report["qa"]
    assert qa["checked"] > 0 and qa["passed"] == 0 and qa["quarantined"] == qa["checked"] and qa["retakes"] == 0
    assert sorted(qa["needs_review"]) == ["duet", "hello"]
    assert any("random weights" in n for n in qa["notes"])
    latest = json.loads(storage.get_bytes("audio/hello/latest.json"))
    assert latest["needs_review"] is True


def test_params_shape_what_the_run_produced(setup: dict, first_run: dict) -> None:
    import pyloudnorm

    storage, run = setup["storage"], first_run
    manifests = manifests_of(storage, run["run_id"])
    assert sorted(manifests) == ["duet", "hello"]
    for manifest in manifests.values():
        parameters = manifest["parameters"]
        assert (parameters["nfe_steps"], parameters["cfg_strength"], parameters["seed"]) == (8, 1.5, 5)
        assert parameters["loudness_lufs"] == -30.0
        samples, rate = audio_of(storage, manifest)
        lufs = pyloudnorm.Meter(rate).integrated_loudness(samples)  # measured on the published file
        assert abs(lufs - CONF["loudness_lufs"]) <= 0.5, f"{manifest['script_id']}: {lufs:.2f} LUFS"
    # chunks_per_task=1: one synthesize task (metadata DB) per chunk the manifests list.
    chunks = sum(len(m["chunks"]) for m in manifests.values())
    synthesized = [k for k, v in run["tasks"].items() if k.startswith("synthesize[") and v == "success"]
    assert chunks >= 3 and len(synthesized) == chunks


def test_manifest_traces_each_voice_to_its_recording_and_transcript(setup: dict, first_run: dict) -> None:
    import soundfile as sf

    storage, voices = setup["storage"], setup["voices"]
    manifest = manifests_of(storage, first_run["run_id"])["hello"]
    nature = manifest["inputs"]["voices"]["nature"]
    recording, transcript = voices / "nature" / "recording.wav", voices / "nature" / "nature.srt"
    assert nature["source_audio"]["sha256"] == hashlib.sha256(recording.read_bytes()).hexdigest()
    assert nature["source_audio"]["name"] == recording.name
    assert nature["source_transcript"]["sha256"] == hashlib.sha256(transcript.read_bytes()).hexdigest()
    assert nature["source_transcript"]["name"] == transcript.name
    window = nature["window"]
    assert 0 <= window["start"] < window["end"] <= round(sf.info(recording).duration, 3)  # ms, as recorded
    prefix = nature["uri"].removeprefix(storage.uri + "/")
    clip = sf.info(io.BytesIO(storage.get_bytes(prefix + "reference.wav")))
    assert abs(clip.duration - (window["end"] - window["start"])) <= 0.002
    reference_text = storage.get_bytes(prefix + "reference.txt").decode("utf-8").strip()
    assert nature["reference_text"] == reference_text and nature["clip_hash"] in prefix


def test_the_run_sounds_like_the_cli_with_the_same_params(setup: dict, first_run: dict, tmp_path: Path) -> None:
    """The published audio is what the Params ask for: `voicebatch synth` with the same model,
    voice, text and Params (another process, another hash seed) gives the same signal; the run's
    default seed would not."""
    import numpy as np

    from test_synth_cli import synth

    storage = setup["storage"]
    published, _ = audio_of(storage, manifests_of(storage, first_run["run_id"])["hello"])
    text = "Hello there. This is a short test."

    def cli(out: str, *params: str):
        import soundfile as sf

        model = ("--model", str(setup["model"]), "--device", "cpu")
        result = synth(setup["voices"] / "nature", text, str(tmp_path / out), *model, *params)
        assert result.returncode == 0, result.stderr[-2000:]
        return sf.read(tmp_path / out / "synth.wav", dtype="float64")[0]

    def similarity(a, b) -> float:  # loudness targets differ: compare shapes, not levels
        n = min(len(a), len(b))
        return float(np.corrcoef(a[:n], b[:n])[0, 1]) if abs(len(a) - len(b)) <= 1 else 0.0

    same = cli("same", "--nfe", "8", "--cfg", "1.5", "--seed", "5")
    other_seed = cli("seed0", "--nfe", "8", "--cfg", "1.5", "--seed", "0")
    assert similarity(published, same) > 0.99
    assert similarity(published, other_seed) < 0.5


def test_a_rerun_synthesizes_nothing_and_strict_fails_on_the_bad_voice(setup: dict, first_run: dict) -> None:
    storage = setup["storage"]
    before = [k for k in storage.list("") if not k.startswith("runs/")]
    run = dag_test(setup["env"], {**setup["conf"], "strict": True})
    assert run["state"] == "failed", "strict: the bad voice fails the run"
    assert "synthesize" not in " ".join(k for k, v in run["tasks"].items() if v == "success")
    assert [k for k in storage.list("") if not k.startswith("runs/")] == before, "nothing new was published"
    report = report_of(storage, run["run_id"])
    assert report["totals"]["skipped"] == 2 and report["totals"]["published"] == 0
    assert run["events"] == [], "a cached re-run fires no downstream DAG"
    assert run["tries"]["report[-1]"] == 1, "strict fails the report task without retrying it"
    assert run["tasks"]["report[-1]"] == "failed" and run["tasks"]["final_check[-1]"] == "upstream_failed"


def failed_tasks(run: dict) -> set[str]:
    """Failed tasks other than the bad voice's own (the ghost voice fails by design)."""
    return {k for k, v in run["tasks"].items() if v == "failed" and not k.startswith("ingest_voice")}


def test_a_missing_model_fails_plan_once_and_the_report_says_so(setup: dict) -> None:
    # Its own output root: its voices registered here must not be "reused" by the first run.
    missing = f"{setup['model']}/no-such-model"  # under the allowed model root, so plan is where it fails
    conf = {**setup["conf"], "model": missing, "strict": True, "output_uri": "s3://dagrun/missing-model"}
    run = dag_test(setup["env"], conf)
    storage = open_storage("s3://dagrun/missing-model", client=setup["storage"].client)
    assert run["state"] == "failed"
    assert failed_tasks(run) == {"plan[-1]"} and run["tries"]["plan[-1]"] == 1, "no retry, no secondary failure"
    assert run["tasks"]["publish[-1]"] == "skipped" and run["tasks"]["report[-1]"] == "success"
    report = report_of(storage, run["run_id"])
    assert report["status"] == "failed" and report["scripts"] == []
    (failure,) = report["failed_stages"]
    assert failure["stage"] == "plan" and failure["error"] == f"model {missing!r}: no such directory"
    assert run["events"] == []
    # The failed run's "Run report" link is on the report task (no synthesize task ran): the API
    # server's plugin serves that report from this location (tests/test_local_airflow.py opens it).
    assert run["links"]["report[-1]"] == f"/voicebatch/runs/voice_batch/{urllib.parse.quote(run['run_id'], safe='')}/"
    page = storage.get_bytes(report_prefix("voice_batch", run["run_id"]) + "report.html").decode()
    assert "Run failed: stage <code>plan</code>" in page and "no such directory" in page


@pytest.mark.parametrize(
    ("name", "value", "setting"),
    [
        ("lexicon_uri", "/etc/hostname", "VOICEBATCH_ALLOWED_INPUTS"),
        ("model", "/no/such/dir", "VOICEBATCH_MODEL_ROOTS"),
    ],
)
def test_a_location_outside_the_allow_list_fails_list_voices_once_and_the_rest_skips(
    setup: dict, name: str, value: str, setting: str
) -> None:
    """The first task refuses the run with one line naming the setting; plan and publish skip
    (publish used to build the run's settings, reading the lexicon, before asking whether plan
    had finished, and failed a second time); the report says why, once."""
    output = f"s3://dagrun/refused-{name}"
    run = dag_test(setup["env"], {**setup["conf"], name: value, "output_uri": output})
    assert run["state"] == "failed"
    assert failed_tasks(run) == {"list_voices[-1]"} and run["tries"]["list_voices[-1]"] == 1, "at once, no retry"
    assert run["tasks"]["plan[-1]"] == "skipped" and run["tasks"]["publish[-1]"] == "skipped"
    assert run["tasks"]["report[-1]"] == "success" and run["tasks"]["final_check[-1]"] == "upstream_failed"
    storage = open_storage(output, client=setup["storage"].client)
    (failure,) = report_of(storage, run["run_id"])["failed_stages"]
    assert failure["stage"] == "list_voices" and "\n" not in failure["error"]
    assert failure["error"].startswith(f"{name}: {value} is outside the locations this deployment allows")
    assert failure["error"].endswith(f"add it to {setting} where voicebatch runs")
    assert not [k for k in storage.list("") if not k.startswith("runs/")], "nothing but the run's report"


def test_a_scheduled_run_with_default_params_offline_is_red(setup: dict, tmp_path: Path) -> None:
    conf = setup["conf"]
    env = {
        **setup["env"],
        "VOICEBATCH_VOICES_URI": conf["voices_uri"],
        "VOICEBATCH_SCRIPTS_URI": conf["scripts_uri"],
        "VOICEBATCH_OUTPUT_URI": "s3://dagrun/offline",
        "VOICEBATCH_AWS_CONN_ID": "test_s3",
        "VOICEBATCH_MODEL_DIR": str(tmp_path / "empty-model-cache"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("VOICEBATCH_MODEL", None)
    run = dag_test(env, {}, logical_date="2026-03-01T00:00:00+00:00")
    assert run["state"] == "failed" and failed_tasks(run) == {"plan[-1]"} and run["tries"]["plan[-1]"] == 1
    storage = open_storage("s3://dagrun/offline", client=setup["storage"].client)
    (failure,) = report_of(storage, run["run_id"])["failed_stages"]
    assert failure["stage"] == "plan"
    assert failure["error"].startswith("model 'F5TTS_v1_Base' not found; tried local cache")
    assert "offline" in failure["error"]


def test_a_hostile_bucket_listing_writes_nothing_outside_and_the_rest_publishes(
    setup: dict, demo_voices: Path, tmp_path: Path
) -> None:
    client = setup["storage"].client
    escape = tmp_path / "escaped" / "x.txt"
    climb = "../" * 12 + str(escape).lstrip("/")  # from any temporary folder up to / and down to escape
    for path in sorted((demo_voices / "nature").iterdir()):
        client.put_object(Bucket="dagrun", Key=f"hostile/voices/nature/{path.name}", Body=path.read_bytes())
    hostile = [f"{climb}", "/rooted.srt", "nature\\..\\evil.srt", "x" * 300 + ".wav"]
    for key in hostile:
        client.put_object(Bucket="dagrun", Key=f"hostile/voices/{key}", Body=b"1\n00:00:00,000 --> 00:00:01,000\nX.\n")
        client.put_object(Bucket="dagrun", Key=f"hostile/scripts/{key}", Body=b"---\nvoice: nature\n---\nEvil.")
    scripts = {
        "hello.txt": "---\nvoice: nature\n---\nHello there.",
        "lines.jsonl": '{"id": "one", "voice": "nature", "text": "One."}\n{"id": "two", "voice": \n'
        '{"id": "three", "voice": "nature", "text": "Three."}\n',
        "rows.csv": "id,voice,text\nr1,nature,Row one.\nr2,nature,\nr3,nature,Row three.\n",
    }
    for name, text in scripts.items():
        client.put_object(Bucket="dagrun", Key=f"hostile/scripts/{name}", Body=text.encode())
    conf = {
        **setup["conf"],
        "voices_uri": "s3://dagrun/hostile/voices",
        "scripts_uri": "s3://dagrun/hostile/scripts",
        "output_uri": "s3://dagrun/hostile-out",
    }
    run = dag_test(setup["env"], conf)
    assert not escape.exists() and not (tmp_path / "escaped").exists()
    assert run["state"] == "success", run
    out = open_storage("s3://dagrun/hostile-out", client=client)
    published = {k.split("/")[1] for k in out.list("audio/") if k.endswith("manifest.json")}
    assert published == {"hello", "one", "three", "r1", "r3"}
    report = report_of(out, run["run_id"])
    assert len(report["rejected_inputs"]) == len(hostile)
    failed = [s for s in report["scripts"] if s["status"] == "failed"]
    assert sorted(s["script_id"] for s in failed) == sorted(
        ["(refused input)"] * len(hostile) + ["lines.jsonl item 2", "rows.csv row 3"]
    )
    for line in report["rejected_inputs"] + [s["error"] for s in failed]:
        assert "\n" not in line and line.startswith("s3://dagrun/hostile/"), line
    assert any("'..' segment" in line for line in report["rejected_inputs"])
    for problem in ("absolute", "backslash", "longer than 255 bytes"):
        assert sum(problem in line for line in report["rejected_inputs"]) == 1, problem


def test_more_voices_than_max_map_length_run_in_groups(setup: dict, tmp_path: Path) -> None:
    """``[core] max_map_length`` lowered to 8 and 20 voices with a script each: the voices are
    ingested in 7 mapped tasks and the 20 chunks synthesized in at most 8, without a mapping
    error, and every voice and script comes out."""
    from run_helpers import make_voice

    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    scripts.mkdir()
    names = [f"v{n:02d}" for n in range(20)]
    for name in names:
        make_voice(voices, name)
        (scripts / f"s-{name}.txt").write_text(f"---\nvoice: {name}\n---\nHello from {name}.")
    conf = {
        **setup["conf"],
        "voices_uri": str(voices),
        "scripts_uri": str(scripts),
        "output_uri": "s3://dagrun/many",
        "verify": "off",
        "nfe_steps": 4,
    }
    run = dag_test({**setup["env"], "AIRFLOW__CORE__MAX_MAP_LENGTH": "8"}, conf)
    assert run["state"] == "success", run
    ingest = {k: v for k, v in run["tasks"].items() if k.startswith("ingest_voice[")}
    synthesize = {k: v for k, v in run["tasks"].items() if k.startswith("synthesize[")}
    assert len(ingest) == 7 and set(ingest.values()) == {"success"}, ingest
    assert 1 <= len(synthesize) <= 8 and set(synthesize.values()) == {"success"}, synthesize
    out = open_storage("s3://dagrun/many", client=setup["storage"].client)
    registered = {k.split("/")[1] for k in out.list("voices/") if k.endswith("voice.json")}
    assert registered == set(names)
    report = report_of(out, run["run_id"])
    assert report["totals"]["published"] == 20 and report["totals"]["voices_ok"] == 20
