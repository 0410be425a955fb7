"""SSML documents (.ssml: a ``<speak>`` root, as Polly, Azure and Google take them) as scripts.

Each element becomes the project's markup, so chunking and the spoken form need nothing new:

    <p>                         a paragraph (blank lines around it)
    <s>                         a sentence (a full stop added when it has none)
    <break time="500ms"/>       [pause 0.5s];  strength="strong" -> [pause strong]
    <say-as interpret-as=...>   the words, spelled explicitly (``voicebatch.text.say_as``):
                                cardinal, ordinal, characters, digits, telephone, date, time
    <sub alias="...">           the alias is spoken, the content is not
    <emphasis level=...>        what F5 can do: a short pause before and a slower rate
                                (strong: [pause weak] at 0.8×; moderate: [pause x-weak] at 0.9×;
                                reduced: 1.1×, no pause)
    <prosody rate=...>          [speed f]: x-slow 0.6, slow 0.8, medium 1, fast 1.25, x-fast 1.5,
                                "80%" (of the normal rate), "+10%"/"-20%" (of the rate around it),
                                or a multiplier such as 1.2; clamped to 0.5-2.0
    <voice name="x">            the [x] voice tag (a voice of the voices folder); the voice around
                                it (and the rate) resumes after it
    <lang xml:lang="de">        [voice lang=de] when a voice is in force: German spoken form
    <w>, <token>                their text

Everything else is not supported: its text is spoken (``<phoneme>``, ``<audio>``'s fallback,
vendor elements such as ``<amazon:effect>``), or nothing is (``<mark>``, ``<meta>``,
``<metadata>``, ``<lexicon>``, ``<desc>``); each kind is listed once as a warning, with how often
and the first line, and no tag is ever spoken. Text outside any ``<voice>`` speaks with the
document's voice, ``<meta name="voice" content="narrator"/>`` (SSML allows any meta name), else
with the only voice there is; without a ``<meta>`` voice, text after a ``<voice>`` has closed
has no voice to go back to and is refused with its line. Parsed by ``voicebatch.inputs.safexml``: no
entities, no network, errors with the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import ScriptError
from voicebatch.inputs.documents import Document, paragraph_text
from voicebatch.inputs.safexml import XML_NAMESPACE, XMLProblem, local_name, namespace, parse_xml
from voicebatch.settings import MAX_PAUSE_SECONDS
from voicebatch.text.markup import MAX_SPEED, MIN_SPEED, STRENGTHS
from voicebatch.text.say_as import say_as

if TYPE_CHECKING:
    from lxml import etree

_RATES = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
_EMPHASIS = {"strong": ("weak", 0.8), "moderate": ("x-weak", 0.9), "reduced": (None, 1.1), "none": (None, 1.0)}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$", re.IGNORECASE)
_RATE = re.compile(r"^\s*([+-])?(\d+(?:\.\d+)?)\s*(%)?\s*$")
_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LEADING_PUNCTUATION = re.compile(r"^[.,;:!?…)\]»”’\"']+")
_SENTENCE_END = ".!?…;:"
_SSML = ("", "http://www.w3.org/2001/10/synthesis")
_SILENT = {"mark", "meta", "metadata", "lexicon", "desc", "lookup"}
_REASONS = {
    "<phoneme>": "its pronunciation is not applied (put the word in a lexicon); its text is spoken",
    "<audio>": "no audio is played; its fallback text is spoken",
    "<mark>": "nothing is spoken for it",
    "<lexicon>": "use a voicebatch lexicon (--lexicon, lexicon_uri) instead",
}


@dataclass(slots=True)
class _Piece:
    text: str
    markup: bool = False


def read_ssml(path: Path) -> Document:
    root = _parse(path)
    if local_name(root) != "speak":
        raise ScriptError(path, f"an SSML document has a <speak> root, found <{local_name(root)}>", where="line 1")
    voice = _default_voice(root, path)
    converter = _Converter(path, root.get(f"{{{XML_NAMESPACE}}}lang") or "en", voice)
    converter.children(root)
    converter.flush()
    text = paragraph_text(converter.paragraphs)
    if not text.strip():
        raise ScriptError(path, "the <speak> document has no text to speak")
    return Document(text, voice, warnings=converter.warnings())


def _default_voice(root: etree._Element, path: Path) -> str | None:
    """``<meta name="voice" content="narrator"/>``: the voice of text outside any <voice>."""
    for meta in root.iter():
        if local_name(meta) == "meta" and meta.get("name") == "voice":
            name = (meta.get("content") or "").strip()
            if not _VOICE_NAME.match(name):
                raise ScriptError(
                    path, '<meta name="voice"> content must be a voice\'s name', where=f"line {meta.sourceline}"
                )
            return name
    return None


def _parse(path: Path) -> etree._Element:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ScriptError(path, f"cannot read the file: {e.strerror or e}") from None
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise ScriptError(path, f"not UTF-8 text (byte {e.start}): save the SSML as UTF-8") from None
    try:
        return parse_xml(text)
    except XMLProblem as e:
        raise ScriptError(path, str(e), where=f"line {e.line}" if e.line else None) from None


class _Converter:
    def __init__(self, path: Path, lang: str, voice: str | None) -> None:
        self.path = path
        self.paragraphs: list[str] = []
        self.current: list[_Piece] = []
        self.voices: list[str | None] = [voice]
        self.speeds: list[float] = [1.0]
        self.langs: list[str] = [lang]
        self.voice_closed_at: int | None = None  # line of a </voice> that left no voice in force
        self.unsupported: dict[str, list[int]] = {}

    # --- output -----------------------------------------------------------------------------

    def flush(self) -> None:
        self.paragraphs.append("".join(f" {p.text} " if p.markup else p.text for p in self.current))
        self.current = []

    def text(self, value: str | None, line: int) -> None:
        if not value:
            return
        if value.strip() and self.voices[-1] is None and self.voice_closed_at is not None:
            raise ScriptError(
                self.path,
                f"text outside <voice> after the <voice> that closed on line {self.voice_closed_at} has no voice "
                'to go back to: name the document\'s voice with <meta name="voice" content="..."/>, '
                "or put the text inside a <voice name=...> too",
                where=f"line {line}",
            )
        punctuation = _LEADING_PUNCTUATION.match(value.lstrip())
        if punctuation and self.current and self.current[-1].markup:
            # "<emphasis>never</emphasis>." : the full stop belongs to the word, not after the markup
            last_text = max((i for i, p in enumerate(self.current) if not p.markup), default=None)
            if last_text is not None:
                self.current[last_text].text = self.current[last_text].text.rstrip() + punctuation.group()
                value = value.lstrip()[punctuation.end() :]
        self.current.append(_Piece(value))

    def markup(self, value: str) -> None:
        self.current.append(_Piece(value, markup=True))

    def warnings(self) -> tuple[str, ...]:
        out = []
        for name, lines in self.unsupported.items():
            times = f"{len(lines)} times, first at line {lines[0]}" if len(lines) > 1 else f"line {lines[0]}"
            silent = name.strip("<>") in _SILENT
            reason = _REASONS.get(name, "nothing is spoken for it" if silent else "its text is spoken as written")
            out.append(f"SSML {name} is not supported ({times}): {reason}")
        return tuple(out)

    def _unsupported(self, name: str, element: etree._Element) -> None:
        self.unsupported.setdefault(name, []).append(element.sourceline or 0)

    # --- elements ---------------------------------------------------------------------------

    def children(self, element: etree._Element) -> None:
        self.text(element.text, element.sourceline or 0)
        for child in element:
            if isinstance(child.tag, str):
                self.element(child)
            self.text(child.tail, child.sourceline or 0)

    def element(self, element: etree._Element) -> None:
        name = local_name(element)
        handler = _HANDLERS.get(name) if namespace(element) in _SSML else None
        if handler is not None:
            handler(self, element)
        elif name == "meta" and element.get("name") == "voice":
            pass  # the document's voice (_default_voice)
        elif name in _SILENT:
            self._unsupported(f"<{name}>", element)
        else:
            self._unsupported(f"<{element.prefix}:{name}>" if element.prefix else f"<{name}>", element)
            self.children(element)

    def _p(self, element: etree._Element) -> None:
        self.flush()
        self.children(element)
        self.flush()

    def _s(self, element: etree._Element) -> None:
        self.current.append(_Piece(" "))  # <s>One</s><s>Two</s>: two sentences, not "One.Two"
        start = len(self.current)
        self.children(element)
        texts = [p for p in self.current[start:] if not p.markup and p.text.strip()]
        if texts and texts[-1].text.rstrip()[-1] not in _SENTENCE_END:
            texts[-1].text = texts[-1].text.rstrip() + "."
        self.current.append(_Piece(" "))

    def _w(self, element: etree._Element) -> None:
        self.children(element)

    def _speak(self, element: etree._Element) -> None:
        self.children(element)

    def _break(self, element: etree._Element) -> None:
        where = f"line {element.sourceline}"
        time, strength = element.get("time"), element.get("strength")
        if time is not None:
            found = _TIME.match(time)
            if not found:
                raise ScriptError(
                    self.path, "<break> time must be seconds or milliseconds, such as 1.5s or 800ms", where=where
                )
            seconds = float(found.group(1)) / (1000 if found.group(2).lower() == "ms" else 1)
            if seconds > MAX_PAUSE_SECONDS:
                raise ScriptError(
                    self.path, f"<break> of {seconds:g} s is longer than {MAX_PAUSE_SECONDS:g} s", where=where
                )
            self.markup(f"[pause {round(seconds, 3):g}s]")
        elif strength is not None:
            if strength.strip().lower() not in STRENGTHS:
                raise ScriptError(self.path, f"<break> strength must be one of {', '.join(STRENGTHS)}", where=where)
            self.markup(f"[pause {strength.strip().lower()}]")
        else:
            self.markup("[pause medium]")

    def _say_as(self, element: etree._Element) -> None:
        content = "".join(element.itertext())
        kind = element.get("interpret-as") or ""
        spoken = say_as(content, kind, element.get("format"), self.langs[-1]) if kind else None
        if spoken is None:
            self._unsupported(f'<say-as interpret-as="{kind}">' if kind else "<say-as>", element)
            spoken = content
        self.text(spoken, element.sourceline or 0)

    def _sub(self, element: etree._Element) -> None:
        alias = element.get("alias")
        if alias is None:
            self._unsupported("<sub> without alias", element)
            self.children(element)
        else:
            self.text(alias, element.sourceline or 0)

    def _emphasis(self, element: etree._Element) -> None:
        level = (element.get("level") or "moderate").strip().lower()
        pause, factor = _EMPHASIS.get(level, _EMPHASIS["moderate"])
        if level not in _EMPHASIS:
            self._unsupported(f'<emphasis level="{level}">', element)
        if pause:
            self.markup(f"[pause {pause}]")
        self._at_speed(self.speeds[-1] * factor, element)

    def _prosody(self, element: etree._Element) -> None:
        for other in sorted(set(element.attrib) - {"rate"}):
            self._unsupported(f"<prosody {local_name_of(other)}>", element)
        rate = element.get("rate")
        if rate is None:
            self.children(element)
            return
        self._at_speed(self._rate(rate, element), element)

    def _rate(self, rate: str, element: etree._Element) -> float:
        value = rate.strip().lower()
        if value in _RATES:
            return _RATES[value]
        found = _RATE.match(value)
        if not found:
            raise ScriptError(
                self.path,
                "<prosody> rate must be x-slow, slow, medium, fast, x-fast, a percentage or a multiplier",
                where=f"line {element.sourceline}",
            )
        sign, number, percent = found.groups()
        if sign and not percent:
            raise ScriptError(
                self.path,
                "<prosody> relative rate must be a percentage, such as +10%",
                where=f"line {element.sourceline}",
            )
        amount = float(number) / (100 if percent else 1)
        if sign:  # relative to the rate around it
            return self.speeds[-1] * (1 + amount if sign == "+" else 1 - amount)
        return amount

    def _at_speed(self, factor: float, element: etree._Element) -> None:
        clamped = min(MAX_SPEED, max(MIN_SPEED, round(factor, 3)))
        if clamped != round(factor, 3):
            self._unsupported(f"a rate outside {MIN_SPEED:g}-{MAX_SPEED:g}× (clamped)", element)
        outer = self.speeds[-1]
        self.speeds.append(clamped)
        if clamped != outer:
            self.markup(f"[speed {clamped:g}]")
        self.children(element)
        self.speeds.pop()
        if clamped != outer:
            self.markup(f"[speed {outer:g}]")

    def _voice(self, element: etree._Element) -> None:
        name = (element.get("name") or "").strip()
        if not name:
            self._unsupported("<voice> without name", element)
            self.children(element)
            return
        if not _VOICE_NAME.match(name) or name.lower() in ("pause", "speed"):
            raise ScriptError(
                self.path,
                "<voice> name must be a voice folder's name (letters, digits, . _ -)",
                where=f"line {element.sourceline}",
            )
        self._switch(name, None)
        self.voices.append(name)
        self.children(element)
        self.voices.pop()
        outer = self.voices[-1]
        if outer is None:
            self.voice_closed_at = element.sourceline or 0
        else:
            self._switch(outer, None)

    def _lang(self, element: etree._Element) -> None:
        lang = element.get(f"{{{XML_NAMESPACE}}}lang")
        voice = self.voices[-1]
        if not lang or voice is None:
            self._unsupported("<lang> outside a <voice>" if lang else "<lang> without xml:lang", element)
            self.children(element)
            return
        self.langs.append(lang)
        self._switch(voice, lang)
        self.children(element)
        self.langs.pop()
        self._switch(voice, None)

    def _switch(self, voice: str, lang: str | None) -> None:
        """A voice tag; the rate in force is said again (a voice tag starts at the normal rate)."""
        self.markup(f"[{voice} lang={lang}]" if lang else f"[{voice}]")
        if self.speeds[-1] != 1.0:
            self.markup(f"[speed {self.speeds[-1]:g}]")


def local_name_of(attribute: str) -> str:
    return attribute.rsplit("}", 1)[-1]


_HANDLERS = {
    "speak": _Converter._speak,
    "p": _Converter._p,
    "paragraph": _Converter._p,
    "s": _Converter._s,
    "sentence": _Converter._s,
    "w": _Converter._w,
    "token": _Converter._w,
    "break": _Converter._break,
    "say-as": _Converter._say_as,
    "sub": _Converter._sub,
    "emphasis": _Converter._emphasis,
    "prosody": _Converter._prosody,
    "voice": _Converter._voice,
    "lang": _Converter._lang,
}
