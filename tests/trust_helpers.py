"""What an untrusted triggerer (or whoever can write a model folder) would plant: a crafted model
whose vocoder config names code, pickled weights that run code when unpickled, and private
files whose content must never come out."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

# Vocos's own loader (jsonargparse style) imports the class_path and calls it with init_args:
# this config makes it run `python -c "<write the marker>"` as the worker's user.
CRAFTED_VOCODER = """\
feature_extractor:
  class_path: subprocess.run
  init_args:
    args: [{python}, -c, "open({marker!r}, 'w').write('pwned')"]
backbone:
  class_path: vocos.models.VocosBackbone
  init_args: {{input_channels: 100, dim: 32, intermediate_dim: 64, num_layers: 1}}
head:
  class_path: vocos.heads.ISTFTHead
  init_args: {{dim: 32, n_fft: 1024, hop_length: 256, padding: same}}
"""


def crafted_model(tiny_model: Path, directory: Path, marker: Path) -> Path:
    """A copy of the tiny model whose vocoder config runs code, its manifest re-hashed to match
    (an attacker who can write the folder can write the manifest too)."""
    from voicebatch.synthesis.models import write_manifest

    shutil.copytree(tiny_model, directory, ignore=shutil.ignore_patterns(".verified.json"))
    config = CRAFTED_VOCODER.format(python=sys.executable, marker=str(marker))
    (directory / "vocoder" / "config.yaml").write_text(config)
    write_manifest(directory)
    return directory


class _Payload:
    """Unpickling this object runs ``python -c`` that writes the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        import subprocess

        code = f"open({self.marker!r}, 'w').write('pwned')"
        return subprocess.run, ([sys.executable, "-c", code],)


def pickled_weights(path: Path, marker: Path) -> None:
    """A weights file in torch's pickle format that runs code when loaded without weights_only."""
    import torch

    torch.save({"weight": _Payload(marker)}, path)


def secret() -> str:
    """A marker that appears in a planted file only: finding it anywhere else is a leak."""
    return f"SECRET-{uuid.uuid4().hex}"


def forged_token(subject: str = "admin") -> str:
    """A JWT signed with no algorithm (``alg: none``): what a forger sends."""
    import base64
    import json
    import time

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": subject, "exp": int(time.time()) + 3600, "iat": int(time.time()), "aud": "apache-airflow"}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def files_containing(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` whose bytes hold ``needle`` (text or binary, e.g. a SQLite DB)."""
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found
