"""`voicebatch book` and books through the pipeline's stages, end to end with the tiny model.

The test book (tests/book_helpers.py: a title page outside the table of contents and three
short chapters) is narrated by a demo voice. What is checked is measured on the files here:
every MP3 against ACX's rules (tests/acx_helpers.py: format from the container and every frame
header, RMS, true peak, noise floor, head and tail room tone on the decoded audio), the M4B's
chapter marks and their lengths against the MP3s decoded, and the read-along EPUB by
EPUBCheck and by walking its overlays: every sentence of the three chapters, once, in order,
played from audio inside the book, inside that audio's length and on sound (not on the room
tone between sentences). The same book through the run's stages (run_helpers.run_stages,
moto's S3 server) publishes the same files, sounding the same, with the checker's results in
the manifest and the run report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebatch.cli import main as cli

from acx_helpers import assert_acx, decode
from book_helpers import (
    AUTHOR,
    CHAPTER_TITLES,
    NARRATOR,
    SECTIONS,
    TITLE,
    check_synced,
    epubcheck,
    m4b_chapters,
    make_book,
    run_cli,
)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, demo_voices: Path) -> dict:
    return make_book(tmp_path_factory, tiny_model_dir, demo_voices)


def test_the_command_writes_mp3s_an_m4b_an_epub_and_the_manifest_last(made: dict) -> None:
    assert made["code"] == 0 and made["row"]["status"] == "written", made["row"]
    names = sorted(p.name for p in made["out"].iterdir())
    assert names == sorted(
        [f"{s}.mp3" for s in SECTIONS] + ["little-book.m4b", "little-book.epub"] + ["little-book.manifest.json"]
    )
    listed = [Path(u).name for u in made["row"]["files"]]
    assert listed[-1] == "little-book.manifest.json"


def test_every_mp3_passes_acx_measured_here(made: dict) -> None:
    for name in SECTIONS:
        assert_acx(made["out"] / f"{name}.mp3")


def test_the_manifest_holds_the_checkers_results_for_every_file(made: dict) -> None:
    manifest = json.loads((made["out"] / "little-book.manifest.json").read_text())
    acx = manifest["acx"]
    assert acx["required"] is True and acx["passed"] is True and acx["failed"] == []
    assert [r["path"] for r in acx["files"]] == [f"{s}.mp3" for s in SECTIONS]
    for report in acx["files"]:
        samples, rate, _ = decode(made["out"] / report["path"])
        assert report["passed"] and {r["rule"] for r in report["rules"]} >= {"rms", "peak", "noise_floor", "head"}
        assert abs(report["duration"] - samples.shape[0] / rate) < 0.1  # it measured this file
    assert manifest["book"]["title"] == TITLE and manifest["book"]["authors"] == [AUTHOR]
    assert manifest["book"]["mastering"]["profile"] == "acx"
    for name in ("little-book.m4b", "little-book.epub", *(f"{s}.mp3" for s in SECTIONS)):
        entry = next(f for f in manifest["outputs"] if f["key"] == name)
        assert entry["size"] == (made["out"] / name).stat().st_size


def test_the_m4b_has_credits_and_the_three_titles_in_order_each_as_long_as_its_mp3(made: dict) -> None:
    chapters = m4b_chapters(made["out"] / "little-book.m4b")
    assert [t for t, _, _ in chapters] == ["Opening Credits", *CHAPTER_TITLES, "Closing Credits"]
    for (_, start, end), name in zip(chapters, SECTIONS, strict=True):
        samples, rate, _ = decode(made["out"] / f"{name}.mp3")
        assert abs((end - start) - samples.shape[0] / rate) < 0.1, name
    from mutagen.mp4 import MP4

    tags = MP4(str(made["out"] / "little-book.m4b")).tags
    assert (tags["\xa9nam"], tags["\xa9ART"], tags["\xa9wrt"], tags["stik"]) == ([TITLE], [AUTHOR], [NARRATOR], [2])


def test_the_epub_passes_epubcheck(made: dict) -> None:
    code, report = epubcheck(made["out"] / "little-book.epub")
    errors = [line for line in report.splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert code == 0 and not errors, "\n".join(errors) or report


def test_every_sentence_of_the_three_chapters_is_synced_to_audio_inside_the_book(made: dict) -> None:
    check_synced(made["out"] / "little-book.epub", made["out"], made["epub"])


def test_asking_again_skips_the_book(made: dict) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in made["out"].iterdir()}
    code, row = run_cli(made["argv"])
    assert code == 0 and row["status"] == "skipped" and row["acx_passed"] is True
    assert {p.name: p.stat().st_mtime_ns for p in made["out"].iterdir()} == before


def test_a_file_that_is_not_a_book_is_one_line_naming_it(tmp_path: Path, demo_voices: Path, capsys) -> None:
    bad = tmp_path / "broken.epub"
    bad.write_bytes(b"not a zip")
    code = cli.main(["book", str(bad), "--voice", str(demo_voices / "nature"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "broken.epub" in err[0], err


def test_publishing_to_s3_with_another_profile_and_fewer_formats(made: dict, s3_bucket: str) -> None:
    """`--out s3://` publishes through the protocol (manifest last, latest.json); `--master
    podcast` keeps the synthesis rate and is not held to ACX's rules; `--formats mp3,m4b`
    writes no EPUB."""
    from voicebatch.locations.storage import open_storage

    argv = [a for a in made["argv"]]
    argv[argv.index("--out") + 1] = f"s3://{s3_bucket}/out"
    code, row = run_cli([*argv, "--master", "podcast", "--formats", "m4b,mp3"])
    assert code == 0 and row["status"] == "published", row
    out = open_storage(f"s3://{s3_bucket}/out")
    prefix = f"audio/little-book/{row['output_hash']}/"
    names = sorted(k[len(prefix) :] for k in out.list(prefix))
    assert names == sorted([f"{s}.mp3" for s in SECTIONS] + ["little-book.m4b", "manifest.json"])
    assert row["files"][-1].endswith(prefix + "manifest.json")
    assert json.loads(out.get_bytes("audio/little-book/latest.json"))["output_hash"] == row["output_hash"]
    manifest = json.loads(out.get_bytes(prefix + "manifest.json"))
    assert manifest["book"]["mastering"]["profile"] == "podcast" and manifest["acx"]["required"] is False
    local = made["out"].parent / "from-s3.mp3"
    out.get_file(prefix + "chapter-002.mp3", local)
    _, rate, _ = decode(local)
    assert rate == 24_000  # as synthesized: podcast does not resample
    assert row["output_hash"] != made["row"]["output_hash"]
