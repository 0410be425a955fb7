"""The model's character vocabulary: which characters F5-TTS can speak.

F5-TTS (v1_Base and the packaged ``vocab.txt``) maps text to tokens character by
character after two rewrites of its own (``f5_tts.model.utils.convert_char_to_pinyin``):
``; “ ” ‘ ’`` become ``, " " ' '``, and Chinese characters (U+3100 to U+9FFF) become
pinyin syllables, which the vocabulary holds. Any other character missing from the
vocabulary becomes token 0: the model does not say it. We check the same rule without
importing f5_tts (which imports torch).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

_F5_REWRITES = str.maketrans({";": ",", "“": '"', "”": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True, slots=True)
class Vocabulary:
    path: str
    tokens: frozenset[str]

    def unsupported_characters(self, text: str) -> list[str]:
        """Characters of ``text`` the model cannot speak, sorted and unique."""
        missing = {
            c for c in text.translate(_F5_REWRITES) if c not in self.tokens and not _is_chinese(c) and not c.isspace()
        }
        return sorted(missing)


def _is_chinese(c: str) -> bool:
    return "\u3100" <= c <= "\u9fff"


def default_vocab_path() -> Path:
    """The vocabulary f5-tts ships (the one F5TTS_v1_Base uses), found without importing f5_tts."""
    spec = importlib.util.find_spec("f5_tts")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("f5-tts is not installed: cannot find its vocab.txt (pass a vocabulary file)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "infer" / "examples" / "vocab.txt"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("f5-tts is installed without infer/examples/vocab.txt (pass a vocabulary file)")


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    vocab_path = Path(path) if path is not None else default_vocab_path()
    # One token per line; the first line is the space token, so keep lines unstripped.
    lines = vocab_path.read_text(encoding="utf-8").split("\n")
    tokens = frozenset(line for line in lines if line)
    return Vocabulary(str(vocab_path), tokens | {" "})
