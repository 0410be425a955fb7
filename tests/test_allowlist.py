"""The deployment's allow-list: what a run (or the CLI in a worker) may read, write and load.

Verdicts are compared with an oracle independent of the code under test: ``os.path.realpath``
of the joined path, checked against the real root as a string prefix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebatch.locations.allowlist import AllowList, LocationRefused, place

from conftest import tree_env


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """allowed/ (with a link out and a link back in), outside/, and a link to allowed/ from outside."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "voices").mkdir(parents=True)
    outside.mkdir()
    (allowed / "out-link").symlink_to(outside)
    (allowed / "in-link").symlink_to(allowed / "voices")
    (outside / "to-allowed").symlink_to(allowed)
    return {"root": tmp_path, "allowed": allowed, "outside": outside}


def inputs(*entries: str) -> AllowList:
    return AllowList.from_env({"VOICEBATCH_ALLOWED_INPUTS": ",".join(entries)})


def refused(check, *args) -> str:
    with pytest.raises(LocationRefused) as caught:
        check(*args)
    assert "\n" not in str(caught.value)
    return str(caught.value)


PIECES = st.sampled_from(["voices", "..", ".", "out-link", "in-link", "to-allowed", "allowed", "outside", "x"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PIECES, min_size=0, max_size=6))
def test_a_location_is_allowed_exactly_when_it_really_lies_inside_an_entry(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    base = tmp_path_factory.getbasetemp() / "allow-tree"
    if not base.exists():
        (base / "allowed" / "voices").mkdir(parents=True)
        (base / "outside").mkdir()
        (base / "allowed" / "out-link").symlink_to(base / "outside")
        (base / "allowed" / "in-link").symlink_to(base / "allowed" / "voices")
        (base / "outside" / "to-allowed").symlink_to(base / "allowed")
    candidate = "/".join([str(base / "allowed"), *parts])
    real_root = os.path.realpath(base / "allowed")
    real = os.path.realpath(candidate)
    expected = real == real_root or real.startswith(real_root + os.sep)
    allowed = inputs(str(base / "allowed"))
    for uri in (candidate, f"file://{candidate}"):
        if expected:
            allowed.check_input("voices_uri", uri)
        else:
            assert "outside the locations this deployment allows for inputs" in refused(
                allowed.check_input, "voices_uri", uri
            )


def test_links_and_dotdot_cannot_lead_out(tree: dict[str, Path]) -> None:
    allowed = inputs(str(tree["allowed"]))
    allowed.check_input("voices_uri", str(tree["allowed"] / "in-link"))
    allowed.check_input("voices_uri", str(tree["outside"] / "to-allowed" / "voices"))  # really inside
    for escape in (tree["allowed"] / "out-link", tree["allowed"] / ".." / "outside", Path("/etc"), Path("/root")):
        message = refused(allowed.check_input, "scripts_uri", str(escape))
        assert message.startswith(f"scripts_uri: {escape} is outside the locations this deployment allows for inputs")
        assert message.endswith("add it to VOICEBATCH_ALLOWED_INPUTS where voicebatch runs")
    refused(allowed.check_output, "output_uri", str(tree["allowed"]))  # inputs are not outputs


@pytest.mark.parametrize(
    ("uri", "verdict"),
    [
        ("s3://media/voices", True),
        ("s3://media/voices/", True),
        ("s3://media/voices/anna", True),
        ("s3://media/voices2", False),
        ("s3://media", False),
        ("s3://other/voices", False),
        ("s3://media/voices/../output", False),
        ("s3://media/voices//x", False),
        ("s3:///voices", False),
        ("gs://media/voices", False),
        ("http://169.254.169.254/latest", False),
    ],
)
def test_s3_entries_name_a_bucket_and_key_prefix(uri: str, verdict: bool) -> None:
    allowed = inputs("s3://media/voices", "s3://whole")
    if verdict:
        allowed.check_input("voices_uri", uri)
    else:
        refused(allowed.check_input, "voices_uri", uri)
    allowed.check_input("voices_uri", "s3://whole/anything/at/all")


def test_an_airflow_deployment_that_names_nothing_allows_nothing_and_says_what_to_set() -> None:
    allowed = AllowList.from_env({}, required=True)
    message = refused(allowed.check_output, "output_uri", "/srv/elsewhere")
    assert message == (
        "output_uri: /srv/elsewhere is outside the locations this deployment allows for outputs (this deployment "
        "allows none); to allow it, add it to VOICEBATCH_ALLOWED_OUTPUTS where voicebatch runs"
    )
    assert "VOICEBATCH_MODEL_ROOTS" in refused(allowed.check_model, "/models/mine")
    allowed.check_model("F5TTS_v1_Base")  # a model name: the store's cache, S3 prefix or the hub
    assert "model name 'x;y'" in refused(allowed.check_model, "x;y")


def test_the_cli_on_a_laptop_is_unrestricted_and_in_a_worker_enforced(tmp_path: Path) -> None:
    laptop = AllowList.from_env({}, required=False)
    assert not laptop.enforced
    laptop.check_input("--voices", "/anywhere")
    worker = AllowList.from_env({"VOICEBATCH_ALLOWED_OUTPUTS": str(tmp_path)}, required=False)
    refused(worker.check_input, "--voices", "/anywhere")  # set one, and the rest allow nothing more


def test_the_deployments_own_defaults_are_allowed(tmp_path: Path) -> None:
    env = {
        "VOICEBATCH_VOICES_URI": "s3://team/voices",
        "VOICEBATCH_SCRIPTS_URI": str(tmp_path / "scripts"),
        "VOICEBATCH_OUTPUT_URI": "s3://team/output",
        "VOICEBATCH_MODELS_URI": "s3://team/models",
        "VOICEBATCH_MODEL_DIR": str(tmp_path / "cache"),
        "VOICEBATCH_MODEL": str(tmp_path / "tiny"),
    }
    allowed = AllowList.from_env(env)
    allowed.check_input("voices_uri", "s3://team/voices/anna")
    allowed.check_input("scripts_uri", str(tmp_path / "scripts" / "2026-01-01"))
    allowed.check_output("output_uri", "s3://team/output")
    refused(allowed.check_output, "output_uri", "s3://team/voices")
    for model in ("s3://team/models/mine", str(tmp_path / "cache" / "x"), str(tmp_path / "tiny")):
        allowed.check_model(model)
    refused(allowed.check_model, str(tmp_path / "scripts"))


def test_place_is_the_comparable_form() -> None:
    assert str(place("s3://b/p/q/")) == "s3://b/p/q" and str(place("s3://b")) == "s3://b"
    assert place("file:///tmp/../tmp/x").path == str(Path("/tmp/x").resolve())


def test_the_cli_in_a_worker_refuses_with_one_line_and_reads_nothing(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    (private / "creds.txt").write_text("---\nvoice: x\n---\nSECRET-cli-probe")
    env = tree_env(VOICEBATCH_ALLOWED_INPUTS=str(tmp_path / "inputs"), VOICEBATCH_ALLOWED_OUTPUTS=str(tmp_path / "o"))
    for args in (
        ["scripts", "check", str(private), "--voices", str(private)],
        ["transcripts", "convert", str(private / "creds.txt")],
        ["model", "resolve", str(private)],
        ["synth", "--voice", str(private), "--text", "Hi.", "--out", str(tmp_path / "o")],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "voicebatch.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2 and result.stdout == "", args
        assert result.stderr.count("\n") == 1 and "SECRET" not in result.stderr, result.stderr
        assert "is outside the locations this deployment allows" in result.stderr, result.stderr
        setting = "VOICEBATCH_MODEL_ROOTS" if args[0] == "model" else "VOICEBATCH_ALLOWED_INPUTS"
        assert setting in result.stderr
    assert not (tmp_path / "o").exists()
