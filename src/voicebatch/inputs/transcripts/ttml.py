"""TTML and DFXP transcripts (broadcast and streaming deliverables: Netflix, EBU-TT, IMSC).

Every ``<p>`` is a segment; its text is its own and its spans', with ``<br/>`` between lines.
Times follow TTML's timing model for ``par`` containers (the default): a ``begin`` or ``end``
is relative to the parent's begin, ``dur`` to the element's own begin, an element without an
end lasts as long as its parent, and nothing outlasts its parent. A ``<p>`` with no times of
its own whose spans are timed (word-by-word captions) spans its first to its last timed span.
``ttm:agent`` names the speaker where the head defines the agent's ``ttm:name``.

Namespaces: TTML1/TTML2 (``http://www.w3.org/ns/ttml``), the DFXP drafts
(``http://www.w3.org/2006/10/ttaf1``, ``.../2006/04/ttaf1``) and files with none; elements
are matched by local name within the root's namespace.

Written here rather than with pysubs2 (whose TTML reader we checked): it reads no frame or
tick times (``300f``, ``90090000t``, ``HH:MM:SS:FF``: what EBU-TT and Netflix files use), no
``dur`` (it looks for ``duration``), no nested ``<div>``, only the TTML1 namespace, and cannot
say on which line a bad time stands. The XML itself is parsed by lxml with entities and
network access off (``voicebatch.inputs.safexml``): a transcript comes from a user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicebatch.errors import TranscriptError
from voicebatch.inputs.safexml import XML_NAMESPACE, XMLProblem, attribute, line_of, local_name, namespace, parse_xml
from voicebatch.inputs.transcripts.segment import Segment
from voicebatch.inputs.transcripts.ttml_time import TimeBase, parse_ttml_time, time_base

if TYPE_CHECKING:
    from lxml import etree

_TIME_EXPRESSIONS = "clock time such as 00:00:01.500 or 00:00:01:12, or an offset such as 1.5s, 36f or 15000000t"
_SKIPPED = {"metadata", "set", "animate", "animation", "head", "style", "region", "layout", "styling", "image"}


@dataclass(frozen=True, slots=True)
class _Interval:
    begin: float
    end: float | None  # None: open (lasts as long as the document)


def parse_ttml(text: str, path: str) -> list[Segment]:
    try:
        root = parse_xml(text)
    except XMLProblem as e:
        raise TranscriptError(path, str(e), where=f"line {e.line}" if e.line else None) from None
    if local_name(root) != "tt":
        raise TranscriptError(
            path, f"not a TTML document: the root element is <{local_name(root)}>, expected <tt>", where=line_of(root)
        )
    reader = _Reader(path, namespace(root), _time_base(root, path), _agents(root))
    body = next((c for c in root if local_name(c) == "body"), None)
    if body is None:
        raise TranscriptError(path, "no <body> in the TTML document", where=line_of(root))
    segments = sorted(reader.segments(body, _Interval(0.0, None)), key=lambda s: s.start)
    if not segments:
        raise TranscriptError(path, "no <p> with text")
    return segments


def _parameter_namespaces(root: etree._Element) -> tuple[str, ...]:
    ns = namespace(root)
    return (f"{ns}#parameter", "http://www.w3.org/ns/ttml#parameter", "")


def _time_base(root: etree._Element, path: str) -> TimeBase:
    names = _parameter_namespaces(root)

    def param(name: str) -> str | None:
        return attribute(root, name, names)

    kind = (param("timeBase") or "media").strip()
    if kind not in ("media", "smpte"):
        raise TranscriptError(path, f"ttp:timeBase {kind!r} is not supported (use media or smpte)", where=line_of(root))
    try:
        return time_base(
            param("frameRate"),
            param("frameRateMultiplier"),
            param("subFrameRate"),
            param("tickRate"),
            smpte=kind == "smpte",
            drop_mode=param("dropMode"),
        )
    except ValueError as e:
        raise TranscriptError(path, str(e), where=line_of(root)) from None


def _agents(root: etree._Element) -> dict[str, str]:
    """``xml:id`` -> the agent's name, from ``<ttm:agent><ttm:name>`` in the head."""
    names: dict[str, str] = {}
    for element in root.iter():
        if local_name(element) != "agent":
            continue
        agent_id = element.get(f"{{{XML_NAMESPACE}}}id")
        name = next((c for c in element if local_name(c) == "name"), None)
        if agent_id and name is not None and (name.text or "").strip():
            names[agent_id] = " ".join((name.text or "").split())
    return names


class _Reader:
    def __init__(self, path: str, ns: str, base: TimeBase, agents: dict[str, str]) -> None:
        self.path = path
        self.ns = ns
        self.base = base
        self.agents = agents

    def segments(self, element: etree._Element, parent: _Interval, agent: str | None = None) -> Iterator[Segment]:
        self._check_container(element)
        interval = self._interval(element, parent)
        agent = self._agent(element) or agent
        for child in element:
            name = local_name(child)
            if name == "div":
                yield from self.segments(child, interval, agent)
            elif name == "p":
                segment = self._paragraph(child, interval, self._agent(child) or agent)
                if segment is not None:
                    yield segment

    def _paragraph(self, p: etree._Element, parent: _Interval, agent: str | None) -> Segment | None:
        self._check_container(p)
        text = _text(p)
        if not text:
            return None
        if not any(p.get(a) is not None for a in ("begin", "end", "dur")):
            spans = [self._interval(s, parent) for s in p.iter() if s is not p and s.get("begin") is not None]
            if spans:
                ends = [s.end for s in spans]
                end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
                parent = _Interval(min(s.begin for s in spans), end)
        interval = self._interval(p, parent)
        if interval.end is None:
            raise TranscriptError(self.path, "<p> has no end or dur, and no element around it ends", where=line_of(p))
        return Segment(round(interval.begin, 3), round(interval.end, 3), text, agent)

    def _interval(self, element: etree._Element, parent: _Interval) -> _Interval:
        begin = parent.begin + self._time(element, "begin", 0.0)
        end_attr, dur_attr = element.get("end"), element.get("dur")
        ends = []
        if end_attr is not None:
            ends.append(parent.begin + self._time(element, "end", 0.0))
        if dur_attr is not None:
            ends.append(begin + self._time(element, "dur", 0.0))
        end = min(ends) if ends else parent.end
        if end is not None and parent.end is not None:
            end = min(end, parent.end)
        if end is not None and end < begin:
            raise TranscriptError(self.path, f"<{local_name(element)}> ends before it begins", where=line_of(element))
        return _Interval(begin, end)

    def _time(self, element: etree._Element, name: str, default: float) -> float:
        value = element.get(name)
        if value is None:
            return default
        try:
            return parse_ttml_time(value, self.base)
        except ValueError:
            raise TranscriptError(
                self.path,
                f"<{local_name(element)}> {name} is not a TTML time ({_TIME_EXPRESSIONS})",
                where=line_of(element),
            ) from None

    def _check_container(self, element: etree._Element) -> None:
        if (element.get("timeContainer") or "par").strip() != "par":
            raise TranscriptError(
                self.path,
                f"<{local_name(element)}> timeContainer 'seq' is not supported: give each <p> its own begin",
                where=line_of(element),
            )

    def _agent(self, element: etree._Element) -> str | None:
        value = attribute(element, "agent", (f"{self.ns}#metadata", "http://www.w3.org/ns/ttml#metadata"))
        if not value or not value.split():
            return None
        first = value.split()[0]
        return self.agents.get(first, first)


def _text(p: etree._Element) -> str:
    """The spoken text of a ``<p>``: its lines (``<br/>``) joined with a space."""
    lines = [""]
    _collect(p, lines)
    return " ".join(" ".join(line.split()) for line in lines if line.strip())


def _collect(element: etree._Element, lines: list[str]) -> None:
    lines[-1] += element.text or ""
    for child in element:
        name = local_name(child)
        if name == "br":
            lines.append("")
        elif name in _SKIPPED or _is_ruby_annotation(child):
            pass
        elif name:
            _collect(child, lines)
        lines[-1] += child.tail or ""


def _is_ruby_annotation(element: etree._Element) -> bool:
    # TTML2 ruby: the annotation (a reading such as furigana) is not said a second time.
    ruby = next((v for k, v in element.attrib.items() if str(k).endswith("}ruby") or k == "ruby"), None)
    return ruby in ("text", "delimiter")
