"""XML that users hand in (TTML transcripts, SSML scripts), parsed without trusting it.

lxml with entity substitution, DTD loading and network access off, and any document type
declaration refused before the parser sees it: neither TTML nor SSML needs one, and a DOCTYPE
is where entity bombs ("billion laughs") and external entities (reads of local files or URLs)
live. lxml rather than ElementTree + defusedxml because its elements keep their source line,
so every error can name the line; the standard library's parser cannot say where an element
was.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml import etree

XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
# The XML declaration names an encoding; the text is already decoded, so it is dropped (lxml
# refuses a declared encoding on text it has to re-encode).
_DECLARATION = re.compile(r"^(\ufeff?\s*<\?xml\b[^>]*?)\s+encoding\s*=\s*(['\"])[^'\"]*\2")
_DOCTYPE = re.compile(r"<!(?:DOCTYPE|ENTITY)\b", re.IGNORECASE)
_POSITION = re.compile(r",?\s*line \d+,? column \d+\s*$")


class XMLProblem(ValueError):
    """Not well-formed or refused XML; ``line`` is 1-based (None when unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def parse_xml(text: str) -> etree._Element:
    """The root element of ``text``; raises :class:`XMLProblem` (message names no content)."""
    from lxml import etree

    text = text.lstrip("\ufeff")
    doctype = _DOCTYPE.search(text)
    if doctype:
        raise XMLProblem(
            "a document type declaration (<!DOCTYPE> or <!ENTITY>) is not accepted in untrusted XML: remove it",
            text.count("\n", 0, doctype.start()) + 1,
        )
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(_DECLARATION.sub(r"\1", text, count=1).encode("utf-8"), parser)
    except etree.XMLSyntaxError as e:
        message = _POSITION.sub("", str(e.msg or "syntax error")).strip()
        raise XMLProblem(f"not well-formed XML ({message})", e.lineno or None) from None
    if root is None:
        raise XMLProblem("no XML element in the file", None)
    return root


def local_name(element: etree._Element) -> str:
    """The element's name without its namespace (``p`` for ``{http://www.w3.org/ns/ttml}p``)."""
    tag = element.tag
    if not isinstance(tag, str):  # entity references and other non-element nodes
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(element: etree._Element) -> str:
    tag = element.tag
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def attribute(element: etree._Element, name: str, namespaces: tuple[str, ...] = ("",)) -> str | None:
    """An attribute by local name in the first of ``namespaces`` that has it ("" = no namespace)."""
    for ns in namespaces:
        value = element.get(f"{{{ns}}}{name}" if ns else name)
        if value is not None:
            return value
    return None


def line_of(element: etree._Element) -> str:
    """``line N`` for an error's ``where`` (the element's start tag)."""
    return f"line {element.sourceline}" if element.sourceline else "line ?"
