"""Publishing against a real HTTP S3 endpoint (moto server on 127.0.0.1): complete or absent."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import urllib.request

import pysrt
import pytest
import soundfile as sf
import webvtt

from voicebatch.outputs import OutputOptions
from voicebatch.pipeline import RunSettings, publish_script_outputs
from voicebatch.publish import publish_voice
from voicebatch.report import ScriptOutcome, VoiceOutcome, build_report, publish_report
from voicebatch.storage import open_storage, retrying, s3_client

from conftest import S3_SECRET_KEY
from publish_helpers import LONG, chunk_audio, model, plans, voice


@pytest.fixture
def counted(s3_bucket: str):
    """Storage over a client whose write requests are counted."""
    client = s3_client()
    writes: list[str] = []
    for operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CopyObject"):
        client.meta.events.register(f"before-call.s3.{operation}", lambda model, **_: writes.append(model.name))
    return open_storage(f"s3://{s3_bucket}/out", client=client), writes


def publish_all(storage, settings: RunSettings | None = None) -> list:
    settings = settings or RunSettings()
    results = []
    for plan in plans(storage, settings):
        if plan.published:
            continue
        audio = chunk_audio(len(plan.requests))
        results.append(
            publish_script_outputs(
                storage,
                plan,
                audio,
                {"anna": voice()},
                model().lineage(),
                settings,
                synthesis_seconds=1.0,
                run={"dag_id": "d", "run_id": "r"},
            )
        )
    return results


def assert_every_manifest_is_complete(storage) -> None:
    manifests = [k for k in storage.list("audio/") if k.endswith("manifest.json")]
    assert manifests
    for key in manifests:
        for output in json.loads(storage.get_bytes(key))["outputs"]:
            data = storage.get_bytes(output["key"].removeprefix(""))
            assert len(data) == output["size"] and hashlib.sha256(data).hexdigest() == output["sha256"]


def test_publish_then_republish_uploads_nothing(counted) -> None:
    storage, writes = counted
    first = publish_all(storage)
    assert len(first) == 2 and all(not p.skipped for p in first)
    assert len(writes) == 2 * 6  # audio, srt, vtt, csv, manifest, latest per script
    writes.clear()
    assert all(p.published for p in plans(storage))
    assert publish_all(storage) == [] and writes == []
    # Even a caller that did not check first writes nothing: the manifest is there.
    plan = plans()[0]
    again = publish_script_outputs(
        storage, plan, chunk_audio(len(plan.requests)), {"anna": voice()}, model().lineage(), RunSettings()
    )
    assert again.skipped and writes == []
    assert_every_manifest_is_complete(storage)


def test_layout_manifest_and_latest(counted) -> None:
    storage, _ = counted
    (intro, _) = publish_all(storage)
    prefix = intro.prefix
    assert prefix.startswith("audio/intro/") and intro.manifest_key == prefix + "manifest.json"
    names = sorted(k.rsplit("/", 1)[1] for k in storage.list(prefix))
    assert names == ["intro.csv", "intro.srt", "intro.vtt", "intro.wav", "manifest.json"]
    manifest = json.loads(storage.get_bytes(intro.manifest_key))
    assert manifest["schema"] == "voicebatch.manifest/1" and manifest["run"] == {"dag_id": "d", "run_id": "r"}
    assert manifest["model"]["checksum"] == "c" * 64 and manifest["inputs"]["voices"]["anna"]["clip_hash"]
    assert set(manifest["versions"]) >= {"voicebatch", "f5-tts", "torch"}
    assert len(manifest["seeds"]) == len(manifest["chunks"]) and manifest["durations"]["rtf"] is not None
    latest = json.loads(storage.get_bytes("audio/intro/latest.json"))
    assert latest["output_hash"] == manifest["output_hash"] and latest["manifest"] == intro.manifest_key


def test_crash_before_the_manifest_leaves_nothing_trusted_and_the_next_attempt_completes(counted) -> None:
    storage, _ = counted
    real_put = storage.put_bytes

    def crash_on_manifest(key: str, data: bytes, content_type: str | None = None) -> None:
        if key.endswith("manifest.json"):
            raise RuntimeError("worker killed (injected)")
        real_put(key, data, content_type)

    storage.put_bytes = crash_on_manifest
    with pytest.raises(RuntimeError, match="injected"):
        publish_all(storage)
    assert [k for k in storage.list("audio/") if k.endswith("manifest.json")] == []
    assert any(k.endswith(".wav") for k in storage.list("audio/")), "the audio was uploaded before the crash"
    assert not any(p.published for p in plans(storage)), "without a manifest the script is redone"
    storage.put_bytes = real_put
    assert len(publish_all(storage)) == 2
    assert_every_manifest_is_complete(storage)


def test_presigned_url_downloads_the_object_and_no_secret_anywhere(counted, caplog) -> None:
    storage, _ = counted
    caplog.set_level(logging.DEBUG)
    publish_all(storage)
    publish_voice(storage, voice())
    outcomes = [
        ScriptOutcome(p.script.id, "published", p.output_hash, f"audio/{p.script.id}/{p.output_hash}/manifest.json")
        for p in plans()
    ]
    report, page = build_report(
        storage,
        dag_id="voice_batch",
        run_id="manual__1",
        model={"name": "fake"},
        scripts=outcomes,
        voices=[VoiceOutcome("anna", "ok")],
    )
    publish_report(storage, report, page)
    link = report["scripts"][0]["links"]["intro.wav"]
    assert link.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in link
    with urllib.request.urlopen(link) as response:
        assert response.read() == storage.get_bytes(report["scripts"][0]["keys"][0])
    everything = [storage.get_bytes(k) for k in storage.list("")]
    assert len(everything) >= 15
    assert not any(S3_SECRET_KEY.encode() in blob for blob in everything)
    assert S3_SECRET_KEY not in caplog.text and S3_SECRET_KEY not in page and S3_SECRET_KEY not in json.dumps(report)


def test_subtitles_parse_back_and_keep_the_line_rules(counted) -> None:
    storage, _ = counted
    publish_all(storage)
    (key,) = [k for k in storage.list("audio/long-one/") if k.endswith(".srt")]
    items = pysrt.from_string(storage.get_bytes(key).decode("utf-8"), error_handling=pysrt.ERROR_RAISE)
    captions = webvtt.from_buffer(io.StringIO(storage.get_bytes(key[:-3] + "vtt").decode("utf-8"))).captions
    assert [i.text for i in items] == [c.text for c in captions]
    assert len(items) >= 3, "the long sentence must be split across cues"
    for item in items:
        lines = item.text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines)
    assert [i.start.ordinal for i in items] == sorted(i.start.ordinal for i in items)
    spoken = " ".join(i.text.replace("\n", " ") for i in items).split()
    assert spoken == ("Short first. " + LONG).split(), "every word once, in order, none cut"


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_audio_formats_decode_back(counted, fmt: str) -> None:
    storage, _ = counted
    publish_all(storage, RunSettings(options=OutputOptions(audio_format=fmt)))
    (key,) = [k for k in storage.list("audio/intro/") if k.endswith("." + fmt)]
    samples, rate = sf.read(io.BytesIO(storage.get_bytes(key)))
    assert rate == 24_000 and samples.shape[0] > 24_000


def test_voice_registry_is_reused_by_hash(counted) -> None:
    storage, writes = counted
    first = publish_voice(storage, voice())
    assert not first.skipped and first.prefix == "voices/anna/anna-clip-hash/"
    writes.clear()
    assert publish_voice(storage, voice()).skipped and writes == []
    assert json.loads(storage.get_bytes(first.manifest_key))["voice"] == "anna"


def test_transient_failures_are_retried_a_bounded_number_of_times() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        return "done"

    assert retrying(flaky, sleep=lambda s: None) == "done" and len(calls) == 3
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    calls.clear()

    def forbidden() -> None:
        calls.append(1)
        raise denied

    with pytest.raises(ClientError):
        retrying(forbidden, sleep=lambda s: None)
    assert len(calls) == 1, "a permanent error is not retried"
