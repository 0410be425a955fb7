"""Word, HTML and SSML documents as scripts: the chunks and pauses they become.

Expected chunks are worked out by hand from each document with the default pauses
(sentence 0.3 s, paragraph 0.8 s, voice change 0.5 s; a sentence pause above 0 makes every
sentence a chunk), not by running the converter.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voicebatch.errors import ScriptError
from voicebatch.inputs.scripts import chunk_script, load_script_file, load_scripts

REFERENCE = ("Some reference text here.", 3.0)


def chunks_of(path: Path, voices: set[str]) -> list[tuple[str, float, str, str, float]]:
    """(voice, speed, written, spoken, pause after) of each chunk of the one script in ``path``."""
    (script,) = load_script_file(path, voices=voices)
    return [
        (c.voice, c.speed, " ".join(c.sentences), c.text, c.pause_after)
        for c in chunk_script(script, dict.fromkeys(script.voices, REFERENCE))
    ]


# --- Word -----------------------------------------------------------------------------------


def write_docx(path: Path) -> None:
    """A Word document as python-docx (Word's own template) writes it, with a comment, a
    tracked deletion and insertion, and hidden text added the way Word records them."""
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    document.add_heading("Fixing a chair", level=1)
    first = document.add_paragraph("First, ")
    first.add_run("loosen").bold = True
    first.add_run(" the ")
    screws = first.add_run("screws")
    screws.italic = True
    first.add_run(".")
    document.add_comment(screws, text="Check the screw size before printing", author="Ed")
    second = document.add_paragraph("Then lift the seat 2 inches.")
    tracked = (
        f'<w:del {nsdecls("w")} w:id="10" w:author="Ed" w:date="2024-01-01T00:00:00Z">'
        '<w:r><w:delText xml:space="preserve"> Carefully.</w:delText></w:r></w:del>'
    )
    second._p.append(parse_xml(tracked))
    inserted = (
        f'<w:ins {nsdecls("w")} w:id="11" w:author="Ed" w:date="2024-01-01T00:00:00Z">'
        '<w:r><w:t xml:space="preserve"> Gently.</w:t></w:r></w:ins>'
    )
    second._p.append(parse_xml(inserted))
    hidden = document.add_paragraph("Done")
    note = hidden.add_run(" (editor: re-record this)")
    note.font.hidden = True
    hidden.add_run("!")
    document.save(str(path))


def test_docx_becomes_headings_and_paragraphs_with_tracked_changes_accepted(tmp_path: Path) -> None:
    path = tmp_path / "chair.docx"
    write_docx(path)
    assert chunks_of(path, {"narrator"}) == [
        # The heading is a sentence (a full stop added) and a paragraph of its own.
        ("narrator", 1.0, "Fixing a chair.", "Fixing a chair.", 0.8),
        # Bold and italic are gone; the comment's text is never read.
        ("narrator", 1.0, "First, loosen the screws.", "First, loosen the screws.", 0.8),
        # " Carefully." was deleted with track changes on, " Gently." inserted.
        ("narrator", 1.0, "Then lift the seat 2 inches.", "Then lift the seat two inches.", 0.3),
        ("narrator", 1.0, "Gently.", "Gently.", 0.8),
        # The hidden run is not spoken; the last chunk has no pause after it.
        ("narrator", 1.0, "Done!", "Done!", 0.0),
    ]


def test_docx_errors_name_the_paragraph(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("[narrator] Hello.")
    document.add_paragraph("See note [1] here.")  # "[1]" is a voice tag in a Word script
    path = tmp_path / "tags.docx"
    document.save(str(path))
    with pytest.raises(ScriptError, match=r"tags\.docx: paragraph 2: unknown voice '1'"):
        load_script_file(path, voices={"narrator", "alice"})


def test_a_renamed_file_is_not_a_word_document(tmp_path: Path) -> None:
    path = tmp_path / "old.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0 an old binary .doc")
    with pytest.raises(ScriptError, match=r"old\.docx: not a Word document"):
        load_script_file(path, voices={"narrator"})


# --- HTML -----------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Workshop notes</title><meta name="voice" content="narrator">
<style>p { color: red; }</style><script>var x = "do not say this";</script></head>
<body>
<header><nav><a href="/">Home</a> | <a href="/blog">Blog</a></nav><p>Site banner</p></header>
<main>
  <article>
    <header><h1>Fixing a chair</h1></header>
    <p>First, <strong>loosen</strong> the <em>screws</em>.<sup class="reference">[1]</sup> Then lift the seat.</p>
    <h2>Tools</h2>
    <ul><li>A screwdriver</li><li>Wood glue [new]</li></ul>
    <p hidden>Hidden draft.</p>
    <p style="display: none">Also hidden.</p>
    <p>Line one<br>line two &amp; 3 more.</p>
    <aside>Related posts</aside>
    <footer>Posted in Repairs.</footer>
  </article>
</main>
<footer><p>&copy; 2024 Workshop</p></footer>
</body></html>
"""


def test_html_main_text_headings_as_paragraphs_and_page_furniture_dropped(tmp_path: Path) -> None:
    path = tmp_path / "chair.html"
    path.write_text(PAGE, encoding="utf-8")
    # Several voices known: the page names its own with <meta name="voice">.
    assert chunks_of(path, {"narrator", "alice"}) == [
        ("narrator", 1.0, "Fixing a chair.", "Fixing a chair.", 0.8),
        # The citation mark [1] is dropped with its <sup>.
        ("narrator", 1.0, "First, loosen the screws.", "First, loosen the screws.", 0.3),
        ("narrator", 1.0, "Then lift the seat.", "Then lift the seat.", 0.8),
        ("narrator", 1.0, "Tools.", "Tools.", 0.8),
        ("narrator", 1.0, "A screwdriver", "A screwdriver", 0.8),
        # Square brackets on a web page are text, never a voice tag.
        ("narrator", 1.0, "Wood glue (new)", "Wood glue (new)", 0.8),
        ("narrator", 1.0, "Line one line two & 3 more.", "Line one line two and three more.", 0.8),
        # The article's own footer is content; the page's header, nav, aside and footer are not.
        ("narrator", 1.0, "Posted in Repairs.", "Posted in Repairs.", 0.0),
    ]


# --- SSML -----------------------------------------------------------------------------------

SSML = """<?xml version="1.0" encoding="UTF-8"?>
<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">
  <meta name="voice" content="narrator"/>
  <p><s>Welcome to the <sub alias="World Wide Web Consortium">W3C</sub> tour</s><s>We opened in
  <say-as interpret-as="date" format="y">1998</say-as>.</s></p>
  <break time="1500ms"/>
  <p>Call <say-as interpret-as="telephone">555-0100</say-as><break strength="strong"/> today.
  This is <emphasis level="strong">very</emphasis> important.
  <prosody rate="slow" pitch="+2st">Slowly now.</prosody><mark name="here"/>
  <phoneme alphabet="ipa" ph="təˈmɑːtəʊ">Tomato</phoneme> soup.</p>
  <voice name="alice"><p>I am the <say-as interpret-as="ordinal">3</say-as> voice.</p></voice>
  <voice name="bob"><prosody rate="+50%">Bob at <say-as interpret-as="time">2:30pm</say-as>.</prosody></voice>
  <p>Back to the narrator.</p>
</speak>
"""


def test_ssml_becomes_chunks_pauses_rates_and_voices(tmp_path: Path) -> None:
    path = tmp_path / "tour.ssml"
    path.write_text(SSML, encoding="utf-8")

    def same(voice: str, speed: float, text: str, pause: float) -> tuple[str, float, str, str, float]:
        return (voice, speed, text, text, pause)  # SSML's words are already spoken form

    assert chunks_of(path, {"narrator", "alice", "bob"}) == [
        same("narrator", 1.0, "Welcome to the World Wide Web Consortium tour.", 0.3),  # <s> ends it
        same("narrator", 1.0, "We opened in nineteen ninety-eight.", 1.5),  # <break time="1500ms"/>
        same("narrator", 1.0, "Call five five five, zero one zero zero", 0.8),  # strength strong = paragraph
        same("narrator", 1.0, "today.", 0.3),
        same("narrator", 1.0, "This is", 0.2),  # strong emphasis: a weak break (0.2 s) ...
        same("narrator", 0.8, "very", 0.0),  # ... and 0.8 × the rate
        same("narrator", 1.0, "important.", 0.3),
        same("narrator", 0.8, "Slowly now.", 0.3),  # rate="slow"
        same("narrator", 1.0, "Tomato soup.", 0.5),  # the voice changes next
        same("alice", 1.0, "I am the third voice.", 0.5),
        same("bob", 1.5, "Bob at two thirty p m.", 0.5),  # +50 % of the normal rate
        same("narrator", 1.0, "Back to the narrator.", 0.0),
    ]


def test_ssml_unsupported_elements_are_warned_once_and_never_spoken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tour.ssml"
    path.write_text(SSML.replace("</speak>", '<mark name="end"/></speak>'), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="voicebatch.inputs.documents"):
        (script,) = load_script_file(path, voices={"narrator", "alice", "bob"})
    assert script.warnings == (
        "SSML <prosody pitch> is not supported (line 9): its text is spoken as written",
        "SSML <mark> is not supported (2 times, first at line 9): nothing is spoken for it",
        "SSML <phoneme> is not supported (line 10): its pronunciation is not applied (put the word in a lexicon); "
        "its text is spoken",
    )
    assert [r.getMessage() for r in caplog.records] == [f"{path}: {w}" for w in script.warnings]
    spoken = " ".join(p.text for p in script.parts)
    for tag in ("mark", "phoneme", "prosody", "pitch", "ipa", "təˈmɑːtəʊ"):
        assert tag not in spoken


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ('<p>Wait <break time="soon"/> here.</p>', "line 3", "<break> time must be seconds or milliseconds"),
        ('<p>Wait <break time="30s"/> here.</p>', "line 3", "longer than 20 s"),
        ('<p>Fast <prosody rate="quick">now</prosody>.</p>', "line 3", "<prosody> rate must be"),
        ("<p>Unclosed <emphasis>tag.</p>", "line 3", "not well-formed XML"),
        ('<voice name="alice">Hi.</voice> And who speaks this?', "line 3", "text outside <voice>"),
    ],
)
def test_ssml_errors_name_the_line(tmp_path: Path, body: str, where: str, says: str) -> None:
    path = tmp_path / "bad.ssml"
    path.write_text(f'<?xml version="1.0"?>\n<speak xmlns="http://www.w3.org/2001/10/synthesis">\n{body}\n</speak>\n')
    with pytest.raises(ScriptError) as caught:
        load_script_file(path, voices={"narrator", "alice"})
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}: ")
    assert says in message
    assert "\n" not in message


def test_ssml_with_a_doctype_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.ssml"
    path.write_text('<!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<speak>&x;</speak>\n')
    with pytest.raises(ScriptError, match="document type declaration"):
        load_script_file(path, voices={"narrator"})


def test_a_folder_of_documents_loads_each_as_a_script(tmp_path: Path) -> None:
    write_docx(tmp_path / "chair.docx")
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "tour.ssml").write_text(SSML, encoding="utf-8")
    (tmp_path / "broken.ssml").write_text("<speak><p>never closed</speak>")
    scripts, problems = load_scripts(tmp_path, {"narrator", "alice", "bob"})
    assert sorted(s.id for s in scripts) == ["page", "tour"]  # they name their voice
    # A Word document names its voice with a [voice] tag, as a .txt script does: with three
    # voices to choose from, chair.docx has none.
    assert sorted((Path(p.path).name, p.where, p.message.split(":")[0]) for p in problems) == [
        ("broken.ssml", "line 1", "not well-formed XML (Opening and ending tag mismatch"),
        ("chair.docx", None, "no voice"),
    ]
    (script,) = load_scripts(tmp_path, {"narrator"})[0][:1]  # with one voice, that one speaks it
    assert script.id == "chair"
    assert script.voices == ("narrator",)
