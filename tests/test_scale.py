"""Cost that does not grow with what is not needed, against a real HTTP S3 endpoint:
the voices listing downloads no audio, each voice task downloads its own voice only, planning
reads a model's manifest and never its weights, and mapped stages stay under max_map_length.

Downloads are counted on the S3 client (every GetObject the code sends, by key), never taken
from the code's own account of what it did."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from voicebatch.errors import InputError
from voicebatch.locations import storage as storage_module
from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.ingest import ingest_voice, ingest_voices, list_voice_names, task_groups
from voicebatch.run.layout import staging_prefix
from voicebatch.run.plan import plan_run
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.synthesis.models import MODEL_FILES

from run_helpers import fake_model, make_voice

WEIGHTS = ("model.safetensors", "vocoder/pytorch_model.bin")


@pytest.fixture
def requests(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Counter]:
    """Every S3 client the code builds counts its GetObject requests (by key) and its listings
    (by prefix) here."""
    counted = {"GetObject": Counter(), "ListObjectsV2": Counter()}
    real = storage_module.s3_client

    def counting_client(*args, **kwargs):
        client = real(*args, **kwargs)
        client.meta.events.register(
            "before-parameter-build.s3.GetObject", lambda params, **_: counted["GetObject"].update([params["Key"]])
        )
        client.meta.events.register(
            "before-parameter-build.s3.ListObjectsV2",
            lambda params, **_: counted["ListObjectsV2"].update([params.get("Prefix", "")]),
        )
        return client

    monkeypatch.setattr(storage_module, "s3_client", counting_client)
    return counted


@pytest.fixture
def gets(requests: dict[str, Counter]) -> Counter:
    return requests["GetObject"]


def upload_tree(local: Path, uri: str) -> list[str]:
    storage = open_storage(uri)
    keys = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    for key in keys:
        storage.put_file(key, local / key)
    return keys


@pytest.fixture
def s3_voices(tmp_path: Path, s3_bucket: str) -> str:
    """Five voices on S3: folders, a flat pair, a prepared voice (voice.json), and a hostile key."""
    local = tmp_path / "voices"
    for name in ("anna", "ben", "cleo", "dora"):
        make_voice(local, name)
    make_voice(tmp_path / "flat", "eve")
    for path in (tmp_path / "flat" / "eve").iterdir():
        path.rename(local / f"eve{path.suffix}")
    uri = f"s3://{s3_bucket}/voices"
    upload_tree(local, uri)
    open_storage(uri).put_bytes("../escape.srt", b"1\n00:00:00,000 --> 00:00:01,000\nX.\n")
    return uri


def test_listing_voices_downloads_no_audio_and_a_voice_task_only_its_own(
    s3_voices: str, s3_bucket: str, requests: dict[str, Counter], tmp_path: Path
) -> None:
    gets, listings = requests["GetObject"], requests["ListObjectsV2"]
    out, staging = open_storage(str(tmp_path / "out")), staging_prefix("r")
    config = RunConfig(s3_voices, f"s3://{s3_bucket}/scripts")
    # A prepared voice (registered elsewhere, copied in): its voice.json names it.
    prepared = tmp_path / "prepared"
    make_voice(tmp_path / "raw", "finn")
    ingest_voice("finn", RunConfig(str(tmp_path / "raw"), "x"), open_storage(str(prepared)), "s/", open_storage)
    (registered,) = [p.parent for p in prepared.rglob("voice.json")]
    for path in registered.iterdir():
        open_storage(s3_voices).put_file(f"finn/{path.name}", path)

    names = list_voice_names(config, out, staging, open_storage)
    assert names == ["anna", "ben", "cleo", "dora", "eve", "finn"]
    assert dict(gets) == {"voices/finn/voice.json": 1}, "the listing reads names, not recordings"
    listing = json.loads(out.get_bytes(f"{staging}voices.json"))
    assert len(listing["rejected"]) == 1 and "'..' segment" in listing["rejected"][0], "keys are still checked"

    for name in ("ben", "eve", "finn"):
        gets.clear()
        listings.clear()
        ingest_voice(name, config, out, staging, open_storage)
        own = {k for k in gets if k.startswith((f"voices/{name}/", f"voices/{name}."))}
        assert set(gets) == own and len(own) >= 2, f"{name} downloaded {sorted(gets)}"
        assert all(n == 1 for n in gets.values())
        assert dict(listings) == {f"voices/{name}": 1}, "only the voice's own keys are listed"


def test_a_group_of_voices_is_ingested_whole_and_names_every_bad_voice(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    for name in ("anna", "ben", "cleo"):
        make_voice(voices, name)
    (voices / "ben" / "take.srt").unlink()
    (voices / "zed").mkdir()
    out, staging = open_storage(str(tmp_path / "out")), staging_prefix("g")
    config = RunConfig(str(voices), str(tmp_path))
    with pytest.raises(InputError, match=r"2 of 4 voices unusable: .*ben.*no transcript.*zed.*no recording"):
        ingest_voices(["anna", "ben", "cleo", "zed"], config, out, staging, open_storage)
    records = {k.rsplit("/", 1)[1]: json.loads(out.get_bytes(k)) for k in out.list(f"{staging}voices/")}
    assert {k: r["status"] for k, r in records.items()} == {
        "anna.json": "ok",
        "ben.json": "error",
        "cleo.json": "ok",
        "zed.json": "error",
    }, "the good voices of a group with bad ones are registered"
    assert len(out.list("voices/")) == 2 * 3  # reference.wav, reference.txt, voice.json each
    with pytest.raises(InputError) as single:
        ingest_voices(["ben"], config, out, staging, open_storage)
    assert "voices unusable" not in str(single.value) and "no transcript" in str(single.value)


@pytest.mark.parametrize(("count", "limit", "sizes"), [(5, 8, [1] * 5), (8, 8, [1] * 8), (20, 8, [3] * 6 + [2])])
def test_task_groups_stay_under_the_limit(count: int, limit: int, sizes: list[int]) -> None:
    items = [f"v{i:02d}" for i in range(count)]
    groups = task_groups(items, limit)
    assert [len(g) for g in groups] == sizes and len(groups) <= limit
    assert [i for g in groups for i in g] == items


def test_plan_caps_synthesize_tasks_at_max_tasks(tmp_path: Path) -> None:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    for n in range(11):
        (scripts / f"s{n:02d}.txt").write_text(f"---\nvoice: anna\n---\nSentence number {n} is spoken.")
    out, staging = open_storage(str(tmp_path / "out")), staging_prefix("cap")
    for limit, expected in ((100, 11), (4, 4)):
        config = RunConfig(str(voices), str(scripts), chunks_per_task=1, max_tasks=limit)
        list_voice_names(config, out, staging, open_storage)
        ingest_voice("anna", config, out, staging, open_storage)
        planned = plan_run(config, out, staging, fake_model(), open_storage, None)
        specs = [json.loads(out.get_bytes(k)) for k in planned["batches"]]
        assert len(specs) == expected and planned["chunks"] == 11
        assert sorted(r["key"] for s in specs for r in s["requests"]) == sorted(
            json.loads(out.get_bytes(f"{staging}plan.json"))["scripts"][i]["requests"][0]["key"] for i in range(11)
        ), "every chunk in exactly one task"


def upload_model(directory: Path, uri: str) -> None:
    storage = open_storage(uri)
    for relative in (*MODEL_FILES, "manifest.json"):
        storage.put_file(relative, directory / relative)


def test_planning_with_an_s3_model_downloads_no_weight_file(
    tiny_model_dir: Path, tmp_path: Path, s3_bucket: str, gets: Counter
) -> None:
    exact = f"s3://{s3_bucket}/exact/tiny"
    upload_model(tiny_model_dir, exact)
    upload_model(tiny_model_dir, f"s3://{s3_bucket}/models/tiny")
    full = ModelStore(tmp_path / "other-cache", hub=False).resolve(str(tiny_model_dir))  # reads the files here
    cache = tmp_path / "cache"

    gets.clear()
    manifest = ModelStore(cache, hub=False).manifest(exact)
    # The small files only: the manifest and both configs (checked against their schemas), no weights.
    configs = ("manifest.json", "model.yaml", "vocoder/config.yaml")
    assert dict(gets) == {f"exact/tiny/{name}": 1 for name in configs}
    assert manifest.lineage() == full.lineage() and manifest.checksum == full.checksum

    gets.clear()
    prefix = open_storage(f"s3://{s3_bucket}/models")
    by_name = ModelStore(cache, prefix, hub=False).manifest("tiny")
    assert dict(gets) == {f"models/tiny/{name}": 1 for name in configs}
    assert by_name.checksum == full.checksum
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.name in {Path(w).name for w in WEIGHTS}]

    # The plan stage with that manifest: output hashes and lineage from it, no weights.
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    (scripts / "hello.txt").write_text("---\nvoice: anna\n---\nHello there.")
    out, staging = open_storage(str(tmp_path / "out")), staging_prefix("p")
    config = RunConfig(str(voices), str(scripts))
    list_voice_names(config, out, staging, open_storage)
    ingest_voice("anna", config, out, staging, open_storage)
    gets.clear()
    plan_run(config, out, staging, ModelStore(cache, hub=False).manifest(exact), open_storage, None)
    assert not [k for k in gets if k.endswith(WEIGHTS)]
    assert json.loads(out.get_bytes(f"{staging}plan.json"))["model"] == full.lineage()
    # The synthesize task resolves the same model in full: the same identity.
    assert ModelStore(cache, hub=False).resolve(exact).checksum == manifest.checksum


def test_a_model_cached_locally_gives_its_manifest_without_hashing_the_weights(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from voicebatch.synthesis import models

    copy = shutil.copytree(tiny_model_dir, tmp_path / "cache" / "tiny", copy_function=shutil.copy)
    (copy / models.VERIFIED_STAMP).unlink(missing_ok=True)  # never checked: resolve() would hash it all
    hashed: list[str] = []
    real = models.file_sha256
    monkeypatch.setattr(models, "file_sha256", lambda path: hashed.append(Path(path).name) or real(path))
    store = ModelStore(tmp_path / "cache", hub=False)
    expected = models.weights_checksum(json.loads((tiny_model_dir / "manifest.json").read_text())["files"])
    assert store.manifest(str(copy)).checksum == store.manifest("tiny").checksum == expected
    assert hashed == []
    with pytest.raises(models.ModelError, match="no such directory"):
        store.manifest("/no/such/dir")
    with pytest.raises(models.ModelError, match="not found; tried local cache"):
        store.manifest("not-a-model")
