"""The model store: a model name, a model folder or an ``s3://`` prefix resolved to verified local
files (downloaded from the deployment's S3 models prefix or, where allowed, the Hugging Face hub,
into the local cache, hashed against the model's manifest), and the model's identity without its
weights for planning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from voicebatch.audio import file_sha256
from voicebatch.locations.storage import Storage, is_s3_uri, open_storage
from voicebatch.locations.workdir import default_cache_dir
from voicebatch.synthesis.models import (
    DEFAULT_MODEL,
    MODEL_FILES,
    ModelError,
    ModelFiles,
    ModelManifest,
    ModelRoots,
    checked_configs,
    load_model_files,
    weights_checksum,
    write_manifest,
)

log = logging.getLogger(__name__)


# Where the hub keeps each known model: (repo, file) for the checkpoint and vocabulary,
# and the packaged f5-tts config that describes its architecture.
HUB_MODELS = {
    "F5TTS_v1_Base": {
        "checkpoint": ("SWivid/F5-TTS", "F5TTS_v1_Base/model_1250000.safetensors"),
        "vocab": ("SWivid/F5-TTS", "F5TTS_v1_Base/vocab.txt"),
        "config": "F5TTS_v1_Base.yaml",
    },
}


HUB_VOCODER = "charactr/vocos-mel-24khz"


HUB_HOST = "huggingface.co"


class ModelStore:
    """Resolves model specs; owns the cache directory, the lock files and the S3 prefix."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        s3_prefix: Storage | None = None,
        *,
        hub: bool = True,
        allowed: ModelRoots | None = None,
    ) -> None:
        self.cache_dir = cache_dir or default_cache_dir()
        self.s3_prefix = s3_prefix
        self.hub = hub
        self.allowed = allowed  # the deployment's model roots (voicebatch.locations.allowlist); None: any
        self.fetched: list[str] = []  # what this store downloaded (for logs and tests)
        self._verified: dict[Path, ModelFiles] = {}

    def resolve(self, spec: str = DEFAULT_MODEL) -> ModelFiles:
        self._allowed(spec)
        if is_s3_uri(spec):
            return self._cached(_s3_cache_name(spec), [("S3", spec, self._from_s3_uri)])
        local = Path(spec).expanduser()
        if local.is_dir():
            return self._verify(local)
        if "/" in spec or spec.startswith("."):
            raise ModelError(f"model {spec!r}: no such directory")
        sources = []
        if self.s3_prefix is not None:
            sources.append(("S3 models prefix", f"{self.s3_prefix.uri}/{spec}/", self._from_s3_prefix))
        sources.append(("Hugging Face hub", _hub_description(spec), self._from_hub))
        return self._cached(spec, sources)

    def manifest(self, spec: str = DEFAULT_MODEL) -> ModelManifest:
        """The model's identity without its weights (planning never downloads them):
        read from a model directory or the local cache, else from the S3 prefix or ``s3://``
        spec (``manifest.json`` and ``model.yaml``, two small objects). Only a model that
        must come from the hub, which holds no manifest of ours, is resolved in full (then
        cached, and published to the S3 prefix, for the tasks that need the weights)."""
        self._allowed(spec)
        found = self._manifest_only(spec)
        return found if found is not None else ModelManifest.of(self.resolve(spec))

    def _allowed(self, spec: str) -> None:
        if self.allowed is not None:
            try:
                self.allowed.check_model(spec)
            except ValueError as e:  # LocationRefused: one line naming the setting
                raise ModelError(str(e)) from None

    def _manifest_only(self, spec: str) -> ModelManifest | None:
        if is_s3_uri(spec):
            cached, remote = self.cache_dir / _s3_cache_name(spec), spec
        else:
            local = Path(spec).expanduser()
            if local.is_dir():
                return ModelManifest.of(load_model_files(local, verify=False))
            if "/" in spec or spec.startswith("."):
                return None  # resolve() says what is wrong
            cached = self.cache_dir / spec
            remote = f"{self.s3_prefix.uri}/{spec}" if self.s3_prefix is not None else None
        if (cached / "manifest.json").is_file():
            log.info("model %s: manifest from the local cache %s", spec, cached)
            return ModelManifest.of(load_model_files(cached, verify=False))
        if remote is None:
            return None
        source = open_storage(remote, client=getattr(self.s3_prefix, "client", None))
        if not source.exists("manifest.json"):
            return None
        found = _remote_manifest(source, cached.name)
        log.info("model %s: manifest read from %s (no weights downloaded)", spec, remote)
        return found

    def _verify(self, directory: Path) -> ModelFiles:
        if directory not in self._verified:
            self._verified[directory] = load_model_files(directory)
        return self._verified[directory]

    def _cached(self, name: str, sources: list) -> ModelFiles:
        target = self.cache_dir / name
        if (target / "manifest.json").is_file():
            log.info("model %s: local cache hit at %s", name, target)
            return self._verify(target)
        with self._lock(name):
            if (target / "manifest.json").is_file():  # another process fetched it while we waited
                log.info("model %s: fetched by another process", name)
                return self._verify(target)
            tried = [f"local cache {target}: not there"]
            for label, where, fetch in sources:
                try:
                    return self._fetch(name, target, lambda tmp, f=fetch, w=where: f(name, w, tmp), label, where)
                except _Miss as e:
                    tried.append(f"{label} {where}: {e}")
            raise ModelError(f"model {name!r} not found; tried " + "; ".join(tried))

    def _fetch(self, name: str, target: Path, fetch: Callable[[Path], None], label: str, where: str) -> ModelFiles:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=f".{name}."))
        try:
            fetch(tmp)
            load_model_files(tmp)  # verify before it becomes visible
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.fetched.append(f"{label} {where}")
        log.info("model %s: fetched from %s %s", name, label, where)
        if label == "Hugging Face hub" and self.s3_prefix is not None:
            self._publish(name, target)
        self._verified[target] = load_model_files(target, verify=False)  # verified above, before the rename
        return self._verified[target]

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        locks = self.cache_dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{name}.lock").open("w") as handle:
            # flock is released by the kernel when the process dies: a crash never wedges it.
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _from_s3_uri(self, name: str, uri: str, tmp: Path) -> None:
        _download_layout(open_storage(uri), tmp)

    def _from_s3_prefix(self, name: str, where: str, tmp: Path) -> None:
        assert self.s3_prefix is not None
        _download_layout(
            open_storage(f"{self.s3_prefix.uri}/{name}", client=getattr(self.s3_prefix, "client", None)), tmp
        )

    def _from_hub(self, name: str, where: str, tmp: Path) -> None:
        if not self.hub:
            raise _Miss("hub disabled")
        if name not in HUB_MODELS:
            raise _Miss(f"unknown model name (known: {', '.join(HUB_MODELS)})")
        if os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable():
            # Without this a hub miss retries for ~25 s before failing.
            os.environ["HF_HUB_OFFLINE"] = "1"
            raise _Miss("offline (Hugging Face hub unreachable)")
        _download_from_hub(name, tmp)

    def _publish(self, name: str, directory: Path) -> None:
        assert self.s3_prefix is not None
        for relative in (*MODEL_FILES, "manifest.json"):  # manifest last: readers trust only complete models
            self.s3_prefix.put_file(f"{name}/{relative}", directory / relative)
        log.info("model %s: published to %s/%s/", name, self.s3_prefix.uri, name)


class _Miss(Exception):
    """A source that does not hold the model."""


def _s3_cache_name(spec: str) -> str:
    return f"s3-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def _remote_manifest(source: Storage, cache_name: str) -> ModelManifest:
    """``manifest.json`` and ``model.yaml`` from a model prefix; the config checked against its
    hash. Named as ``resolve`` names the same model (its config's name, else its cache folder)."""
    import yaml

    files = json.loads(source.get_bytes("manifest.json"))["files"]
    missing = [f for f in MODEL_FILES if f not in files]
    if missing:
        raise ModelError(f"{source.uri}/manifest.json: model files missing: {', '.join(missing)}")
    configs = {}
    for name in ("model.yaml", "vocoder/config.yaml"):
        data = source.get_bytes(name)
        if hashlib.sha256(data).hexdigest() != files[name]["sha256"]:
            raise ModelError(f"{source.uri}/{name}: sha256 does not match the manifest")
        configs[name] = data
    config = checked_configs(
        yaml.safe_load(configs["model.yaml"]), lambda: yaml.safe_load(configs["vocoder/config.yaml"]), source.uri
    )
    return ModelManifest(config.get("name", cache_name), config, weights_checksum(files), files)


def _hub_description(name: str) -> str:
    if name in HUB_MODELS:
        repo, path = HUB_MODELS[name]["checkpoint"]
        return f"hf://{repo}/{path}"
    return f"hf://?/{name}"


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _download_layout(source: Storage, tmp: Path) -> None:
    if not source.exists("manifest.json"):
        raise _Miss("no manifest.json there")
    for relative in (*MODEL_FILES, "manifest.json"):
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        source.get_file(relative, tmp / relative)


def _download_from_hub(name: str, tmp: Path) -> None:
    import importlib.util

    import yaml
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    spec = HUB_MODELS[name]
    downloads = {
        "model.safetensors": spec["checkpoint"],
        "vocab.txt": spec["vocab"],
        "vocoder/config.yaml": (HUB_VOCODER, "config.yaml"),
        "vocoder/pytorch_model.bin": (HUB_VOCODER, "pytorch_model.bin"),
    }
    for relative, (repo, path) in downloads.items():
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        cached = hf_hub_download(repo_id=repo, filename=path)
        shutil.copyfile(cached, tmp / relative)
        etag = (get_hf_file_metadata(hf_hub_url(repo, path)).etag or "").strip('"')
        if len(etag) == 64 and etag != file_sha256(tmp / relative):  # LFS files: the etag is the sha256
            raise ModelError(f"hf://{repo}/{path}: sha256 does not match the hub's record")
    f5_root = Path(next(iter(importlib.util.find_spec("f5_tts").submodule_search_locations)))
    packaged = yaml.safe_load((f5_root / "configs" / spec["config"]).read_text())["model"]
    config = {
        "name": name,
        "backbone": packaged["backbone"],
        "arch": packaged["arch"],
        "mel_spec": packaged["mel_spec"],
        "random_weights": False,
    }
    (tmp / "model.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_manifest(tmp)
