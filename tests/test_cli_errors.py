"""Every user-facing error of the `voicebatch` command: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port

NO_AWS = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "HF_HUB_OFFLINE": "1"}


def voicebatch(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**base, **NO_AWS, **(env or {})},
        timeout=300,
    )


def the_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line; log lines (synth logs its progress) may come before it."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert result.stderr.endswith(errors[0] + "\n"), "the error is the last thing said"
    return errors[0]


@pytest.fixture(scope="module")
def moto_env(s3_endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_synth_to_a_missing_bucket(demo_voices: Path, tiny_model_dir: Path, moto_env: dict, tmp_path: Path) -> None:
    options = ("--model", tiny_model_dir, "--nfe", "8", "--device", "cpu", "--out", "s3://no-such-bucket/x")
    result = voicebatch("synth", "--voice", demo_voices / "nature", "--text", "Hello.", *options, env=moto_env)
    error = the_error(result)
    assert error.startswith("error: s3://no-such-bucket/x: NoSuchBucket: ") and "no-such-bucket" in error
    assert S3_SECRET_KEY not in result.stderr


def test_a_device_that_is_not_there(demo_voices: Path, tmp_path: Path) -> None:
    import torch

    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    out = tmp_path / "out"
    result = voicebatch("synth", "--voice", demo_voices / "nature", "--text", "Hi.", "--device", device, "--out", out)
    assert the_error(result).startswith(f"error: --device: {device}: ")
    assert not out.exists(), "nothing was started"


def test_a_vocabulary_that_is_not_there(demo_voices: Path) -> None:
    error = the_error(voicebatch("voices", "check", demo_voices, "--vocab", "/nonexistent/vocab.txt"))
    assert error.startswith("error: /nonexistent/vocab.txt: no such vocabulary file")


def test_model_resolve_without_credentials(tmp_path: Path, moto_env: dict) -> None:
    env = {"VOICEBATCH_MODEL_DIR": str(tmp_path / "models"), "AWS_ENDPOINT_URL": moto_env["AWS_ENDPOINT_URL"]}
    error = the_error(voicebatch("model", "resolve", "F5TTS_v1_Base", "--s3-prefix", "s3://models/base", env=env))
    assert error == "error: s3://models/base: NoCredentialsError: Unable to locate credentials"


def test_model_resolve_with_a_dead_endpoint(tmp_path: Path, moto_env: dict) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**moto_env, "AWS_ENDPOINT_URL": dead, "VOICEBATCH_MODEL_DIR": str(tmp_path / "models")}
    error = the_error(voicebatch("model", "resolve", "F5TTS_v1_Base", "--s3-prefix", "s3://models/base", env=env))
    assert error.startswith("error: s3://models/base: EndpointConnectionError: ") and dead in error
    assert "models/base/F5TTS_v1_Base/manifest.json" in error, "the key it was reaching for"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("transcripts", "convert", "/nonexistent/take.srt"),
            "error: /nonexistent/take.srt: cannot read the file: No such file",
        ),
        (("transcripts", "convert", "{tmp}"), "error: {tmp}: "),
        (("voices", "check", "/nonexistent/voices"), "error: /nonexistent/voices: not a directory of voices"),
        (("scripts", "check", "{tmp}", "--voices", "/nonexistent"), "error: /nonexistent: not a directory of voices"),
        (("model", "resolve", "/nonexistent/model"), "error: model '/nonexistent/model': no such directory"),
        (("synth", "--voice", "/nonexistent/v", "--text", "Hi.", "--out", "{tmp}"), "error: /nonexistent/v: no voice"),
    ],
)
def test_unreadable_inputs(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    result = voicebatch(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert the_error(result).startswith(says.replace("{tmp}", str(tmp_path)))
    assert result.stdout == ""
