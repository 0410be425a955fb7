"""Speech models (faster-whisper, MMS_FA) through the same store as F5's weights.

Same rules as ``voicebatch.synthesis.models``: a local cache (``$VOICEBATCH_MODEL_DIR``,
under ``speech/``), then the S3 models prefix (``<prefix>/speech/<name>/``), then the
public source (the Hugging Face hub for Whisper, torchaudio's download for MMS_FA);
an inter-process file lock around fetches, a temporary directory renamed into place,
sha256 of every file checked against ``manifest.json`` before use, and a download
published back to the S3 prefix so the next worker starts warm.

Layout of one model directory::

    manifest.json   {"kind": "whisper" | "mms_fa", "random_weights": bool, "files": {path: {sha256, size}}}
    ...             the model's own files (CTranslate2 model.bin, config.json, tokenizer.json,
                    preprocessor_config.json, vocabulary.*; or MMS_FA's model.pt and config.json)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from voicebatch.audio import file_sha256
from voicebatch.locations.storage import Storage
from voicebatch.locations.workdir import default_cache_dir
from voicebatch.synthesis.model_store import hub_reachable
from voicebatch.synthesis.models import ModelError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# faster-whisper's published CTranslate2 conversions (faster_whisper.utils._MODELS).
WHISPER_REPOS = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
}
WHISPER_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
MMS_FA_NAME = "mms_fa"


@dataclass(frozen=True, slots=True)
class SpeechModel:
    name: str  # store name: "whisper-large-v3-turbo", "mms_fa"
    kind: str  # "whisper" | "mms_fa"
    directory: Path
    files: dict  # relative path -> {"sha256", "size"}
    random_weights: bool

    @property
    def checksum(self) -> str:
        return hashlib.sha256(
            "".join(f"{k}={self.files[k]['sha256']}\n" for k in sorted(self.files)).encode()
        ).hexdigest()

    def lineage(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "checksum": self.checksum,
            "random_weights": self.random_weights,
            "files": {k: v["sha256"] for k, v in self.files.items()},
        }


def whisper_store_name(size_or_repo: str) -> str:
    """``large-v3-turbo`` -> ``whisper-large-v3-turbo``; ``org/repo`` -> ``whisper-org--repo``."""
    return "whisper-" + size_or_repo.replace("/", "--")


def write_speech_manifest(directory: Path, kind: str, *, random_weights: bool = False) -> dict:
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == MANIFEST or relative.startswith("."):
            continue
        files[relative] = {"sha256": file_sha256(path), "size": path.stat().st_size}
    document = {"kind": kind, "random_weights": random_weights, "files": files}
    (directory / MANIFEST).write_text(json.dumps(document, indent=2) + "\n")
    return document


def load_speech_model(directory: Path, name: str | None = None) -> SpeechModel:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise ModelError(f"{directory}: not a speech model directory (no {MANIFEST})")
    document = json.loads(manifest.read_text())
    for relative, expected in document["files"].items():
        path = directory / relative
        if not path.is_file():
            raise ModelError(f"{path}: missing (listed in {MANIFEST})")
        if file_sha256(path) != expected["sha256"]:
            raise ModelError(f"{path}: sha256 mismatch: refusing a corrupted or altered model file")
    return SpeechModel(
        name or directory.name,
        document["kind"],
        directory,
        document["files"],
        bool(document.get("random_weights")),
    )


class SpeechModelStore:
    def __init__(self, cache_dir: Path | None = None, s3_prefix: Storage | None = None, *, hub: bool = True) -> None:
        self.cache_dir = (cache_dir or default_cache_dir()) / "speech"
        self.s3_prefix = s3_prefix
        self.hub = hub
        self.fetched: list[str] = []
        self._loaded: dict[str, SpeechModel] = {}

    def resolve(self, name: str, *, download: bool = True) -> SpeechModel:
        """The model, from the cache, the S3 prefix, or (``download``) its public source."""
        if name in self._loaded:
            return self._loaded[name]
        target = self.cache_dir / name
        if not (target / MANIFEST).is_file():
            with self._lock(name):
                if not (target / MANIFEST).is_file():
                    self._fetch(name, target, download)
        self._loaded[name] = load_speech_model(target, name)
        return self._loaded[name]

    def available(self, name: str) -> SpeechModel | None:
        """The model when the cache or the S3 prefix holds it (no download), else None."""
        try:
            return self.resolve(name, download=False)
        except ModelError as e:
            log.debug("speech model %s not in the store: %s", name, e)
            return None

    def _fetch(self, name: str, target: Path, download: bool) -> None:
        sources: list[tuple[str, Callable[[str, Path], None]]] = []
        if self.s3_prefix is not None:
            sources.append((f"S3 models prefix {self.s3_prefix.uri}/speech/{name}/", self._from_s3))
        if download and self.hub:
            sources.append((f"public source of {name}", self._from_public))
        tried = [f"local cache {target}: not there"]
        for label, fetch in sources:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=f".{name}."))
            try:
                fetch(name, tmp)
                load_speech_model(tmp, name)  # verified before it becomes visible
                tmp.rename(target)
            except _Miss as e:
                shutil.rmtree(tmp, ignore_errors=True)
                tried.append(f"{label}: {e}")
                continue
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self.fetched.append(label)
            log.info("speech model %s: fetched from %s", name, label)
            if label.startswith("public") and self.s3_prefix is not None:
                self._publish(name, target)
            return
        raise ModelError(f"speech model {name!r} not found; tried " + "; ".join(tried))

    def _from_s3(self, name: str, tmp: Path) -> None:
        assert self.s3_prefix is not None
        prefix = f"speech/{name}/"
        if not self.s3_prefix.exists(prefix + MANIFEST):
            raise _Miss("no manifest.json there")
        document = json.loads(self.s3_prefix.get_bytes(prefix + MANIFEST))
        for relative in document["files"]:
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            self.s3_prefix.get_file(prefix + relative, tmp / relative)
        (tmp / MANIFEST).write_text(json.dumps(document, indent=2) + "\n")

    def _from_public(self, name: str, tmp: Path) -> None:
        if os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable():
            raise _Miss("offline (the hub cannot be reached)")
        if name == MMS_FA_NAME:
            _download_mms_fa(tmp)
        elif name.startswith("whisper-"):
            _download_whisper(name.removeprefix("whisper-"), tmp)
        else:
            raise _Miss("unknown speech model name")

    def _publish(self, name: str, directory: Path) -> None:
        assert self.s3_prefix is not None
        document = json.loads((directory / MANIFEST).read_text())
        for relative in (*document["files"], MANIFEST):  # manifest last: readers trust complete models only
            self.s3_prefix.put_file(f"speech/{name}/{relative}", directory / relative)
        log.info("speech model %s: published to %s/speech/%s/", name, self.s3_prefix.uri, name)

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        locks = self.cache_dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if the process dies
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class _Miss(Exception):
    """A source that does not hold the model."""


def _download_whisper(size_or_repo: str, tmp: Path) -> None:
    from huggingface_hub import snapshot_download

    repo = size_or_repo.replace("--", "/") if "--" in size_or_repo else WHISPER_REPOS.get(size_or_repo)
    if repo is None:
        raise _Miss(f"unknown Whisper size {size_or_repo!r} (known: {', '.join(WHISPER_REPOS)}, or org/repo)")
    snapshot_download(repo, local_dir=str(tmp), allow_patterns=WHISPER_FILES)
    shutil.rmtree(tmp / ".cache", ignore_errors=True)
    write_speech_manifest(tmp, "whisper")


def _download_mms_fa(tmp: Path) -> None:
    import torch
    from torchaudio.pipelines import MMS_FA

    torch.hub.download_url_to_file(MMS_FA._path, str(tmp / "model.pt"), progress=False)
    write_mms_config(tmp, MMS_FA._params, list(MMS_FA.get_labels(star=None)), remove_aux_axis=MMS_FA._remove_aux_axis)
    write_speech_manifest(tmp, "mms_fa")


def write_mms_config(directory: Path, params: dict, labels: list[str], *, remove_aux_axis: tuple | None) -> None:
    """config.json of an MMS_FA-style model: wav2vec2 parameters, output labels, aux axes to drop."""
    document = {
        "params": {k: (list(map(list, v)) if k == "extractor_conv_layer_config" else v) for k, v in params.items()},
        "labels": labels,
        "remove_aux_axis": list(remove_aux_axis) if remove_aux_axis else None,
        "sample_rate": 16000,
    }
    (directory / "config.json").write_text(json.dumps(document, indent=2) + "\n")
