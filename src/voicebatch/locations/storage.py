"""One storage interface over a local directory and S3-compatible object stores.

URIs: a plain path or ``file://`` URI (local), or ``s3://bucket/prefix`` (AWS S3, Backblaze
B2, MinIO, ...; the endpoint comes from the client, e.g. ``AWS_ENDPOINT_URL``). Keys are
``/``-separated and relative to the root the URI names.

Writes are atomic: a local write goes to a temporary file in the same directory and is
renamed into place; an S3 PUT (multipart included) becomes visible only when complete.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from botocore.client import BaseClient as S3Client

log = logging.getLogger(__name__)


# Bounded retries with backoff for throttling and 5xx, the same on every S3-compatible store.
S3_RETRIES = {"mode": "standard", "max_attempts": 5}


# Objects this large or larger go multipart through boto3's transfer manager, in parts of
# this size (S3 allows at most 10,000 parts: 640 GiB). Tests lower the threshold.
MULTIPART_THRESHOLD = 64 * 1024 * 1024


MULTIPART_PART_SIZE = 64 * 1024 * 1024


PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's longest: 7 days


# What a key read from a listing may look like before it becomes a local path: S3 allows
# 1,024 bytes per key; a local file name is at most 255 bytes (NAME_MAX).
MAX_KEY_BYTES = 1024


MAX_SEGMENT_BYTES = 255


def key_problem(key: str) -> str | None:
    """Why a listed key (relative to its storage root) cannot safely become a local path
    under a folder, or None when it can: no '..' or '.' segments, not absolute, no empty
    segments, no backslashes or control characters, within the length limits."""
    if not key:
        return "is empty"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "contains control characters"
    if "\\" in key:
        return "contains a backslash"
    if key.startswith("/"):
        return "is absolute (starts with '/')"
    segments = key.split("/")
    if any(s in (".", "..") for s in segments):
        return "has a '.' or '..' segment"
    if "" in segments:
        return "has an empty segment ('//' or a trailing '/')"
    if any(len(s.encode("utf-8")) > MAX_SEGMENT_BYTES for s in segments):
        return f"has a segment longer than {MAX_SEGMENT_BYTES} bytes"
    return None


class UnsafeKeyError(ValueError):
    """A listed key that must not become a local path."""

    def __init__(self, key: str, problem: str) -> None:
        shown = repr(key) if len(key) <= 120 else f"{key[:100]!r}... ({len(key)} characters)"
        self.key = key
        self.problem = problem
        super().__init__(f"unsafe storage key {shown}: {problem}")


def local_target(root: Path, key: str) -> Path:
    """``root/key`` for a listed key, checked by ``key_problem`` and, as a second guard, by
    where the path resolves. Raises ``UnsafeKeyError``."""
    if problem := key_problem(key):
        raise UnsafeKeyError(key, problem)
    target = root.joinpath(*key.split("/"))
    if not target.resolve().is_relative_to(root.resolve()):
        raise UnsafeKeyError(key, "resolves outside the folder it is copied to")
    return target


class Storage(Protocol):
    uri: str

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...
    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_file(self, key: str, path: str | Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def walk(self, prefix: str = "") -> Iterator[tuple[str, int]]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def uri_for(self, key: str) -> str: ...
    def presign(self, key: str, expires: int = PRESIGN_SECONDS) -> str: ...


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def local_path(uri: str) -> Path:
    """The directory a plain path or ``file://`` URI names."""
    return Path(uri[7:] if uri.startswith("file://") else uri)


def open_storage(uri: str, *, client: S3Client | None = None, multipart_threshold: int | None = None) -> Storage:
    """Storage for a URI; S3 uses ``client`` or one built from the standard AWS environment."""
    if is_s3_uri(uri):
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise ValueError(f"{uri}: no bucket in the S3 URI")
        return S3Storage(client or s3_client(), bucket, prefix.strip("/"), multipart_threshold=multipart_threshold)
    return LocalStorage(local_path(uri))


def s3_client(endpoint_url: str | None = None, region_name: str | None = None, **credentials: str) -> S3Client:
    """A boto3 S3 client with bounded retries; None arguments fall back to the AWS env vars."""
    import boto3
    from botocore.config import Config

    # SigV4 everywhere: presigned links then carry no legacy signature and expire within 7 days.
    config = Config(
        retries=S3_RETRIES, signature_version="s3v4", s3={"addressing_style": "path"} if endpoint_url else {}
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=region_name,
        config=config,
        **credentials,
    )


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if any(p == ".." for p in parts):
            raise ValueError(f"{key}: '..' is not allowed in a storage key")
        return self.root.joinpath(*parts)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._put(key, lambda f: f.write(data))

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> None:
        """Copied in 1 MiB blocks: a book's audio is never read into memory whole."""
        with Path(path).open("rb") as source:
            self._put(key, lambda f: shutil.copyfileobj(source, f, 1 << 20))

    def _put(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
            Path(tmp).chmod(0o644)  # mkstemp creates 0600; outputs are meant to be shared
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def get_file(self, key: str, path: str | Path) -> None:
        Path(path).write_bytes(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix)
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.endswith(".part")
        )

    def walk(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """(key, size) of every file under ``prefix``, as found (a caller may stop early)."""
        for key in self.list(prefix):
            yield key, self._path(key).stat().st_size

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        base = self._path(prefix)
        if base.is_dir():  # no empty folders left behind (S3 has none to leave)
            for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if not any(folder.iterdir()):
                    folder.rmdir()
            if not any(base.iterdir()):
                base.rmdir()
        return len(keys)

    def uri_for(self, key: str) -> str:
        return str(self._path(key))

    def presign(self, key: str, expires: int = PRESIGN_SECONDS) -> str:
        return self._path(key).resolve().as_uri()  # a local file needs no signature


class S3Storage:
    def __init__(
        self, client: S3Client, bucket: str, prefix: str = "", *, multipart_threshold: int | None = None
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.multipart_threshold = multipart_threshold or MULTIPART_THRESHOLD

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _transfer(self) -> object:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=self.multipart_threshold, multipart_chunksize=MULTIPART_PART_SIZE)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        if len(data) < self.multipart_threshold:  # one PUT: no transfer-manager threads for small objects
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
            return
        # Multipart: the object appears only at CompleteMultipartUpload; a failed part aborts the upload.
        self.client.upload_fileobj(
            io.BytesIO(data), self.bucket, self._key(key), ExtraArgs=extra or None, Config=self._transfer()
        )

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else None
        self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=extra, Config=self._transfer())

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def get_file(self, key: str, path: str | Path) -> None:
        self.client.download_file(self.bucket, self._key(key), str(path), Config=self._transfer())

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(keys)

    def walk(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, page by page: a caller that stops
        early (a listing past its limit) has asked for no more pages than it read."""
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", []):
                yield item["Key"][strip:], item["Size"]

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def presign(self, key: str, expires: int = PRESIGN_SECONDS) -> str:
        """A time-limited GET link: listeners need no credentials and see no secret."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires
        )
