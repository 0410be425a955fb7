"""Scripts that landed in S3: S3 event notifications (as an SQS queue delivers them) into the
runs that synthesize them.

S3 sends a notification for each object written to a bucket whose notification configuration
names the queue; each is a JSON document of ``Records``, one per object, whose keys are
URL-encoded (a space is ``+``). S3 also sends one ``s3:TestEvent`` when the configuration is
saved, and an SNS topic between S3 and the queue wraps the document in its own envelope. Only
new objects under the deployment's scripts location with a script's suffix are runs' inputs:
everything else (test events, deletions, voices, outputs, folder markers, other files) is
left out with one log line saying why, so a notification can never start a run on what it
was not meant for (an output written back to the same bucket, say).

A run is one folder's arrivals: its ``scripts_uri`` is that folder (inside the scripts
location, so inside what the deployment allows) and its ``script_files`` the files that
arrived there, so a run reads nothing else of the folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from voicebatch.inputs.scripts import SCRIPT_SUFFIXES
from voicebatch.locations.storage import is_s3_uri, key_problem

log = logging.getLogger(__name__)

# What a run reads from its scripts folder: scripts (timed subtitle tracks included) and EPUB books.
RUN_SUFFIXES = (*SCRIPT_SUFFIXES, ".epub")


@dataclass(frozen=True, slots=True)
class Arrival:
    """One object written to S3, as a notification names it (the key decoded)."""

    bucket: str
    key: str
    message: str  # where it was read: the message's id (for the log)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class ArrivalRun:
    """One run's selection: the scripts that arrived in one folder."""

    scripts_uri: str
    script_files: tuple[str, ...]

    def conf(self) -> dict[str, object]:
        """The run's conf: Params of the pipeline, nothing else (so its allow-list applies)."""
        return {"scripts_uri": self.scripts_uri, "script_files": list(self.script_files)}

    def label(self) -> str:
        return f"{self.scripts_uri}: {', '.join(self.script_files)}"


def arrivals_in_message(body: str | Mapping, message: str) -> list[Arrival]:
    """The objects created that one queue message announces. A test event, another event or a
    malformed message gives none, with one log line naming the message and why."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as e:
            log.warning("message %s: not JSON (%s): ignored", message, e)
            return []
    if not isinstance(body, Mapping):
        log.warning("message %s: a JSON %s, not an S3 event notification: ignored", message, type(body).__name__)
        return []
    if body.get("Event") == "s3:TestEvent":
        log.info("message %s: S3's test event for bucket %s: ignored", message, body.get("Bucket", "?"))
        return []
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        return arrivals_in_message(body["Message"], message)  # through an SNS topic: its envelope
    records = body.get("Records")
    if not isinstance(records, list):
        log.warning("message %s: no Records: not an S3 event notification: ignored", message)
        return []
    found = []
    for number, record in enumerate(records, 1):
        where = f"message {message} record {number}"
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:s3":
            log.warning("%s: not an S3 event record: ignored", where)
            continue
        event = str(record.get("eventName", ""))
        try:
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            log.warning("%s: no s3.bucket.name or s3.object.key: ignored", where)
            continue
        if not event.startswith("ObjectCreated:"):
            log.info("%s: %s of s3://%s/%s, not a new object: ignored", where, event or "no event", bucket, key)
            continue
        found.append(Arrival(str(bucket), key, message))
    return found


def arrivals_in_messages(messages: Iterable[Mapping]) -> list[Arrival]:
    """The objects created that SQS messages (``MessageId``, ``Body``, as ReceiveMessage
    returns them) announce, in order."""
    found = []
    for number, message in enumerate(messages, 1):
        name = str(message.get("MessageId") or f"#{number}")
        if "Body" not in message:
            log.warning("message %s: no Body: ignored", name)
            continue
        found += arrivals_in_message(message["Body"], name)
    return found


def arrival_runs(arrivals: Sequence[Arrival], scripts_root: str) -> list[ArrivalRun]:
    """The runs for ``arrivals``: one per folder under ``scripts_root`` (an s3:// location)
    where scripts arrived, its files in name order. What is not a script under the root is
    left out, one log line each."""
    if not is_s3_uri(scripts_root):
        log.warning("scripts location %s is not in S3: no notification can name a script there", scripts_root)
        return []
    bucket, _, prefix = scripts_root[5:].partition("/")
    prefix = prefix.strip("/")
    folders: dict[str, dict[str, None]] = {}
    for arrival in arrivals:
        why = _left_out(arrival, bucket, prefix)
        if why:
            log.info("message %s: %s %s: ignored", arrival.message, arrival.uri, why)
            continue
        folder, _, name = arrival.key.rpartition("/")
        folders.setdefault(f"s3://{bucket}/{folder}".rstrip("/"), {})[name] = None
    runs = [ArrivalRun(uri, tuple(sorted(names))) for uri, names in sorted(folders.items())]
    for run in runs:
        log.info("scripts arrived in %s: %s", run.scripts_uri, ", ".join(run.script_files))
    return runs


def _left_out(arrival: Arrival, bucket: str, prefix: str) -> str | None:
    """Why an arrival starts no run, or None when it is a script to synthesize."""
    key = arrival.key
    inside = arrival.bucket == bucket and (not prefix or key.startswith(prefix + "/"))
    if not inside:
        return f"is outside the scripts location s3://{bucket}/{prefix}".rstrip("/")
    if key.endswith("/"):
        return "is a folder marker"
    if problem := key_problem(key):
        return f"is no safe key: it {problem}"
    if not key.lower().endswith(RUN_SUFFIXES):
        return f"is not a script (a script ends in {', '.join(RUN_SUFFIXES)})"
    return None
