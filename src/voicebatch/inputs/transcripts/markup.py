"""Cue text clean-up: formatting tags, inline word times, speaker spans, HTML entities."""

from __future__ import annotations

import html
import re

# <00:00:01.520> inline word times (YouTube auto-captions, karaoke VTT).
_INLINE_TIME = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?[.,]\d{1,3}>")
# <v Speaker> or <v.class Speaker>: the WebVTT voice span names who speaks.
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
# Any other opening or closing tag: <i>, </b>, <font color="#fff">, <c.colorE5E5E5>, <ruby>.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
# SubStation override blocks that some SRT exports keep: {\an8}, {\i1}.
_ASS = re.compile(r"\{\\[^{}]*\}")


def clean_cue_line(line: str) -> tuple[str, str | None]:
    """Return the spoken text of one cue line and the speaker its voice span names."""
    speaker = None
    voice = _VOICE.search(line)
    if voice:
        speaker = " ".join(voice.group(1).split())
    text = _INLINE_TIME.sub("", line)
    text = _TAG.sub("", text)
    text = _ASS.sub("", text)
    # Unescape after stripping tags so that an escaped "&lt;i&gt;" stays visible text.
    text = html.unescape(text)
    return " ".join(text.split()), speaker


def escape_vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
