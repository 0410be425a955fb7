"""Model store: local hit, S3-prefix hit (real HTTP S3), checksums, one fetch for two processes, offline miss."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.synthesis.models import MODEL_FILES, ModelError


def upload(directory: Path, uri: str) -> None:
    storage = open_storage(uri)
    for relative in (*MODEL_FILES, "manifest.json"):
        storage.put_file(relative, directory / relative)


def test_local_directory_hit_is_verified_and_checksummed(tiny_model_dir: Path, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "cache", hub=False)
    files = store.resolve(str(tiny_model_dir))
    assert files.directory == tiny_model_dir and files.random_weights
    assert len(files.checksum) == 64 and store.fetched == []
    assert files.config["arch"]["dim"] == 64 and files.config["arch"]["depth"] == 2


def test_cache_hit_by_name_fetches_nothing(tiny_model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_model_dir, tmp_path / "cache" / "tiny")
    store = ModelStore(tmp_path / "cache", hub=False)
    assert store.resolve("tiny").checksum == ModelStore(hub=False).resolve(str(tiny_model_dir)).checksum
    assert store.fetched == []


def test_s3_prefix_hit_then_local_cache_hit(tiny_model_dir: Path, tmp_path: Path, s3_bucket: str) -> None:
    upload(tiny_model_dir, f"s3://{s3_bucket}/models/tiny")
    store = ModelStore(tmp_path / "cache", open_storage(f"s3://{s3_bucket}/models"), hub=False)
    files = store.resolve("tiny")
    assert store.fetched == [f"S3 models prefix s3://{s3_bucket}/models/tiny/"]
    assert files.directory == tmp_path / "cache" / "tiny"
    again = ModelStore(tmp_path / "cache", open_storage(f"s3://{s3_bucket}/models"), hub=False)
    assert again.resolve("tiny").checksum == files.checksum and again.fetched == []


def test_s3_uri_spec(tiny_model_dir: Path, tmp_path: Path, s3_bucket: str) -> None:
    upload(tiny_model_dir, f"s3://{s3_bucket}/exact/tiny")
    store = ModelStore(tmp_path / "cache", hub=False)
    assert store.resolve(f"s3://{s3_bucket}/exact/tiny").random_weights
    assert len(store.fetched) == 1


def test_a_verified_unchanged_model_is_not_hashed_again(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicebatch.synthesis import models

    copy = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (copy / models.VERIFIED_STAMP).unlink(missing_ok=True)  # start unverified
    hashed: list[str] = []
    real = models.file_sha256
    monkeypatch.setattr(models, "file_sha256", lambda path: hashed.append(Path(path).name) or real(path))
    ModelStore(tmp_path / "cache", hub=False).resolve(str(copy))
    first = len(hashed)
    ModelStore(tmp_path / "cache", hub=False).resolve(str(copy))  # a new store: another task
    assert first == len(MODEL_FILES) and len(hashed) == first
    with (copy / "vocab.txt").open("a") as f:
        f.write("x\n")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        ModelStore(tmp_path / "cache", hub=False).resolve(str(copy))


def test_checksum_mismatch_is_refused_locally(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_model_dir, tmp_path / "altered")
    with (copy / "vocoder" / "pytorch_model.bin").open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelError, match=r"pytorch_model.bin: sha256 mismatch .* refusing"):
        ModelStore(tmp_path / "cache", hub=False).resolve(str(copy))


def test_checksum_mismatch_from_s3_is_refused_and_nothing_is_cached(
    tiny_model_dir: Path, tmp_path: Path, s3_bucket: str
) -> None:
    upload(tiny_model_dir, f"s3://{s3_bucket}/models/tiny")
    open_storage(f"s3://{s3_bucket}/models/tiny").put_bytes("vocab.txt", b"not the vocabulary\n")
    store = ModelStore(tmp_path / "cache", open_storage(f"s3://{s3_bucket}/models"), hub=False)
    with pytest.raises(ModelError, match=r"vocab\.txt: sha256 mismatch"):
        store.resolve("tiny")
    assert not (tmp_path / "cache" / "tiny").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".locks")] == []


def test_two_processes_resolving_at_once_fetch_once(tiny_model_dir: Path, tmp_path: Path, s3_bucket: str) -> None:
    upload(tiny_model_dir, f"s3://{s3_bucket}/models/tiny")
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from voicebatch.locations.storage import open_storage\n"
        "from voicebatch.synthesis.model_store import ModelStore\n"
        f"store = ModelStore(Path({str(tmp_path / 'cache')!r}), open_storage('s3://{s3_bucket}/models'), hub=False)\n"
        "files = store.resolve('tiny')\n"
        "print(json.dumps({'fetched': store.fetched, 'checksum': files.checksum}))\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert sorted(len(r["fetched"]) for r in results) == [0, 1]
    assert results[0]["checksum"] == results[1]["checksum"]


def test_offline_miss_is_one_clear_error_listing_what_was_tried(
    tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = ModelStore(tmp_path / "cache", open_storage(f"s3://{s3_bucket}/models"))
    with pytest.raises(ModelError) as caught:
        store.resolve("F5TTS_v1_Base")
    message = str(caught.value)
    assert "\n" not in message
    assert "model 'F5TTS_v1_Base' not found; tried local cache" in message
    assert f"S3 models prefix s3://{s3_bucket}/models/F5TTS_v1_Base/: no manifest.json there" in message
    assert "Hugging Face hub hf://SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors: offline" in message


def test_unknown_name_and_missing_directory(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "cache")
    with pytest.raises(ModelError, match="unknown model name"):
        store.resolve("NoSuchModel")
    with pytest.raises(ModelError, match="no such directory"):
        store.resolve("./not/here")
