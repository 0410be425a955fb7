"""Listed keys never become paths outside their folder; errors are classified by type."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebatch.inputs.materialize import materialize
from voicebatch.locations.retry import describe_error, is_permanent, is_transient, retrying
from voicebatch.locations.storage import MAX_KEY_BYTES, UnsafeKeyError, key_problem, local_target

# Keys built from the pieces that matter: separators, dots, backslashes, control characters.
PIECES = st.sampled_from(["a", "voice", ".", "..", "...", "/", "//", "\\", "\x00", "\n", "é", "x" * 200, " ", "~"])
KEYS = st.lists(PIECES, min_size=0, max_size=12).map("".join)


def inside(root: Path, key: str) -> bool:
    """Would ``root/key`` stay strictly inside ``root``? Computed by normalising the joined
    path as a string: an oracle independent of the code under test."""
    joined = os.path.normpath(f"{root}/{key}")
    return joined.startswith(str(root) + os.sep)


@settings(max_examples=400, deadline=None)
@given(key=KEYS)
def test_every_accepted_key_stays_inside_the_folder(tmp_path_factory: pytest.TempPathFactory, key: str) -> None:
    root = Path("/srv/voicebatch-tmp")
    problem = key_problem(key)
    if problem is None:
        assert inside(root, key), key
        assert ".." not in key.split("/") and not key.startswith("/") and "\\" not in key and "//" not in key
        assert local_target(tmp_path_factory.getbasetemp(), key).is_relative_to(tmp_path_factory.getbasetemp())
    else:
        with pytest.raises(UnsafeKeyError):
            local_target(tmp_path_factory.getbasetemp(), key)


@given(segments=st.lists(st.text(alphabet="abcXYZ019._-é", min_size=1, max_size=30), min_size=1, max_size=6))
def test_ordinary_keys_are_accepted(segments: list[str]) -> None:
    key = "/".join(segments)
    if not any(s in (".", "..") for s in segments):
        assert key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("../../etc/passwd", "'..' segment"),
        ("voices/../../x.txt", "'..' segment"),
        ("/abs/x.txt", "absolute"),
        ("a//b.txt", "empty segment"),
        ("a\\..\\b.txt", "backslash"),
        ("a/\x00.txt", "control characters"),
        ("a/" + "x" * 256, "longer than 255 bytes"),
        ("a/" * 600 + "b", f"longer than {MAX_KEY_BYTES} bytes"),
        ("", "empty"),
    ],
)
def test_hostile_keys_are_named_with_their_flaw(key: str, says: str) -> None:
    problem = key_problem(key)
    assert problem is not None and says in problem
    assert "\n" not in str(UnsafeKeyError(key, problem))


class HostileListing:
    """A storage whose listing holds hostile keys (what a shared bucket may hold)."""

    uri = "s3://shared/in"

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.fetched: list[str] = []

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.keys)

    def get_file(self, key: str, path: str | Path) -> None:
        self.fetched.append(key)
        Path(path).write_bytes(b"payload")


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(KEYS, min_size=1, max_size=8, unique=True))
def test_materialize_writes_only_inside_its_folder(tmp_path_factory: pytest.TempPathFactory, keys: list[str]) -> None:
    base = tmp_path_factory.mktemp("materialize")
    (base / "tmp").mkdir()
    storage = HostileListing(keys)
    saved, tempfile.tempdir = tempfile.tempdir, str(base / "tmp")  # a "../x" key would land in base
    try:
        with materialize("s3://shared/in", lambda uri: storage) as found:
            written = {p.relative_to(found.root).as_posix() for p in found.root.rglob("*") if p.is_file()}
    finally:
        tempfile.tempdir = saved
    left = sorted(p.relative_to(base).as_posix() for p in base.rglob("*"))
    work = f"tmp/voicebatch-work-{os.getuid()}"
    assert left == ["tmp", work], "nothing left anywhere but the (empty) known work folder"
    assert written == set(storage.fetched), "every fetched key landed at exactly root/key"
    assert not [k for k in storage.fetched if not inside(Path("/srv/x"), k)], "no escaping key was fetched"
    markers = [k for k in keys if k.endswith("/") and k not in storage.fetched]
    assert len(storage.fetched) + len(found.rejected) + len(markers) >= len(keys)
    for error in found.rejected:
        assert "\n" not in str(error) and str(error).startswith("s3://shared/in: unsafe storage key ")


def test_a_dotdot_key_lands_nowhere(tmp_path: Path) -> None:
    target = tmp_path / "escaped" / "x.txt"
    climb = "../" * (len(Path(tempfile.gettempdir()).parts) + 2)
    hostile = HostileListing([f"{climb}{str(target).lstrip('/')}", "good/take.wav"])
    with materialize("s3://shared/in", lambda uri: hostile) as found:
        assert (found.root / "good" / "take.wav").is_file()
    assert not target.exists() and hostile.fetched == ["good/take.wav"]
    (error,) = found.rejected
    assert "'..' segment" in str(error)


def client_error(code: str, status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": f"{code} happened"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "transient", "permanent"),
    [
        (client_error("SlowDown", 503), True, False),
        (client_error("500", 500), True, False),
        (client_error("InternalError", 500), True, False),
        (client_error("RequestTimeout", 400), True, False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True, False),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:9"), True, False),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), True, False),
        (ConnectionResetError(104, "Connection reset by peer"), True, False),
        (TimeoutError("timed out"), True, False),
        (client_error("NoSuchBucket", 404), False, True),
        (client_error("AccessDenied", 403), False, True),
        (client_error("InvalidAccessKeyId", 403), False, True),
        (NoCredentialsError(), False, True),
        (FileNotFoundError(2, "No such file or directory", "/in/x.wav"), False, True),
        (PermissionError(13, "Permission denied", "/out"), False, True),
        (ValueError("a bug"), False, False),
        (OSError(28, "No space left on device"), False, False),
    ],
)
def test_errors_are_classified_by_type(error: BaseException, transient: bool, permanent: bool) -> None:
    assert (is_transient(error), is_permanent(error)) == (transient, permanent)
    assert "\n" not in describe_error(error)


def test_wrapped_client_errors_keep_their_class() -> None:
    from boto3.exceptions import S3UploadFailedError

    try:
        try:
            raise client_error("NoSuchBucket", 404)
        except ClientError as e:
            raise S3UploadFailedError(f"Failed to upload x to nobucket/x: {e}")  # noqa: B904 - as boto3 does
    except S3UploadFailedError as wrapped:
        assert is_permanent(wrapped) and not is_transient(wrapped)
        assert describe_error(wrapped) == "NoSuchBucket: NoSuchBucket happened (PutObject)"


def test_a_missing_local_file_is_not_retried() -> None:
    calls = []

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError(2, "No such file or directory", "/nowhere")

    with pytest.raises(FileNotFoundError):
        retrying(missing, sleep=lambda s: None)
    assert calls == [1]
