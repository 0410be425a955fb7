"""A book in ``scripts_uri`` through the run's stages (``run_helpers.run_stages``, as the DAG's
tasks call them) against moto's S3 server: published under ``audio/<book>/<hash>/`` with the
same files ``voicebatch book`` writes for the same inputs (test_book_command's ``made``), each
MP3 sounding the same and passing ACX measured here, the M4B's three titles, the read-along
EPUB checked and synced; the ACX checker's results in the manifest and the run report. A
synthesize task that dies part way is retried and speaks only what it had not staged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.publish.report import report_prefix
from voicebatch.run.config import RunConfig
from voicebatch.run.layout import staging_prefix
from voicebatch.run.pipeline import RunSettings
from voicebatch.run.plan import plan_run
from voicebatch.run.publish import publish_run
from voicebatch.run.synthesize import synthesize_batch
from voicebatch.synthesis.engine import Engine, SynthesisParams
from voicebatch.synthesis.models import load_model_files
from voicebatch.verify.settings import VerifySettings

from acx_helpers import assert_acx, decode
from book_helpers import (
    CHAPTER_TITLES,
    NARRATOR,
    SECTIONS,
    build_epub,
    check_synced,
    epubcheck,
    m4b_chapters,
    make_book,
)
from run_helpers import FakeEngine, fake_model, make_voice, run_stages


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, demo_voices: Path) -> dict:
    return make_book(tmp_path_factory, tiny_model_dir, demo_voices)


def _inputs(root: Path, epub: Path, voice: Path) -> tuple[Path, Path]:
    voices, scripts = root / "voices", root / "scripts"
    shutil.copytree(voice, voices / voice.name)
    scripts.mkdir()
    shutil.copy(epub, scripts / epub.name)
    # The book's options beside it, as `voicebatch book` was given them (the voice: the run's only one).
    (scripts / "little-book.json").write_text(json.dumps({"narrator": NARRATOR}))
    (scripts / "note.txt").write_text("---\nvoice: nature\n---\nA script beside the book.\n")
    return voices, scripts


def _published(out, book: str) -> dict[str, str]:
    """file name -> key of the book's published outputs (its manifest included)."""
    keys = [k for k in out.list(f"audio/{book}/") if not k.endswith("latest.json")]
    return {k.rsplit("/", 1)[1]: k for k in keys}


def test_the_same_book_through_the_stages_publishes_the_same_files_to_s3(
    made: dict,
    s3_bucket: str,
    tiny_model_dir: Path,
    demo_voices: Path,
    tmp_path: Path,
) -> None:
    voices, scripts = _inputs(tmp_path, made["epub"], demo_voices / "nature")
    # What `voicebatch book` was given: NFE 4, seed 3, verification as its default (asr), one take.
    settings = RunSettings(SynthesisParams(nfe_steps=4), seed=3, verify=VerifySettings(max_takes=1))
    out = open_storage(f"s3://{s3_bucket}/out")
    files = load_model_files(tiny_model_dir)
    config = RunConfig(str(voices), str(scripts), settings)
    result = run_stages(config, out, "book-run", Engine(files, device="cpu"), model=files)
    assert result["published"]["published"] == 2 and result["published"]["failed"] == 0, result

    found = _published(out, "little-book")
    cli_files = sorted(p.name for p in made["out"].iterdir() if not p.name.endswith(".manifest.json"))
    assert sorted(found) == sorted([*cli_files, "manifest.json"])
    local = tmp_path / "published"
    local.mkdir()
    for name, key in found.items():
        out.get_file(key, local / name)
    for name in SECTIONS:
        assert_acx(local / f"{name}.mp3")
        ours, rate, _ = decode(local / f"{name}.mp3")
        theirs, _, _ = decode(made["out"] / f"{name}.mp3")
        n = min(len(ours), len(theirs))
        assert abs(len(ours) - len(theirs)) <= rate // 10, name
        assert np.corrcoef(ours[:n], theirs[:n])[0, 1] > 0.99, name  # the same narration
    assert [t for t, _, _ in m4b_chapters(local / "little-book.m4b")][1:4] == list(CHAPTER_TITLES)
    code, report = epubcheck(local / "little-book.epub")
    assert code == 0 and "ERROR" not in report, report
    check_synced(local / "little-book.epub", local, made["epub"])

    manifest = json.loads((local / "manifest.json").read_text())
    assert manifest["acx"]["passed"] and [r["path"] for r in manifest["acx"]["files"]] == [f"{s}.mp3" for s in SECTIONS]
    assert {o["key"].rsplit("/", 1)[1] for o in manifest["outputs"]} == set(cli_files)
    assert manifest["run"]["run_id"] == "book-run"
    run_report = json.loads(out.get_bytes(report_prefix("test", "book-run") + "report.json"))
    row = next(r for r in run_report["scripts"] if r["script_id"] == "little-book")
    assert row["status"] == "published" and row["acx"]["passed"] is True
    assert [f["file"] for f in row["acx"]["files"]] == [f"{s}.mp3" for s in SECTIONS]
    assert all(f["passed"] and -23 <= f["rms_dbfs"] <= -18 for f in row["acx"]["files"])
    assert run_report["totals"]["acx_failed"] == 0
    page = out.get_bytes(report_prefix("test", "book-run") + "report.html").decode()
    assert "every file passes ACX" in page and "chapter-002.mp3" in page

    again = run_stages(RunConfig(str(voices), str(scripts), settings), out, "book-run-2", FakeEngine(), model=files)
    assert again["plan"]["skipped"] == 2 and again["published"]["published"] == 0  # nothing to do twice


class DiesAfterOneBatch(FakeEngine):
    """Speaks one synthesis batch, then dies as a killed task would."""

    def synthesize(self, references, chunks, params, **kw):  # type: ignore[no-untyped-def]
        if self.spoken:
            raise RuntimeError("worker lost")
        return super().synthesize(references, chunks, params, **kw)


def test_a_book_whose_synthesize_task_died_resumes_and_publishes(tmp_path: Path) -> None:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    make_voice(voices, "ben")
    build_epub(scripts / "tale.epub", epub3=False)
    # Two voices: the book names its narrator, and asks for MP3s and the M4B only.
    (scripts / "tale.json").write_text(json.dumps({"voice": "anna", "formats": ["mp3", "m4b"]}))
    settings = RunSettings(verify=VerifySettings(mode="off"))
    config = RunConfig(str(voices), str(scripts), settings, batch_frames=512)  # several synthesis batches
    out = open_storage(str(tmp_path / "out"))
    staging = staging_prefix("r1")
    from voicebatch.run.ingest import ingest_voice, list_voice_names

    for name in list_voice_names(config, out, staging, open_storage):
        ingest_voice(name, config, out, staging, open_storage)
    planned = plan_run(config, out, staging, fake_model(), open_storage, None)
    (spec,) = planned["batches"]
    dying = DiesAfterOneBatch()
    with pytest.raises(RuntimeError, match="worker lost"):
        synthesize_batch(spec, out, staging, dying)
    staged = len([k for k in out.list(f"{staging}chunks/") if k.endswith(".json")])
    total = planned["chunks"]
    assert 0 < staged < total
    retry = FakeEngine()
    synthesize_batch(spec, out, staging, retry)
    assert len(retry.spoken) == total - staged  # only what the dead try had not staged
    assert not set(retry.spoken) & set(dying.spoken)
    published = publish_run(out, staging, settings, {"dag_id": "test", "run_id": "r1"})
    assert published["published"] == 1
    names = set(_published(out, "tale"))
    assert {"chapter-001.mp3", "tale.m4b", "manifest.json"} <= names and "tale.epub" not in names


def test_a_book_with_bad_options_fails_alone_naming_its_options_file(tmp_path: Path) -> None:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    build_epub(scripts / "tale.epub", epub3=True)
    (scripts / "tale.json").write_text(json.dumps({"master": "loud"}))
    (scripts / "note.txt").write_text("---\nvoice: anna\n---\nA script beside the book.\n")
    settings = RunSettings(verify=VerifySettings(mode="off"))
    result = run_stages(
        RunConfig(str(voices), str(scripts), settings), open_storage(str(tmp_path / "out")), "r", FakeEngine()
    )
    assert result["published"]["published"] == 1 and result["published"]["failed"] == 1
    report = json.loads((tmp_path / "out" / report_prefix("test", "r") / "report.json").read_text())
    (row,) = [r for r in report["scripts"] if r["script_id"] == "tale"]
    assert row["status"] == "failed" and "\n" not in row["error"]
    assert row["error"].startswith(f"{scripts / 'tale.json'}: unknown profile 'loud'"), row["error"]
