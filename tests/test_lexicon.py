"""Pronunciation lexicon: CSV and PLS, word boundaries, case, per-voice overrides,
the manifest records its hash, and a lexicon change re-renders only the scripts it touches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebatch.inputs.scripts import Script, ScriptPart
from voicebatch.locations.storage import open_storage
from voicebatch.run.pipeline import RunSettings, plan_scripts, publish_script_outputs
from voicebatch.text.lexicon import LexiconError, load_lexicon, parse_lexicon, read_lexicon
from voicebatch.text.spoken import SpokenForm

from publish_helpers import chunk_audio, model, voice

CSV = (
    b"word,respelling,voice\nSQL,sequel,\nNguyen,win,\nAI,A I,\nnguyen,noo-yen,anna\nNew York,Noo York,\ndata,dayta,\n"
)
PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>W3C</grapheme><alias>World Wide Web Consortium</alias></lexeme>
  <lexeme><grapheme>Nguyen</grapheme><grapheme>Nguyễn</grapheme><alias>win</alias></lexeme>
</lexicon>
"""


def test_whole_words_only_and_case() -> None:
    lexicon = parse_lexicon("l.csv", CSV)
    spoken, used = lexicon.apply("SQL, sql and Sql; AIR, said, AI-based, AI's data-driven metadata New  York.")
    # "SQL" has capitals: exact case only. "data" is lower case: any case, never inside "metadata".
    assert spoken == "sequel, sql and Sql; AIR, said, A I-based, A I's dayta-driven metadata Noo York."
    assert [e.word for e in used] == ["SQL", "AI", "data", "New York"]
    assert lexicon.apply("DATA and Data")[0] == "dayta and dayta"


def test_a_voice_entry_overrides_the_project_entry_for_that_voice_only() -> None:
    lexicon = parse_lexicon("l.csv", CSV)
    assert lexicon.apply("Nguyen spoke.", "anna")[0] == "noo-yen spoke."
    assert lexicon.apply("Nguyen spoke.", "ben")[0] == "win spoke."


def test_a_folder_holds_the_project_lexicon_and_per_voice_files(tmp_path: Path) -> None:
    (tmp_path / "lexicon.pls").write_text(PLS, encoding="utf-8")
    (tmp_path / "anna.csv").write_text("word,respelling\nW3C,the consortium\n", encoding="utf-8")
    lexicon = load_lexicon(tmp_path)
    assert lexicon.apply("W3C and Nguyễn", "ben")[0] == "World Wide Web Consortium and win"
    assert lexicon.apply("W3C and Nguyễn", "anna")[0] == "the consortium and win"
    assert read_lexicon(str(tmp_path), open_storage).sha256 == lexicon.sha256


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("no_columns.csv", b"a,b\nx,y\n", "row 1: needs columns word, respelling"),
        ("empty_respelling.csv", b"word,respelling\nSQL,\n", "row 2: empty word or respelling"),
        ("duplicate.csv", b"word,respelling\nsql,a\nSQL ,b\nsql,c\n", "row 4: the same word as row 2"),
        (
            "phoneme_only.pls",
            PLS.replace("<alias>win</alias>", "<phoneme>wɪn</phoneme>").encode(),
            "lexeme 2: the lexeme has only a <phoneme>",
        ),
        ("broken.pls", b"<lexicon><lexeme>", "not valid XML"),
        ("lexicon.txt", b"x", "a lexicon is a .csv or a .pls"),
    ],
)
def test_bad_lexicons_get_one_line_naming_file_and_place(name: str, data: bytes, says: str) -> None:
    with pytest.raises(LexiconError) as error:
        parse_lexicon(name, data)
    assert str(error.value).startswith(name) and says in str(error.value) and "\n" not in str(error.value)


def _script(script_id: str, text: str) -> Script:
    return Script(script_id, f"{script_id}.txt", (ScriptPart("anna", text),))


class CountingEngine:
    """Stands in for the F5 engine: counts the chunks it is asked to speak."""

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, requests) -> list:
        self.spoken += [r.text for r in requests]
        return chunk_audio(len(requests))


def run(storage, settings: RunSettings, engine: CountingEngine) -> list:
    scripts = [
        _script("databases", "We query it with SQL. Twice."),
        _script("travel", "We flew to New York. It was late."),
        _script("plain", "Nothing to respell here."),
    ]
    plans = plan_scripts(scripts, {"anna": voice()}, model().checksum, settings, storage)
    for plan in plans:
        if not plan.published:
            audio = engine.synthesize(plan.requests)
            publish_script_outputs(storage, plan, audio, {"anna": voice()}, model().lineage(), settings)
    return plans


def test_a_lexicon_change_re_renders_only_the_scripts_it_touches(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "out"))
    first = parse_lexicon("v1.csv", b"word,respelling\nSQL,sequel\nNew York,Noo York\n")
    engine = CountingEngine()
    run(storage, RunSettings(lexicon=first), engine)
    assert len(engine.spoken) == 5 and "We query it with sequel." in engine.spoken
    # Same lexicon: nothing to speak.
    engine = CountingEngine()
    run(
        storage,
        RunSettings(lexicon=parse_lexicon("v1.csv", b"word,respelling\nSQL,sequel\nNew York,Noo York\n")),
        engine,
    )
    assert engine.spoken == []
    # SQL is respelled differently: only the script that says it is spoken again (all its chunks).
    second = parse_lexicon("v2.csv", b"word,respelling\nSQL,ess queue ell\nNew York,Noo York\n")
    engine = CountingEngine()
    plans = run(storage, RunSettings(lexicon=second), engine)
    assert engine.spoken == ["We query it with ess queue ell.", "Twice."]
    assert [p.script.id for p in plans if not p.published] == ["databases"]
    (key,) = [k for k in storage.list("audio/databases/") if k.endswith("manifest.json") and plans[0].output_hash in k]
    manifest = json.loads(storage.get_bytes(key))
    assert manifest["inputs"]["lexicon"] == {"uri": "v2.csv", "sha256": second.sha256, "entries": 2, "applied": ["SQL"]}
    assert [c["spoken"] for c in manifest["chunks"]] == ["We query it with ess queue ell.", "Twice."]
    assert manifest["chunks"][0]["text"] == "We query it with SQL."


def test_cli_applies_a_lexicon_to_the_spoken_form(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "l.csv").write_text("word,respelling\nNguyen,win\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "voicebatch.cli",
        "text",
        "normalize",
        "Nguyen has $5.",
        "--lexicon",
        str(tmp_path / "l.csv"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.stdout == "win has five dollars.\n", result.stderr
    assert SpokenForm()("Nguyen has $5.") == "Nguyen has five dollars."


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("creds.csv", b"user,hunter2-secret\nroot,x\n"),
        ("dup.csv", b"word,respelling\nhunter2-secret,a\nhunter2-secret,b\n"),
        ("only.pls", PLS.replace("<alias>win</alias>", "<phoneme>hunter2-secret</phoneme>").encode()),
        ("words.pls", PLS.replace("Nguyen", "hunter2-secret").replace("<alias>win</alias>", "").encode()),
    ],
)
def test_a_lexicon_error_names_the_place_never_the_content(name: str, data: bytes) -> None:
    with pytest.raises(LexiconError) as error:
        parse_lexicon(name, data)
    assert "hunter2-secret" not in str(error.value) and str(error.value).startswith(name)
