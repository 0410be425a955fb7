"""Scripts: every file kind, voice tags, validation with one-line errors, chunking rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebatch.inputs.chunking import max_chunk_bytes, pack_sentences, split_sentences, utf8_len
from voicebatch.inputs.scripts import chunk_script, load_scripts
from voicebatch.inputs.vocab import Vocabulary, load_vocabulary

VOICES = {"anna", "ben"}


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_file_kind_with_front_matter_rows_and_speed(tmp_path: Path) -> None:
    write(tmp_path, "intro.md", "---\nvoice: anna\nspeed: 1.2\n---\n# Title\n\nSome **bold** [link](http://x).\n")
    write(
        tmp_path,
        "rows.jsonl",
        '{"id": "j1", "voice": "ben", "text": "From JSON."}\n\n{"id": "j2", "text": "[anna] Hi."}\n',
    )
    write(tmp_path, "rows.csv", 'id,voice,text,speed\nc1,ben,"Commas, inside.",0.8\n')
    scripts, problems = load_scripts(tmp_path, VOICES)
    assert problems == []
    by_id = {s.id: s for s in scripts}
    assert by_id["intro"].parts[0].text == "Title.\n\nSome bold link." and by_id["intro"].speed == 1.2
    assert by_id["j1"].voices == ("ben",) and by_id["j2"].voices == ("anna",)
    assert by_id["c1"].speed == 0.8 and by_id["c1"].parts[0].text == "Commas, inside."


def test_text_without_a_voice_uses_the_only_voice_else_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "plain.txt", "“Curly” quotes   and\nspaces.")
    (only,), _ = load_scripts(tmp_path, {"anna"})
    assert only.parts[0].voice == "anna" and only.parts[0].text == '"Curly" quotes and spaces.'
    _, (problem,) = load_scripts(tmp_path, VOICES)
    assert "no voice" in str(problem)


def test_multi_voice_tags_switch_voice(tmp_path: Path) -> None:
    write(tmp_path, "story.txt", '---\nvoice: anna\n---\nOpening line. [ben] "Hello!" [anna] Closing.')
    (script,), _ = load_scripts(tmp_path, VOICES)
    assert [(p.voice, p.text) for p in script.parts] == [
        ("anna", "Opening line."),
        ("ben", '"Hello!"'),
        ("anna", "Closing."),
    ]


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("a.txt", "---\nvoice: carl\n---\nHi.", "a.txt: unknown voice 'carl'"),
        (
            "b.txt",
            "---\nvoice: anna\n---\nHi.\nThen [carl] speaks.",
            "b.txt: line 5: unknown voice 'carl' in tag [carl]",
        ),
        ("c.txt", "---\nvoice: anna\n---\n   \n", "c.txt: no text to speak"),
        (
            "d.txt",
            "---\nvoice: anna\n---\nFine.\nSnow ☃ and ❤ here.",
            "d.txt: line 5: characters the model cannot speak: ☃ ❤",
        ),
        ("e.txt", "---\nvoice: anna\nspeed: 9\n---\nHi.", "e.txt: speed must be a number from 0.5 to 2.0"),
        ("f.txt", "---\nvoice: anna\npitch: 2\n---\nHi.", "f.txt: line 3: unknown front matter key"),
        ("g.txt", "---\nvoice: anna\nHi.", "g.txt: line 1: front matter opened with '---' is never closed"),
        ("h.jsonl", '{"id": "ok", "voice": "anna", "text": "Hi."}\n{"id": "x"', "h.jsonl: item 2: not valid JSON"),
        (
            "i.jsonl",
            '{"id": "../up", "voice": "anna", "text": "Hi."}',
            "i.jsonl: item 1: script id '../up' contains a slash",
        ),
        ("j.jsonl", '{"id": "a\\u0007b", "voice": "anna", "text": "Hi."}', "contains control characters"),
        ("k.csv", "name,words\nx,y\n", "k.csv: row 1: a scripts CSV needs a header row naming id, voice, text"),
        ("l.csv", "id,voice,text\nl1,anna,\n", "l.csv: row 2: missing 'text'"),
        ("m.txt", b"caf\xe9".decode("latin-1"), None),
    ],
)
def test_bad_scripts_get_one_line_naming_file_and_place(tmp_path: Path, name: str, text: str, says: str | None) -> None:
    vocab = load_vocabulary()
    if name == "m.txt":  # not UTF-8
        (tmp_path / name).write_bytes(b"---\nvoice: anna\n---\ncaf\xe9")
        says = "m.txt: not UTF-8 text"
    else:
        write(tmp_path, name, text)
    write(tmp_path, "zz_good.txt", "---\nvoice: ben\n---\nStill fine.")
    scripts, problems = load_scripts(tmp_path, VOICES, vocab)
    assert "zz_good" in [s.id for s in scripts], "one bad script must not sink the others"
    assert len(problems) == 1, problems
    message = str(problems[0])
    assert "\n" not in message and says in message


def test_size_limit_and_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path, "big.txt", "---\nvoice: anna\n---\n" + "word " * 100)
    write(
        tmp_path,
        "dup.jsonl",
        '{"id": "small", "voice": "anna", "text": "A."}\n{"id": "small", "voice": "anna", "text": "B."}',
    )
    scripts, problems = load_scripts(tmp_path, VOICES, max_chars=200)
    assert [s.id for s in scripts] == ["small"]
    assert sorted(str(p).split(": ", 2)[-1][:20] for p in problems) == ["500 characters, over", "script id 'small' al"]


def test_vocabulary_follows_f5_rewrites_and_pinyin() -> None:
    vocab = load_vocabulary()
    assert vocab.unsupported_characters("“Hi”; ‘there’ 你好 — é") == []
    assert vocab.unsupported_characters("Snow ☃") == ["☃"]


def test_f5_chunk_length_rule() -> None:
    # F5: bytes(ref_text) / ref_seconds * (22 - ref_seconds) * speed
    assert max_chunk_bytes("x" * 100, 10.0) == 120
    assert max_chunk_bytes("x" * 100, 10.0, speed=0.5) == 60


def test_chunks_keep_sentences_and_voices(tmp_path: Path) -> None:
    write(tmp_path, "s.txt", "---\nvoice: anna\n---\nOne two three. Four five six. [ben] Seven eight nine ten eleven.")
    (script,), _ = load_scripts(tmp_path, VOICES)
    chunks = chunk_script(script, {"anna": ("x" * 20, 10.0), "ben": ("x" * 20, 10.0)})  # 24-byte chunks
    assert [(c.voice, c.text, c.sentences) for c in chunks] == [
        ("anna", "One two three.", ("One two three.",)),
        ("anna", "Four five six.", ("Four five six.",)),
        ("ben", "Seven eight nine ten", ("Seven eight nine ten",)),
        ("ben", "eleven.", ("eleven.",)),
    ]
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_sentence_split_keeps_quotes_initials_and_cjk() -> None:
    assert split_sentences('He said "Hi." J. R. R. Tolkien left! 对，这就是我。太乙真人。') == [
        'He said "Hi."',
        "J. R. R. Tolkien left!",
        "对，这就是我。",
        "太乙真人。",
    ]


_WORDS = st.lists(st.text(st.characters(categories=("L",)), min_size=1, max_size=12), min_size=1, max_size=60)
_ENDS = st.sampled_from(["", "", ",", ".", "!", "?"])


@given(st.lists(st.tuples(_WORDS, _ENDS), min_size=1, max_size=8), st.integers(8, 200))
def test_chunks_never_split_a_word_and_respect_the_limit(sentences: list, limit: int) -> None:
    text = " ".join(" ".join(words) + end for words, end in sentences)
    chunks = pack_sentences(text, limit)
    assert " ".join(" ".join(c) for c in chunks).split() == text.split()  # nothing lost, no word cut
    for chunk in chunks:
        joined = " ".join(chunk)
        assert utf8_len(joined) <= limit or len(joined.split()) == 1  # only a lone over-long word may exceed


def test_unknown_vocab_tokens_mean_unspeakable() -> None:
    vocab = Vocabulary("v", frozenset("abc"))
    assert vocab.unsupported_characters("abcd e") == ["d", "e"]


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        ("See [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) tonight.", "See Mercury tonight."),
        ('A [link](http://x.org/a_(b)_(c) "its title") and ![a chart](chart.png).', "A link and a chart."),
        ("Ask [us](<https://x.org/a b>) (politely).", "Ask us (politely)."),
        ("Plain (parentheses) stay (as written).", "Plain (parentheses) stay (as written)."),
    ],
)
def test_markdown_links_with_parentheses_leave_only_their_text(tmp_path: Path, markdown: str, spoken: str) -> None:
    write(tmp_path, "page.md", f"---\nvoice: anna\n---\n{markdown}\n")
    (script,), problems = load_scripts(tmp_path, VOICES)
    assert problems == [] and script.parts[0].text == spoken


SECRET = "hunter2-secret"
LEAKY = [  # files that are not what they claim, each line holding the secret
    ("a.csv", f"{SECRET},{SECRET}\n{SECRET},x\n"),
    ("b.jsonl", f'{{"id": "x", "voice": "anna", "text": "Hi."}}\n{SECRET}\n'),
    ("c.txt", f"---\nvoice: anna\n{SECRET}: 1\n---\nHi."),
    ("d.txt", f"---\nvoice: anna\nspeed: {SECRET}\n---\nHi."),
    ("e.txt", f"---\nvoice: [{SECRET}\n---\nHi."),
]


@pytest.mark.parametrize(("name", "text"), LEAKY)
def test_a_script_error_names_the_place_never_the_content(tmp_path: Path, name: str, text: str) -> None:
    write(tmp_path, name, text)
    _, problems = load_scripts(tmp_path, VOICES)
    assert problems, "the file is refused"
    for problem in problems:
        assert SECRET not in str(problem) and str(problem).startswith(str(tmp_path / name)), problem
