"""One storage interface, two backends: a local directory and S3 (moto's server on 127.0.0.1).

The same contract for both: keys relative to the root, listing, files in and out, deleting a
prefix, links; plus each backend's own promise (local: write to a temporary file, then rename;
S3: see test_publish.py for multipart and retries).
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from voicebatch.locations.retry import is_transient
from voicebatch.locations.storage import LocalStorage, open_storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return open_storage(f"file://{tmp_path}/root")
    bucket = request.getfixturevalue("s3_bucket")
    return open_storage(f"s3://{bucket}/root/")


def stored_content_type(storage, key: str) -> str | None:
    """The object's content type on S3 (a local file has none)."""
    if isinstance(storage, LocalStorage):
        return None
    return storage.client.head_object(Bucket=storage.bucket, Key=storage._key(key))["ContentType"]


def test_keys_round_trip_and_list_under_a_prefix(storage, tmp_path: Path) -> None:
    storage.put_bytes("a/b/one.txt", b"1", "text/plain")
    if isinstance(storage, LocalStorage):  # the file:// URI names this directory
        assert (tmp_path / "root" / "a" / "b" / "one.txt").read_bytes() == b"1"
    else:
        assert stored_content_type(storage, "a/b/one.txt") == "text/plain"
    storage.put_bytes("a/two.txt", b"22")
    storage.put_bytes("c.txt", b"333")
    assert storage.get_bytes("a/b/one.txt") == b"1" and storage.get_bytes("c.txt") == b"333"
    assert storage.list("") == storage.list() == ["a/b/one.txt", "a/two.txt", "c.txt"]
    assert storage.uri in (str(tmp_path / "root"), storage.uri_for("").rstrip("/"))
    assert storage.list("a/") == ["a/b/one.txt", "a/two.txt"] and storage.list("nothing/") == []
    assert storage.exists("a/two.txt") and not storage.exists("a/three.txt") and not storage.exists("a")
    storage.put_bytes("c.txt", b"replaced")
    assert storage.get_bytes("c.txt") == b"replaced"


def test_files_in_and_out(storage, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3000))
    storage.put_file("x/in.bin", source, "application/octet-stream")
    storage.get_file("x/in.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    assert stored_content_type(storage, "x/in.bin") in (None, "application/octet-stream")
    storage.put_file("x/page.html", source, "text/html")
    assert stored_content_type(storage, "x/page.html") in (None, "text/html")


def test_delete_prefix_removes_only_that_prefix(storage) -> None:
    for key in ("run/1/a", "run/1/b/c", "run/2/a", "keep/a"):
        storage.put_bytes(key, b"x")
    assert storage.delete_prefix("run/1/") == 2
    assert storage.list("") == ["keep/a", "run/2/a"]
    assert storage.delete_prefix("absent/") == 0


def test_links_fetch_the_object(storage) -> None:
    storage.put_bytes("audio/a.wav", b"RIFF....")
    with urllib.request.urlopen(storage.presign("audio/a.wav")) as response:
        assert response.read() == b"RIFF...."
    assert storage.uri_for("audio/a.wav").endswith("root/audio/a.wav")


def test_local_writes_land_whole_and_leave_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("out/a.txt", b"old")

    real_fdopen = os.fdopen
    written_to: list[Path] = []

    class HalfWritten:  # the disk fills up half-way through the write
        def __init__(self, fd: int, mode: str) -> None:
            self.file = real_fdopen(fd, mode)

        def __enter__(self) -> HalfWritten:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            # The temporary file sits beside the target: the rename stays on one filesystem (atomic).
            written_to.append(Path(f"/proc/self/fd/{self.file.fileno()}").readlink())
            self.file.write(data[: len(data) // 2])
            self.file.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", HalfWritten)
    with pytest.raises(OSError, match="No space"):
        storage.put_bytes("out/a.txt", b"new contents")
    monkeypatch.undo()
    assert written_to and written_to[0].parent == tmp_path / "out" and written_to[0].name.endswith(".part")
    assert storage.get_bytes("out/a.txt") == b"old", "a failed write never replaces the object"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"], "no temporary file is left"
    assert (tmp_path / "out" / "a.txt").stat().st_mode & 0o777 == 0o644


def test_local_listing_skips_writes_in_progress_and_delete_leaves_no_empty_folders(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("run/x/a.txt", b"1")
    (tmp_path / "run" / "x" / ".b.txt.123.part").write_bytes(b"half")  # another writer, not done yet
    assert storage.list("run/") == ["run/x/a.txt"]
    (tmp_path / "run" / "x" / ".b.txt.123.part").unlink()
    storage.put_bytes("keep.txt", b"2")
    assert storage.delete_prefix("run/") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_plain_path_and_a_file_uri_name_the_same_directory(tmp_path: Path) -> None:
    open_storage(str(tmp_path / "out")).put_bytes("a.txt", b"1")
    assert open_storage(f"file://{tmp_path}/out").get_bytes("a.txt") == b"1"
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"1"


def test_local_keys_cannot_leave_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(ValueError, match=r"'\.\.' is not allowed"):
        storage.put_bytes("../escape.txt", b"x")
    assert not (tmp_path / "escape.txt").exists()


def client_error(code: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}}, "PutObject")


@pytest.mark.parametrize("code", ["500", "503", "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"])
def test_throttling_and_server_errors_are_transient(code: str) -> None:
    assert is_transient(client_error(code))


@pytest.mark.parametrize("code", ["AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "404"])
def test_permissions_and_missing_things_are_permanent(code: str) -> None:
    assert not is_transient(client_error(code))


def test_a_dropped_connection_is_transient_a_bug_is_not() -> None:
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert is_transient(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"))
    assert not is_transient(ValueError("a bug")) and not is_transient(KeyError("a bug"))
    from botocore.exceptions import ClientError

    assert not is_transient(ClientError({}, "PutObject")), "an error without a code is not retried"


def test_s3_at_the_bucket_root(s3_bucket: str) -> None:
    storage = open_storage(f"s3://{s3_bucket}")
    storage.put_bytes("a.txt", b"1")
    assert storage.uri == f"s3://{s3_bucket}" and storage.list() == ["a.txt"] and storage.get_bytes("a.txt") == b"1"
    assert storage.uri_for("a.txt") == f"s3://{s3_bucket}/a.txt"


def test_s3_lists_and_deletes_past_a_thousand_objects(s3_bucket: str) -> None:
    """A big run stages more than 1,000 chunks: listing pages through them, deleting takes batches of
    at most 1,000 keys (S3's limit for DeleteObjects)."""
    from concurrent.futures import ThreadPoolExecutor

    from voicebatch.locations.storage import s3_client

    client = s3_client()
    deletes: list[int] = []
    client.meta.events.register(
        "provide-client-params.s3.DeleteObjects", lambda params, **_: deletes.append(len(params["Delete"]["Objects"]))
    )
    storage = open_storage(f"s3://{s3_bucket}/staging", client=client)
    keys = [f"chunks/{i:04d}.json" for i in range(1001)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: storage.put_bytes(k, b"{}"), keys))
    storage.put_bytes("plan.json", b"{}")
    assert storage.list("chunks/") == keys
    assert storage.delete_prefix("chunks/") == 1001 and deletes == [1000, 1]
    assert storage.list() == ["plan.json"]


def test_s3_files_go_multipart_past_the_threshold(s3_bucket: str, tmp_path: Path) -> None:
    import hashlib

    from voicebatch.locations.storage import s3_client

    client = s3_client()
    storage = open_storage(f"s3://{s3_bucket}/models", client=client, multipart_threshold=64 * 1024)
    source = tmp_path / "model.safetensors"
    source.write_bytes(os.urandom(100 * 1024))
    storage.put_file("model.safetensors", source)
    etag = client.head_object(Bucket=s3_bucket, Key="models/model.safetensors")["ETag"].strip('"')
    one_part = hashlib.md5(hashlib.md5(source.read_bytes()).digest()).hexdigest() + "-1"
    assert etag == one_part, "one 64 MiB part, through the transfer manager"
    storage.get_file("model.safetensors", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == source.read_bytes()
