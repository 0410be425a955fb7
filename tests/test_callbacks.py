"""Job callbacks, the library: the signature a receiver checks, the deployment's allow-list, and
delivery to a real HTTP receiver on 127.0.0.1 (retries, no redirects, nothing of the answer kept).
The run itself (a DAG run that calls back): tests/test_callbacks_dag.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebatch.publish.notify.allowed import CALLBACK_ALLOWED_ENV, CallbackAllowList, CallbackRefused
from voicebatch.publish.notify.delivery import DEFAULT_POLICY, RetryPolicy, deliver, send_callback
from voicebatch.publish.notify.signing import signature, signed_headers, verify
from voicebatch.publish.notify.summary import body_bytes, event_id, run_summary

from callback_helpers import ANSWER_MARKER, receiver, signature_ok
from conftest import free_port

SECRET = b"callback-test-secret-9a3f"


class Clock:
    """A monotonic clock that moves only when the code under test sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def delivered(url: str, clock: Clock, policy: RetryPolicy = DEFAULT_POLICY, draw: float = 0.5):
    return deliver(
        url, b'{"a":1}', SECRET, delivery_id="d1", policy=policy, clock=clock, sleep=clock.sleep, draw=lambda: draw
    )


# --- signing ---------------------------------------------------------------------------------


@given(body=st.binary(max_size=2000), secret=st.binary(min_size=1, max_size=64), at=st.integers(0, 2**40))
def test_the_signature_is_hmac_sha256_over_timestamp_dot_body(body: bytes, secret: bytes, at: int) -> None:
    expected = "sha256=" + hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    assert signature(secret, at, body) == expected
    headers = signed_headers(secret, body, now=at)
    assert headers == {"X-Voicebatch-Timestamp": str(at), "X-Voicebatch-Signature": expected}
    assert verify(secret, body, str(at), expected, now=at + 299)


def test_a_receiver_refuses_changed_bodies_other_secrets_and_replays() -> None:
    body, at = b'{"state":"success"}', 1_767_225_600
    signed = signature(SECRET, at, body)
    assert verify(SECRET, body, str(at), signed, now=at)
    assert not verify(SECRET, body + b" ", str(at), signed, now=at), "a changed body"
    assert not verify(b"other", body, str(at), signed, now=at), "another secret"
    assert not verify(SECRET, body, str(at), signed, now=at + 301), "replayed after the tolerance"
    assert not verify(SECRET, body, str(at + 1), signed, now=at), "a changed timestamp"
    assert not verify(SECRET, body, "soon", signed, now=at) and not verify(SECRET, body, str(at), "", now=at)


# --- the allow-list --------------------------------------------------------------------------


def allowed(value: str) -> CallbackAllowList:
    return CallbackAllowList.from_env({CALLBACK_ALLOWED_ENV: value})


def test_unset_means_no_callbacks_with_one_line_naming_the_setting() -> None:
    with pytest.raises(CallbackRefused) as refused:
        CallbackAllowList.from_env({}).check("https://hooks.example.com/x?token=s3cr3t")
    line = str(refused.value)
    assert "\n" not in line and CALLBACK_ALLOWED_ENV in line and "callbacks are off" in line
    assert "s3cr3t" not in line, "the query (where tokens live) is never shown"


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("hooks.example.com", "https://hooks.example.com/anything?x=1"),
        ("hooks.example.com", "http://HOOKS.example.com/"),
        ("hooks.example.com:8443", "https://hooks.example.com:8443/a"),
        ("https://hooks.example.com/voicebatch", "https://hooks.example.com/voicebatch"),
        ("https://hooks.example.com/voicebatch/", "https://hooks.example.com/voicebatch/runs/1"),
        ("https://a.example.com, https://hooks.example.com/vb", "https://hooks.example.com:443/vb/x"),
        ("a.example.com\nhttp://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb/z"),
    ],
)
def test_allowed_urls(setting: str, url: str) -> None:
    allowed(setting).check(url)


@pytest.mark.parametrize(
    ("setting", "url", "why"),
    [
        ("https://hooks.example.com/voicebatch", "https://hooks.example.com/voicebatchevil", "outside"),
        ("https://hooks.example.com/voicebatch", "https://hooks.example.com/other", "outside"),
        ("https://hooks.example.com/voicebatch", "http://hooks.example.com/voicebatch", "outside"),
        ("hooks.example.com", "https://hooks.example.com.evil.net/", "outside"),
        ("hooks.example.com", "https://hooks.example.com:8443/", "outside"),
        ("hooks.example.com", "ftp://hooks.example.com/", "only http"),
        ("hooks.example.com", "file:///etc/passwd", "only http"),
        ("hooks.example.com", "https://user:pw@hooks.example.com/", "user name or password"),
        ("hooks.example.com", "https:///nohost", "no host"),
    ],
)
def test_refused_urls(setting: str, url: str, why: str) -> None:
    with pytest.raises(CallbackRefused) as refused:
        allowed(setting).check(url)
    assert why in str(refused.value) and "\n" not in str(refused.value)
    assert "pw@" not in str(refused.value)


def test_a_malformed_setting_is_a_one_line_deployment_error() -> None:
    from voicebatch.errors import InputError

    with pytest.raises(InputError) as bad:
        allowed("hooks.example.com/path")
    assert CALLBACK_ALLOWED_ENV in str(bad.value)


# --- delivery ----------------------------------------------------------------------------------


def test_delivered_signed_once_after_two_failures_of_the_receiver() -> None:
    clock = Clock()
    with receiver([500, 500, 200]) as got:
        result = delivered(got.url(), clock)
    assert result.status == "delivered" and result.attempts == 3 and result.http_status == 200
    assert [r.status for r in got.got] == [500, 500, 200] and result.outcomes == ("500", "500", "200")
    assert all(signature_ok(SECRET, r) for r in got.got) and {r.body for r in got.got} == {b'{"a":1}'}
    assert {r.headers["x-voicebatch-delivery"] for r in got.got} == {"d1"}, "one id: a receiver drops repeats"
    assert [r.headers["x-voicebatch-attempt"] for r in got.got] == ["1", "2", "3"]
    # Full jitter (draw 0.5): half of 1 s, then half of 2 s.
    assert clock.waits == [0.5, 1.0]


def test_other_4xx_are_not_retried_and_redirects_not_followed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for status in (400, 401, 404, 422):
        with receiver([status, 200]) as got:
            result = delivered(got.url(), Clock())
        assert result.status == "failed" and result.attempts == 1 and len(got.got) == 1, status
    with receiver([200]) as target, receiver([301], {301: {"Location": target.url("/stolen")}}) as got:
        result = delivered(got.url(), Clock())
    assert result.status == "failed" and "redirect" in result.error and target.got == []
    assert ANSWER_MARKER not in caplog.text, "the receiver's answer is never logged"


def test_429_waits_its_retry_after_up_to_the_cap() -> None:
    clock = Clock()
    with receiver([429, 503, 200], {429: {"Retry-After": "7"}, 503: {"Retry-After": "999"}}) as got:
        result = delivered(got.url(), clock, RetryPolicy(cap_seconds=20.0))
    assert result.status == "delivered" and clock.waits == [7.0, 20.0]


def test_connection_errors_are_retried_within_the_bounds() -> None:
    closed = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
    clock = Clock()
    result = delivered(closed, clock, RetryPolicy(attempts=4), draw=0.999)
    assert result.status == "failed" and result.attempts == 4 and result.http_status is None
    assert all("ConnectionRefused" in o for o in result.outcomes) and "gave up after 4 tries" in result.error
    assert len(clock.waits) == 3 and all(w <= 2 ** (n) for n, w in enumerate(clock.waits))
    # The total bound: no retry starts once the next wait would pass it.
    clock = Clock()
    result = delivered(closed, clock, RetryPolicy(attempts=10, base_seconds=4.0, total_seconds=30.0), draw=0.999)
    assert sum(clock.waits) <= 30.0 and result.attempts < 10


def test_a_refused_url_sends_nothing() -> None:
    summary = {"event_id": "e1", "state": "success"}
    with receiver([200]) as got:
        result = send_callback(got.url(), summary, SECRET, allowed=allowed("https://hooks.example.com"))
        unset = send_callback(got.url(), summary, SECRET, allowed=CallbackAllowList.from_env({}))
        sent = send_callback(got.url(), summary, SECRET, allowed=allowed(f"http://127.0.0.1:{got.port}/hooks"))
    assert (result.status, unset.status, sent.status) == ("refused", "refused", "delivered")
    assert CALLBACK_ALLOWED_ENV in unset.error and len(got.got) == 1
    assert json.loads(got.got[0].body) == summary and got.got[0].body == body_bytes(summary)


# --- the summary ---------------------------------------------------------------------------------


def report(**overrides: object) -> dict:
    """A report.json as voicebatch.publish.report writes it (only the fields the summary reads)."""
    base = {
        "failed_stages": [],
        "rejected_inputs": [],
        "timings": {"started_at": "2026-12-01T00:00:00+00:00", "finished_at": "2026-12-01T00:05:00+00:00"},
        "totals": {"scripts": 1, "published": 1, "skipped": 0, "failed": 0, "held": 0, "voices_ok": 1,
                   "voices_failed": 0, "audio_seconds": 2.5, "inputs_rejected": 0, "quarantined_chunks": 1},
        "qa": {"checked": 2, "passed": 1, "quarantined": 1, "retakes": 2, "pass_rate": 0.5,
               "needs_review": ["hello"], "held": [], "notes": []},
        "scripts": [
            {"script_id": "hello", "status": "published", "output_hash": "ab12", "error": None, "duration": 2.5,
             "manifest_key": "audio/hello/ab12/manifest.json", "qa": {"needs_review": True},
             "keys": ["audio/hello/ab12/hello.wav", "audio/hello/ab12/manifest.json"],
             "quarantined": [{"index": 1}], "links": {"hello.wav": "https://presigned/secret-link"}},
        ],
    }  # fmt: skip
    return {**base, **overrides}


def uri(key: str) -> str:
    return f"s3://bucket/out/{key}"


def test_a_green_summary_names_every_output_by_uri_and_no_presigned_link() -> None:
    summary = run_summary(dag_id="voice_batch", run_id="r1", state="success", report=report(), uri_for=uri)
    assert summary["state"] == "success" and summary["failed_stage"] is None and summary["reason"] is None
    (output,) = summary["outputs"]
    assert output["manifest_uri"] == "s3://bucket/out/audio/hello/ab12/manifest.json"
    assert output["uris"]["hello.wav"] == "s3://bucket/out/audio/hello/ab12/hello.wav"
    assert output["needs_review"] and output["quarantined_chunks"] == 1
    assert summary["qa"]["quarantined"] == 1 and summary["report_uri"] == uri("runs/voice_batch/r1/report.json")
    assert "presigned" not in json.dumps(summary)
    assert summary["event_id"] == event_id("voice_batch", "r1") != event_id("voice_batch", "r2")


def test_a_red_summary_names_the_failed_stage_and_why() -> None:
    stages = [{"stage": "synthesize", "part": "0003", "error": "CUDA out of memory"}, {"stage": "publish"}]
    summary = run_summary(dag_id="d", run_id="r", state="failed", report=report(failed_stages=stages), uri_for=uri)
    assert (summary["failed_stage"], summary["reason"]) == ("synthesize[0003]", "CUDA out of memory")
    strict = run_summary(dag_id="d", run_id="r", state="failed", report=report(), uri_for=uri, strict=True)
    assert strict["failed_stage"] == "report" and strict["reason"].startswith("strict: 0 script(s)")
    assert "1 chunk(s) quarantined" in strict["reason"]
    none = run_summary(dag_id="d", run_id="r", state="failed", report=None, uri_for=None, failed_tasks=["list_voices"])
    assert none["failed_stage"] == "list_voices" and none["outputs"] == [] and none["report_uri"] is None
    with pytest.raises(ValueError):
        run_summary(dag_id="d", run_id="r", state="running", report=None, uri_for=None)
