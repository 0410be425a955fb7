"""S3 event notifications into runs (voicebatch.inputs.arrivals): which objects start a run, in which
folder, with which files; and every notification that starts none says why in one log line.

The messages are written here as S3 and SNS document them (an S3 event record of version 2.1,
keys URL-encoded, the test event S3 sends when a configuration is saved, SNS's envelope)."""

from __future__ import annotations

import json
import logging

import pytest

from voicebatch.inputs.arrivals import (
    Arrival,
    ArrivalRun,
    arrival_runs,
    arrivals_in_message,
    arrivals_in_messages,
)

ROOT = "s3://media/scripts"


def record(key: str, bucket: str = "media", event: str = "ObjectCreated:Put") -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-07T14:00:00.000Z",
        "eventName": event,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "scripts-arrive",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 42, "eTag": "0123", "sequencer": "0A1B"},
        },
    }


def message(*records: dict, message_id: str = "m-1") -> dict:
    return {"MessageId": message_id, "ReceiptHandle": "r", "Body": json.dumps({"Records": list(records)})}


def test_a_created_object_is_an_arrival_with_its_key_decoded() -> None:
    body = json.dumps({"Records": [record("scripts/2026-12-07/chapter+one%C3%A9.txt", event="ObjectCreated:Copy")]})
    assert arrivals_in_message(body, "m-1") == [Arrival("media", "scripts/2026-12-07/chapter oneé.txt", "m-1")]


def test_the_test_event_deletions_and_malformed_messages_start_nothing_and_say_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-12-07T14:00:00.000Z",
        "Bucket": "media",
        "RequestId": "R",
        "HostId": "H",
    }
    messages = [
        {"MessageId": "test", "Body": json.dumps(test_event)},
        message(record("scripts/a.txt", event="ObjectRemoved:Delete"), message_id="gone"),
        {"MessageId": "garbled", "Body": "{not json"},
        {"MessageId": "list", "Body": "[1, 2]"},
        {"MessageId": "other", "Body": json.dumps({"Records": [{"eventSource": "aws:sqs"}]})},
        {"MessageId": "nobody"},
        {"MessageId": "keyless", "Body": json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {}}]})},
    ]
    with caplog.at_level(logging.INFO, logger="voicebatch.inputs.arrivals"):
        assert arrivals_in_messages(messages) == []
    lines = caplog.text.splitlines()
    assert len(lines) == len(messages), caplog.text
    for name, why in [
        ("test", "S3's test event for bucket media"),
        ("gone", "ObjectRemoved:Delete of s3://media/scripts/a.txt, not a new object"),
        ("garbled", "not JSON"),
        ("list", "a JSON list, not an S3 event notification"),
        ("other", "record 1: not an S3 event record"),
        ("nobody", "no Body"),
        ("keyless", "record 1: no s3.bucket.name or s3.object.key"),
    ]:
        said = [line for line in lines if f"message {name}" in line and why in line and line.endswith("ignored")]
        assert said, (name, lines)


def test_an_sns_envelope_is_opened() -> None:
    inner = json.dumps({"Records": [record("scripts/a.txt")]})
    envelope = {"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": inner}
    assert arrivals_in_message(json.dumps(envelope), "m-9") == [Arrival("media", "scripts/a.txt", "m-9")]


def test_arrivals_become_one_run_per_folder_with_only_the_scripts_that_arrived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages = [
        message(record("scripts/2026-12-07/b.md"), record("scripts/2026-12-07/a.txt"), message_id="one"),
        message(record("scripts/a.txt"), record("scripts/2026-12-07/a.txt"), message_id="two"),  # a.txt again
        message(
            record("scripts/voices-are-elsewhere.wav"),
            record("output/audio/a/0f/a.csv"),  # what a run publishes: outside the scripts location
            record("scripts/"),
            record("scripts/a.txt", bucket="other"),
            record("scriptsfolder/a.txt"),  # a sibling whose name starts like the prefix
            record("scripts/../secret.txt"),
            message_id="three",
        ),
    ]
    with caplog.at_level(logging.INFO, logger="voicebatch.inputs.arrivals"):
        runs = arrival_runs(arrivals_in_messages(messages), ROOT + "/")
    assert runs == [
        ArrivalRun("s3://media/scripts", ("a.txt",)),
        ArrivalRun("s3://media/scripts/2026-12-07", ("a.txt", "b.md")),
    ]
    assert runs[1].conf() == {"scripts_uri": "s3://media/scripts/2026-12-07", "script_files": ["a.txt", "b.md"]}
    text = caplog.text
    assert "s3://media/scripts/voices-are-elsewhere.wav is not a script" in text
    assert "s3://media/output/audio/a/0f/a.csv is outside the scripts location s3://media/scripts" in text
    assert "s3://media/scripts/ is a folder marker" in text
    assert "s3://other/scripts/a.txt is outside the scripts location" in text
    assert "s3://media/scriptsfolder/a.txt is outside the scripts location" in text
    assert "s3://media/scripts/../secret.txt is no safe key" in text
    assert len([line for line in text.splitlines() if line.endswith("ignored")]) == 6, text
    assert "scripts arrived in s3://media/scripts/2026-12-07: a.txt, b.md" in text


def test_a_whole_bucket_as_the_scripts_location() -> None:
    arrivals = [Arrival("media", "a.txt", "m"), Arrival("media", "x/b.txt", "m")]
    assert arrival_runs(arrivals, "s3://media") == [
        ArrivalRun("s3://media", ("a.txt",)),
        ArrivalRun("s3://media/x", ("b.txt",)),
    ]


def test_a_local_scripts_location_takes_no_arrivals(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="voicebatch.inputs.arrivals"):
        assert arrival_runs([Arrival("media", "scripts/a.txt", "m")], "/srv/scripts") == []
    assert "scripts location /srv/scripts is not in S3" in caplog.text


def test_every_script_suffix_counts_and_no_other() -> None:
    # What a run reads: scripts, documents, timed subtitle tracks, and EPUB books.
    suffixes = (".txt", ".md", ".jsonl", ".csv", ".docx", ".html", ".htm", ".ssml", ".srt", ".vtt", ".ttml")
    suffixes += (".dfxp", ".ass", ".ssa", ".sbv", ".epub")
    arrivals = [Arrival("media", f"scripts/x{suffix.upper()}", "m") for suffix in suffixes]
    arrivals += [Arrival("media", f"scripts/x{suffix}", "m") for suffix in (".wav", ".json", ".txt.bak", ".mp3", "")]
    (run,) = arrival_runs(arrivals, ROOT)
    assert run.script_files == tuple(sorted(f"x{suffix.upper()}" for suffix in suffixes))
