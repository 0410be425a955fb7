"""Model store: resolve a model spec to verified local files.

A model directory in the store's layout (what the hub download assembles and what
``voicebatch model tiny DIR`` writes)::

    model.yaml                 name, backbone, arch, mel_spec, random_weights
    model.safetensors          the F5 checkpoint (EMA weights)
    vocab.txt                  the tokenizer's vocabulary
    vocoder/config.yaml        Vocos hyper-parameters
    vocoder/pytorch_model.bin  Vocos weights
    manifest.json              sha256 and size of every file above

A spec is a name (``F5TTS_v1_Base``), a local directory in that layout, or an ``s3://``
prefix holding one. Names are looked up in order: the local cache
(``$VOICEBATCH_MODEL_DIR``), the S3 models prefix when configured, then the Hugging Face
hub. Fetches hold an inter-process file lock, land under a temporary name and are
renamed into place; a hub download is published to the S3 prefix so the next worker
starts warm. Every file is checked against its sha256 before use, and both configs against
their schemas (``builders.py``: a model folder is data, never code). Given the deployment's
allow-list (``allowed``), the store resolves folders and ``s3://`` prefixes under its model roots
only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from voicebatch.audio import file_sha256
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.builders import ModelConfigError, check_model_config, check_vocoder_config, read_yaml

log = logging.getLogger(__name__)


DEFAULT_MODEL: str = DEFAULTS["model"]


MODEL_FILES = ("model.yaml", "model.safetensors", "vocab.txt", "vocoder/config.yaml", "vocoder/pytorch_model.bin")


VERIFIED_STAMP = ".verified.json"


class ModelError(RuntimeError):
    """A model that cannot be resolved or fails verification (one-line message)."""


class ModelRoots(Protocol):
    """What the store asks of the deployment's allow-list (``voicebatch.locations.allowlist.AllowList``)."""

    def check_model(self, spec: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ModelFiles:
    name: str
    directory: Path
    config: dict  # model.yaml
    checksum: str  # sha256 over the manifest's file hashes: identifies the weights in cache keys
    files: dict  # manifest: relative path -> {"sha256", "size"}

    @property
    def checkpoint(self) -> Path:
        return self.directory / "model.safetensors"

    @property
    def vocab(self) -> Path:
        return self.directory / "vocab.txt"

    @property
    def vocoder_dir(self) -> Path:
        return self.directory / "vocoder"

    @property
    def random_weights(self) -> bool:
        return bool(self.config.get("random_weights"))

    def lineage(self) -> dict:
        """What a manifest records of the model: enough to trace it, without needing its files."""
        return ModelManifest.of(self).lineage()


def write_manifest(directory: Path) -> dict:
    files = {}
    for relative in MODEL_FILES:
        path = directory / relative
        files[relative] = {"sha256": file_sha256(path), "size": path.stat().st_size}
    (directory / "manifest.json").write_text(json.dumps({"files": files}, indent=2) + "\n")
    return files


def load_model_files(directory: Path, *, verify: bool = True) -> ModelFiles:
    import yaml

    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise ModelError(f"{directory}: not a model directory (no manifest.json)")
    files = json.loads(manifest_path.read_text())["files"]
    missing = [f for f in MODEL_FILES if f not in files or not (directory / f).is_file()]
    if missing:
        raise ModelError(f"{directory}: model files missing: {', '.join(missing)}")
    if verify:
        _verify_files(directory, files)
    config = checked_configs(
        yaml.safe_load((directory / "model.yaml").read_text()),
        lambda: read_yaml(directory / "vocoder" / "config.yaml"),
        str(directory),
    )
    return ModelFiles(config.get("name", directory.name), directory, config, weights_checksum(files), files)


def checked_configs(config: object, vocoder: Callable[[], object], where: str) -> dict:
    """``model.yaml`` and the vocoder's config checked against their schemas (builders.py):
    a model folder that names code, or settings voicebatch does not know, is refused here,
    before any task goes on with it. Returns ``model.yaml``. Raises ``ModelError``."""
    try:
        checked = check_model_config(config, f"{where}/model.yaml")
        check_vocoder_config(vocoder(), f"{where}/vocoder/config.yaml")
    except ModelConfigError as e:
        raise ModelError(str(e)) from None
    return checked


def weights_checksum(files: dict) -> str:
    """sha256 over the manifest's file hashes: what identifies a model in cache keys."""
    return hashlib.sha256("".join(f"{k}={files[k]['sha256']}\n" for k in sorted(files)).encode()).hexdigest()


def _verify_files(directory: Path, files: dict) -> None:
    """Check every file's sha256, unless it is unchanged since the last full check.

    Hashing a 1.3 GB checkpoint takes seconds, and every task resolves its model: after a full
    check, each file's size and modification time are recorded in ``.verified.json``, and the
    hashes are computed again only when any of them (or the manifest) changed.
    """
    stats = {
        rel: [(directory / rel).stat().st_size, (directory / rel).stat().st_mtime_ns]
        for rel in (*files, "manifest.json")
    }
    stamp = directory / VERIFIED_STAMP
    try:
        if json.loads(stamp.read_text()) == stats:
            return
    except (OSError, ValueError):
        pass
    for relative, expected in files.items():
        actual = file_sha256(directory / relative)
        if actual != expected["sha256"]:
            raise ModelError(
                f"{directory / relative}: sha256 mismatch (expected {expected['sha256'][:12]}…, "
                f"got {actual[:12]}…): refusing a corrupted or altered model file"
            )
    try:
        stamp.write_text(json.dumps(stats))
    except OSError:
        log.debug("cannot record the verification in %s (read-only?): will hash again next time", directory)


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """What planning needs of a model: its files' names, sizes and sha256 (the checksum in
    every output hash) and its config, without the weights (``ModelStore.manifest``)."""

    name: str
    config: dict
    checksum: str
    files: dict  # manifest: relative path -> {"sha256", "size"}

    @classmethod
    def of(cls, model: ModelFiles) -> ModelManifest:
        return cls(model.name, model.config, model.checksum, model.files)

    @property
    def random_weights(self) -> bool:
        return bool(self.config.get("random_weights"))

    def lineage(self) -> dict:
        """What a manifest records of the model: enough to trace it, without needing its files."""
        return {
            "name": self.name,
            "checksum": self.checksum,
            "random_weights": self.random_weights,
            "files": {k: v["sha256"] for k, v in self.files.items()},
        }
