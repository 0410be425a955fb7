"""Web pages (.html, .htm) as scripts: the main text, as a reader would hear it.

The page's main content is ``<main>`` (or ``role="main"``), else its only ``<article>``, else
``<body>``. Within it, page furniture is dropped: scripts, styles, templates, forms, embedded
media, ``<nav>``, ``<aside>``, hidden elements (``hidden``, ``aria-hidden="true"``,
``display:none``), navigation, banner, search and footer landmarks, and ``<header>`` and
``<footer>`` where they are the page's (outside an article or section, where the HTML
specification makes them the banner and the content info; an article's own header holds its
title and is read). Block elements (paragraphs, headings, list items, quotations, table
cells, ...) are paragraphs; headings end with a full stop so they are sentences of their own;
inline formatting is dropped and ``<br>`` is a space.

Web text is not written for voicebatch: a superscript citation mark ("[1]") is dropped, other
square brackets become parentheses and angle brackets are removed, so nothing on a page is read as a voice tag or a
pause. A page may name its voice and speed with ``<meta name="voice" content="narrator">`` and
``<meta name="speed" content="0.9">`` (as a text script's front matter does).

BeautifulSoup over lxml's HTML parser reads the page (any encoding the page declares, broken
markup as browsers repair it); HTML has no external entities to resolve.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import ScriptError
from voicebatch.inputs.documents import Document, paragraph_text

if TYPE_CHECKING:
    from bs4 import Tag

_DROPPED = {
    "script",
    "style",
    "noscript",
    "template",
    "head",
    "title",
    "nav",
    "aside",
    "form",
    "button",
    "select",
    "textarea",
    "input",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "canvas",
    "video",
    "audio",
    "map",
    "dialog",
}
_LANDMARKS_DROPPED = {"navigation", "banner", "contentinfo", "complementary", "search"}
_SECTIONING = {"article", "section", "main", "aside", "nav"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "td",
    "th",
    "caption",
    "figure",
    "figcaption",
    "hr",
    "address",
    "details",
    "summary",
    "center",
    "fieldset",
    "legend",
    "body",
    "html",
}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_CITATION = re.compile(r"^\s*\[[^\[\]]{1,30}\]\s*$")
_NEUTRAL = str.maketrans({"[": "(", "]": ")", "<": " ", ">": " "})


def read_html(path: Path) -> Document:
    from bs4 import BeautifulSoup

    try:
        data = path.read_bytes()
    except OSError as e:
        raise ScriptError(path, f"cannot read the file: {e.strerror or e}") from None
    soup = BeautifulSoup(data, "lxml")
    reader = _Reader()
    reader.walk(_main(soup))
    reader.flush()
    text = paragraph_text(reader.paragraphs, headings=reader.headings)
    if not text:
        raise ScriptError(path, "no text in the page's main content")
    return Document(text, _meta(soup, "voice"), _meta(soup, "speed") or 1.0)


def _main(soup: Tag) -> Tag:
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    if main is None:
        articles = soup.find_all("article")
        main = articles[0] if len(articles) == 1 else soup.find("body")
    return main or soup  # type: ignore[return-value]


def _meta(soup: Tag, name: str) -> str | None:
    tag = soup.find("meta", attrs={"name": name})
    content = tag.get("content") if tag is not None else None
    return content.strip() or None if isinstance(content, str) else None


class _Reader:
    def __init__(self) -> None:
        self.paragraphs: list[str] = []
        self.headings: set[int] = set()
        self.current: list[str] = []

    def flush(self) -> None:
        if "".join(self.current).strip():
            self.paragraphs.append("".join(self.current))
        self.current = []

    def walk(self, node: Tag) -> None:
        from bs4 import NavigableString, Tag

        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a comment, doctype or CDATA
                    self.current.append(str(child).translate(_NEUTRAL))
                continue
            if not isinstance(child, Tag) or _dropped(child):
                continue
            if child.name == "br":
                self.current.append(" ")
            elif child.name in _BLOCKS:
                self.flush()
                self.walk(child)
                if child.name in _HEADINGS and "".join(self.current).strip():
                    self.headings.add(len(self.paragraphs))
                self.flush()
            else:
                self.walk(child)


def _dropped(tag: Tag) -> bool:
    name = tag.name
    if name in _DROPPED or tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).lower() == "true" or _HIDDEN_STYLE.search(str(tag.get("style", ""))):
        return True
    if str(tag.get("role", "")).lower() in _LANDMARKS_DROPPED:
        return True
    if name == "sup" and _CITATION.match(tag.get_text()):
        return True  # "[1]", "[citation needed]": a reference mark, not prose
    if name in ("header", "footer"):
        return not any(parent.name in _SECTIONING for parent in tag.parents)
    return False
