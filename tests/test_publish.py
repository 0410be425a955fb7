"""Publishing against a real HTTP S3 endpoint (moto server on 127.0.0.1): complete or absent."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import time
import urllib.request
from collections import Counter

import pysrt
import pytest
import soundfile as sf
import webvtt

from voicebatch.locations.storage import open_storage, s3_client
from voicebatch.publish.publishing import publish_voice
from voicebatch.publish.report import ScriptOutcome, VoiceOutcome, build_report, publish_report
from voicebatch.render.outputs import OutputOptions
from voicebatch.run.pipeline import RunSettings, publish_script_outputs

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
    assert len(writes) == 2 * 7  # audio, srt, vtt, csv, chunk audio, manifest, latest per script
    writes.clear()
    assert all(p.published for p in plans(storage))
    assert publish_all(storage) == [] and writes == []
    # Even a caller that did not check first writes nothing: the manifest is there.
    plan = plans()[0]
    again = publish_script_outputs(
        storage, plan, chunk_audio(len(plan.requests)), {"anna": voice()}, model().lineage(), RunSettings()
    )
    assert again.skipped and writes == []
    assert (again.prefix, again.manifest_key, again.keys) == (first[0].prefix, first[0].manifest_key, first[0].keys)
    assert_every_manifest_is_complete(storage)


def test_layout_manifest_and_latest(counted) -> None:
    storage, _ = counted
    (intro, _) = publish_all(storage)
    prefix = intro.prefix
    assert prefix.startswith("audio/intro/") and intro.manifest_key == prefix + "manifest.json"
    names = sorted(k.rsplit("/", 1)[1] for k in storage.list(prefix))
    assert names == ["chunks.flac", "intro.csv", "intro.srt", "intro.vtt", "intro.wav", "manifest.json"]
    manifest = json.loads(storage.get_bytes(intro.manifest_key))
    assert manifest["schema"] == "voicebatch.publish.manifest/1" and manifest["run"] == {"dag_id": "d", "run_id": "r"}
    assert manifest["model"]["checksum"] == "c" * 64 and manifest["inputs"]["voices"]["anna"]["clip_hash"]
    # Every field of the manifest table (docs/outputs.md), and nothing else.
    assert set(manifest) == {
        *("schema", "output_format_version", "script_id", "output_hash", "created_at", "inputs", "model"),
        *("parameters", "seeds", "chunks", "versions", "durations", "loudness", "run", "outputs", "qa"),
        *("subtitle_problems", "chunk_audio", "supersedes"),
    }
    assert manifest["output_format_version"] == 2 and datetime.datetime.fromisoformat(manifest["created_at"]).tzinfo
    assert set(manifest["inputs"]["script"]) == {"uri", "sha256", "speed", "voices", "parts"}
    assert manifest["parameters"]["nfe_steps"] == 32 and manifest["parameters"]["audio_format"] == "wav"
    from importlib.metadata import version

    assert manifest["versions"] == {n: version(n) for n in ("voicebatch", "f5-tts", "torch", "numpy", "soundfile")}
    assert len(manifest["seeds"]) == len(manifest["chunks"]) and manifest["durations"]["rtf"] is not None
    latest = json.loads(storage.get_bytes("audio/intro/latest.json"))
    assert latest["output_hash"] == manifest["output_hash"] and latest["manifest"] == intro.manifest_key
    assert latest["script_id"] == "intro" and datetime.datetime.fromisoformat(latest["updated_at"]).tzinfo
    assert latest["run"] == {"dag_id": "d", "run_id": "r"}
    # Content types as stored (browsers play the report's presigned links by them) and as listed.
    expected = {"wav": "audio/wav", "srt": "application/x-subrip", "vtt": "text/vtt", "csv": "text/csv"}
    for output in manifest["outputs"]:
        assert output["content_type"] == expected[output["key"].rsplit(".", 1)[1]]
        assert content_type(storage, output["key"]) == output["content_type"]
    assert content_type(storage, intro.manifest_key) == content_type(storage, "audio/intro/latest.json")
    assert content_type(storage, intro.manifest_key) == "application/json"


def content_type(storage, key: str) -> str:
    return storage.client.head_object(Bucket=storage.bucket, Key=storage._key(key))["ContentType"]


def test_a_script_id_with_dots_publishes_with_the_right_content_types(counted) -> None:
    from voicebatch.inputs.scripts import Script, ScriptPart
    from voicebatch.run.pipeline import plan_scripts

    storage, _ = counted
    script = Script("part.1.intro", "part.1.intro.txt", (ScriptPart("anna", "Hello there."),))
    (plan,) = plan_scripts([script], {"anna": voice()}, model().checksum, RunSettings(), storage)
    published = publish_script_outputs(
        storage, plan, chunk_audio(1), {"anna": voice()}, model().lineage(), RunSettings()
    )
    manifest = json.loads(storage.get_bytes(published.manifest_key))
    types = {o["key"].rsplit("/", 1)[1]: o["content_type"] for o in manifest["outputs"]}
    assert types == {
        "part.1.intro.wav": "audio/wav",
        "part.1.intro.srt": "application/x-subrip",
        "part.1.intro.vtt": "text/vtt",
        "part.1.intro.csv": "text/csv",
    }


def test_timing_table_matches_the_published_audio_and_text(counted) -> None:
    import csv

    storage, _ = counted
    (intro, _) = publish_all(storage)
    (key,) = [k for k in intro.keys if k.endswith(".csv")]
    table = storage.get_bytes(key).decode("utf-8")
    header = "script,voice,level,index,sentence,start_s,end_s,text,estimated,source"
    assert table.splitlines()[0] == header and "\r" not in table
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {(r["script"], r["voice"]) for r in rows} == {("intro", "anna")}
    sentences = [r for r in rows if r["level"] == "sentence"]
    words = [r for r in rows if r["level"] == "word"]
    assert [r["text"] for r in sentences] == ["Welcome to the course.", "Let us begin."]
    assert " ".join(r["text"] for r in words) == "Welcome to the course. Let us begin."
    # 1-based like SRT; a word row names its sentence.
    assert [int(r["index"]) for r in sentences] == [1, 2] and [int(r["index"]) for r in words] == list(range(1, 8))
    assert [int(r["sentence"]) for r in words] == [1, 1, 1, 1, 2, 2, 2]
    assert all(len(r[f].split(".")[1]) == 3 for r in rows for f in ("start_s", "end_s")), "milliseconds"
    (wav,) = [k for k in intro.keys if k.endswith(".wav")]
    duration = sf.info(io.BytesIO(storage.get_bytes(wav))).duration
    # One sentence per chunk: sentence edges are chunk edges, with the sentence pause between them.
    gap = float(sentences[1]["start_s"]) - float(sentences[0]["end_s"])
    assert abs(gap - 0.3) <= 0.001, "the documented default sentence pause (docs/params.md)"
    assert abs(float(sentences[-1]["end_s"]) - duration) <= 0.001, "the last sentence ends with the audio"
    assert len(plans()[0].chunks) == 2 and {r["source"] for r in sentences} == {"chunk_boundary"}
    # Verification is off here (no aligner): times inside a chunk are estimated, and flagged so.
    assert {(r["estimated"], r["source"]) for r in words} == {("true", "estimated")}
    assert {r["estimated"] for r in sentences} == {"false"}


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
    assert "X-Amz-Expires=604800" in link, "links last 7 days"
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
    (key,) = [k for k in storage.list("audio/intro/") if k.endswith("/intro." + fmt)]
    samples, rate = sf.read(io.BytesIO(storage.get_bytes(key)))
    assert rate == 24_000 and samples.shape[0] > 24_000


def test_voice_registry_is_reused_by_hash(counted) -> None:
    import numpy as np

    storage, writes = counted
    first = publish_voice(storage, voice())
    assert not first.skipped and first.prefix == "voices/anna/anna-clip-hash/"
    assert writes == ["PutObject"] * 3 and first.keys[-1] == first.manifest_key == first.prefix + "voice.json"
    samples, rate = sf.read(io.BytesIO(storage.get_bytes(first.prefix + "reference.wav")), dtype="float32")
    assert rate == 24_000 and np.max(np.abs(samples - voice().samples)) < 1e-4, "the clip itself, PCM16"
    assert storage.get_bytes(first.prefix + "reference.txt").decode("utf-8") == voice().text + "\n"
    types = {
        k.rsplit("/", 1)[1]: storage.client.head_object(Bucket=storage.bucket, Key=storage._key(k))["ContentType"]
        for k in first.keys
    }
    assert types == {
        "reference.wav": "audio/wav",
        "reference.txt": "text/plain; charset=utf-8",
        "voice.json": "application/json",
    }
    writes.clear()
    again = publish_voice(storage, voice())
    assert (
        again.skipped
        and writes == []
        and (again.prefix, again.manifest_key, again.keys)
        == (
            first.prefix,
            first.manifest_key,
            first.keys,
        )
    )
    assert json.loads(storage.get_bytes(first.manifest_key))["voice"] == "anna"


def test_a_voice_registered_half_way_is_registered_again(counted, monkeypatch) -> None:
    storage, _ = counted
    fail = lambda key, n: RuntimeError("worker killed (injected)") if key.endswith("voice.json") and n == 1 else None  # noqa: E731
    tries, _ = flaky_writes(storage, monkeypatch, fail)
    with pytest.raises(RuntimeError, match="injected"):
        publish_voice(storage, voice())
    assert not storage.exists("voices/anna/anna-clip-hash/voice.json"), "voice.json is written last"
    again = publish_voice(storage, voice())
    assert not again.skipped and storage.exists(again.manifest_key)
    assert tries["voices/anna/anna-clip-hash/reference.wav"] == 2, "redone: the first try left no voice.json"


def test_an_unknown_audio_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="audio format 'ogg': use one of wav, flac, mp3"):
        OutputOptions(audio_format="ogg")


def flaky_writes(storage, monkeypatch: pytest.MonkeyPatch, fail) -> tuple[Counter, list[float]]:
    """Make ``storage.put_bytes`` and ``put_file`` (the audio, streamed from disk) raise
    ``fail(key, attempt)`` when it returns an exception; count the tries per key and record
    the backoff waits instead of sleeping them."""
    tries: Counter = Counter()
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # retrying() looks time.sleep up at each wait

    def failing(real):
        def put(key: str, data, content_type: str | None = None) -> None:
            tries[key] += 1
            if error := fail(key, tries[key]):
                raise error
            real(key, data, content_type)

        return put

    monkeypatch.setattr(storage, "put_bytes", failing(storage.put_bytes))
    monkeypatch.setattr(storage, "put_file", failing(storage.put_file))
    return tries, waits


def dropped() -> Exception:
    from botocore.exceptions import EndpointConnectionError

    return EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_transient_failures_are_retried_a_bounded_number_of_times(counted, monkeypatch) -> None:
    storage, _ = counted
    # Every audio upload loses its connection twice, after botocore's own retries: the publish
    # still completes, each step tried exactly as often as it needed, with backoff between tries.
    tries, waits = flaky_writes(
        storage, monkeypatch, lambda key, n: dropped() if key.endswith(".wav") and n <= 2 else None
    )
    assert len(publish_all(storage)) == 2
    assert sorted(n for k, n in tries.items() if k.endswith(".wav")) == [3, 3]
    assert {n for k, n in tries.items() if not k.endswith(".wav")} == {1}
    assert waits == [2, 4, 2, 4]
    assert_every_manifest_is_complete(storage)


def test_a_step_that_keeps_failing_is_tried_three_times_and_no_manifest_appears(counted, monkeypatch) -> None:
    storage, _ = counted
    tries, waits = flaky_writes(storage, monkeypatch, lambda key, n: dropped() if key.endswith(".wav") else None)
    with pytest.raises(Exception, match="Could not connect"):
        publish_all(storage)
    (wav,) = [k for k in tries if k.endswith(".wav")]
    assert tries[wav] == 3 and waits == [2, 4], "three tries in all (docs/outputs.md: Storage), then the error"
    assert not [k for k in storage.list("") if k.endswith("manifest.json")]


def test_a_permanent_error_is_not_retried(counted, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    storage, _ = counted
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    tries, waits = flaky_writes(storage, monkeypatch, lambda key, n: denied if key.endswith(".wav") else None)
    with pytest.raises(ClientError, match="AccessDenied"):
        publish_all(storage)
    (wav,) = [k for k in tries if k.endswith(".wav")]
    assert tries[wav] == 1 and waits == []
    assert not [k for k in storage.list("") if k.endswith("manifest.json")]


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_published_audio_is_measured_at_the_loudness_target(counted, target: float) -> None:
    import numpy as np
    import pyloudnorm
    from scipy.signal import resample_poly

    storage, _ = counted
    settings = RunSettings(options=OutputOptions(loudness_lufs=target))
    for published in publish_all(storage, settings):
        (key,) = [k for k in published.keys if k.endswith(".wav")]
        samples, rate = sf.read(io.BytesIO(storage.get_bytes(key)), dtype="float64")
        # Measured here on the published file, with pyloudnorm and scipy, not with voicebatch's loudness module.
        lufs = pyloudnorm.Meter(rate).integrated_loudness(samples)
        true_peak = 20 * np.log10(np.max(np.abs(resample_poly(samples, 4, 1))))
        assert abs(lufs - target) <= 0.1, f"{key}: {lufs:.2f} LUFS, target {target}"
        assert true_peak <= -1.0 + 0.1, f"{key}: true peak {true_peak:.2f} dBTP"
        loudness = json.loads(storage.get_bytes(published.manifest_key))["loudness"]
        assert abs(loudness["output_lufs"] - lufs) <= 0.05 and abs(loudness["true_peak_dbtp"] - true_peak) <= 0.1
        assert abs(loudness["gain_db"] - (loudness["output_lufs"] - loudness["input_lufs"])) <= 0.03


def test_the_true_peak_ceiling_wins_in_the_published_file(counted) -> None:
    import numpy as np
    import pyloudnorm
    from scipy.signal import resample_poly

    storage, _ = counted
    (plan, _) = plans(storage)
    spiky = [0.02 * a / 0.3 for a in chunk_audio(len(plan.requests))]
    spiky[0][1000] = 0.9  # one click: reaching -10 LUFS would push it far over -1 dBTP
    settings = RunSettings(options=OutputOptions(loudness_lufs=-10.0))
    published = publish_script_outputs(storage, plan, spiky, {"anna": voice()}, model().lineage(), settings)
    (key,) = [k for k in published.keys if k.endswith(".wav")]
    samples, rate = sf.read(io.BytesIO(storage.get_bytes(key)), dtype="float64")
    true_peak = 20 * np.log10(np.max(np.abs(resample_poly(samples, 4, 1))))
    assert -1.0 - 0.15 <= true_peak <= -1.0 + 0.1, f"the ceiling, not past it: {true_peak:.2f} dBTP"
    assert pyloudnorm.Meter(rate).integrated_loudness(samples) < -10.0 - 1.0, "quieter than asked, never clipped"


def test_loudness_off_publishes_the_level_as_synthesized(counted) -> None:
    import pyloudnorm

    storage, _ = counted
    (published, _) = publish_all(storage, RunSettings(options=OutputOptions(loudness_lufs=None)))
    (key,) = [k for k in published.keys if k.endswith(".wav")]
    samples, rate = sf.read(io.BytesIO(storage.get_bytes(key)), dtype="float64")
    peak = float(abs(samples).max())
    assert abs(peak - 0.3) <= 0.01, "the chunks' own level (sines of amplitude 0.3), untouched"
    assert json.loads(storage.get_bytes(published.manifest_key))["loudness"] is None
    assert pyloudnorm.Meter(rate).integrated_loudness(samples) > -16.0 + 1.0


MIB = 1024 * 1024


def multipart_etag(data: bytes, part_size: int) -> str:
    """S3's ETag of a multipart object: md5 of the parts' md5s, then the part count."""
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f"{digest}-{len(parts)}"


def test_large_outputs_go_multipart_and_small_ones_in_one_put(s3_bucket: str) -> None:
    client = s3_client()
    calls: list[str] = []
    for operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        client.meta.events.register(f"before-call.s3.{operation}", lambda model, **_: calls.append(model.name))
    # The threshold lowered so a test-sized WAV crosses it; the parts stay 64 MiB as in production.
    storage = open_storage(f"s3://{s3_bucket}/out", client=client, multipart_threshold=64 * 1024)
    published = publish_all(storage)
    wavs = [k for p in published for k in p.keys if k.endswith(".wav")]
    # The chunks' own audio (chunks.flac, not in the manifest's outputs) is a file upload too.
    chunk_audio = [p.prefix + "chunks.flac" for p in published]
    large = wavs + [k for k in chunk_audio if len(storage.get_bytes(k)) >= 64 * 1024]
    assert len(wavs) == 2 and calls.count("CreateMultipartUpload") == len(large)
    assert calls.count("UploadPart") == len(large) and calls.count("CompleteMultipartUpload") == len(large)
    small = 2 * 5 + len(chunk_audio) - (len(large) - len(wavs))
    assert calls.count("PutObject") == small, "srt, vtt, csv, manifest, latest.json and small files: single PUTs"
    for key in wavs:
        data = storage.get_bytes(key)
        assert len(data) > 64 * 1024
        etag = client.head_object(Bucket=s3_bucket, Key=f"out/{key}")["ETag"].strip('"')
        assert etag == multipart_etag(data, 64 * MIB)
    assert_every_manifest_is_complete(storage)


def test_multipart_parts_are_64_mib_and_a_failed_part_leaves_no_object(s3_bucket: str) -> None:
    client = s3_client()
    storage = open_storage(f"s3://{s3_bucket}/big", client=client)
    data = os.urandom(64 * MIB + 1234)  # just over one part: a 64 MiB part and a small last one
    parts: list[int] = []

    def drop_second_part(params: dict, **_: object) -> None:
        parts.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise ConnectionResetError("connection dropped in part 2 (injected)")

    client.meta.events.register("provide-client-params.s3.UploadPart", drop_second_part)
    with pytest.raises(ConnectionResetError):
        storage.put_bytes("book.wav", data, "audio/wav")
    assert 2 in parts and not storage.exists("book.wav"), "a failed multipart upload leaves no object"
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == [], "and no upload left open"
    client.meta.events.unregister("provide-client-params.s3.UploadPart", drop_second_part)
    storage.put_bytes("book.wav", data, "audio/wav")
    head = client.head_object(Bucket=s3_bucket, Key="big/book.wav")
    assert head["ETag"].strip('"') == multipart_etag(data, 64 * MIB)
    assert head["ContentType"] == "audio/wav" and storage.get_bytes("book.wav") == data
