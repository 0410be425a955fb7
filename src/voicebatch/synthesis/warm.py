"""Warm engines: a synthesize task talks to its GPU's engine server instead of loading the model.

``WarmEngine`` has ``Engine``'s ``load`` and ``synthesize`` and runs them in the per-GPU server
of ``engine_server.py``, which it starts when none answers (a detached process that outlives
the task and exits after ``VOICEBATCH_ENGINE_IDLE_S`` without work). The task keeps its GPU
lease, so one task at a time uses a server. The client needs neither torch nor the model: a
task's fixed cost after the first is its own imports and a socket round trip.

Recovery: a server that dies (the connection drops or is refused) or wedges (no message, not
even a heartbeat, for ``silence_s``) is killed if still there, started again, and the request
sent again: ``synthesize`` returns either every chunk asked for, once each and in order, or
raises; chunks of a request that was lost are never returned. After ``max_restarts`` failed
restarts the task falls back to an in-process ``Engine`` (slower to start, same audio).

Settings (environment of the worker): ``VOICEBATCH_WARM_ENGINE`` (1/0; default on for GPU
leases, off on the CPU), ``VOICEBATCH_ENGINE_DIR`` (sockets and server logs; default the GPU
lock folder), ``VOICEBATCH_ENGINE_IDLE_S`` (900), ``VOICEBATCH_GPU_MEMORY_FRACTION`` (a cap on
the server's share of GPU memory; none by default), and the compile settings of
``compiled.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.synthesis import wire
from voicebatch.synthesis.buckets import DEFAULT_BUCKETS, FrameBuckets
from voicebatch.synthesis.compiled import compile_options_from_env
from voicebatch.synthesis.devices import DEFAULT_LOCK_DIR, DeviceLease
from voicebatch.synthesis.engine import (
    DEFAULT_BATCH_FRAMES,
    DEFAULT_PARAMS,
    ChunkAudio,
    ChunkRequest,
    Engine,
    Progress,
    Reference,
    SynthesisParams,
)
from voicebatch.synthesis.engine_server import code_version
from voicebatch.synthesis.models import ModelFiles
from voicebatch.synthesis.server_process import (
    is_server,
    kill_server,
    log_tail,
    say_goodbye,
    spawn_lock,
    start_server,
    wait_gone,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

WARM_ENV = "VOICEBATCH_WARM_ENGINE"
ENGINE_DIR_ENV = "VOICEBATCH_ENGINE_DIR"
IDLE_ENV = "VOICEBATCH_ENGINE_IDLE_S"
MEMORY_ENV = "VOICEBATCH_GPU_MEMORY_FRACTION"


@dataclass(frozen=True, slots=True)
class WarmSettings:
    directory: Path = DEFAULT_LOCK_DIR
    idle_s: float = 900.0  # the server exits after this long without a request
    heartbeat_s: float = 1.0
    silence_s: float = 60.0  # no message at all for this long while waiting: the server is wedged
    stall_s: float = 1200.0  # a request with no finished batch for this long (a first compile included): stuck
    startup_s: float = 600.0  # a new server must answer within this (imports, CUDA start)
    max_restarts: int = 2
    memory_fraction: float | None = None
    fallback: bool = True  # after max_restarts, synthesize in this process

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WarmSettings:
        env = os.environ if environ is None else environ
        values: dict = {}
        if env.get(ENGINE_DIR_ENV):
            values["directory"] = Path(env[ENGINE_DIR_ENV])
        if env.get(IDLE_ENV):
            values["idle_s"] = float(env[IDLE_ENV])
        if env.get(MEMORY_ENV):
            values["memory_fraction"] = float(env[MEMORY_ENV])
        return cls(**values)


class ServerLost(RuntimeError):
    """The engine server died or stopped answering during a request."""


class RequestRefused(ValueError):
    """The engine server refused the request (a chunk too long, a model that does not verify)."""


def warm_enabled(device: str, environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(WARM_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return device.startswith("cuda")


@contextlib.contextmanager
def task_engine(
    files: ModelFiles, lease: DeviceLease, environ: Mapping[str, str] | None = None
) -> Iterator[Engine | WarmEngine]:
    """The engine a synthesize task uses on its leased device: the GPU's warm server, or one
    loaded in this process (``VOICEBATCH_WARM_ENGINE``, default: warm on GPUs). The warm
    engine's connection is closed on exit; its server stays for the next task."""
    env = os.environ if environ is None else environ
    options = compile_options_from_env(dict(env))
    compile_kwargs = {"compile": options.backend, "compile_mode": options.mode} if options else {}
    if not warm_enabled(lease.device, env):
        yield Engine(files, device=lease.device, **compile_kwargs)
        return
    settings = WarmSettings.from_env(env)
    engine = WarmEngine(files, device=lease.device, physical_id=lease.physical_id, settings=settings, **compile_kwargs)
    try:
        yield engine
    finally:
        engine.close()


class WarmEngine:
    """``Engine``'s interface, served by the device's engine server."""

    def __init__(
        self,
        files: ModelFiles,
        *,
        device: str = "cuda:0",
        physical_id: str | None = None,
        dtype: torch.dtype | str | None = None,
        attention: str | None = None,
        compile: str | None = None,
        compile_mode: str = "default",
        buckets: FrameBuckets | bool | None = None,
        settings: WarmSettings | None = None,
    ) -> None:
        self.files, self.device, self.physical_id = files, device, physical_id
        self.settings = settings or WarmSettings()
        self.compile, self.compile_mode = compile, compile_mode
        if buckets is None or buckets is True:
            buckets = DEFAULT_BUCKETS if (compile or buckets is True) else None
        self.buckets: FrameBuckets | None = buckets or None
        dtype_name = dtype if isinstance(dtype, str) or dtype is None else str(dtype).removeprefix("torch.")
        self.options = {
            "dtype": dtype_name,
            "attention": attention,
            "compile": compile,
            "compile_mode": compile_mode,
            "buckets": list(self.buckets.sizes) if self.buckets else None,
        }
        gpu = device.startswith("cuda")
        self.name = f"gpu-{physical_id if physical_id is not None else device.split(':')[-1]}" if gpu else "cpu"
        self.socket_path = self.settings.directory / f"engine-{self.name}.sock"
        self.log_path = self.settings.directory / f"engine-{self.name}.log"
        self.server: dict | None = None  # the server's last hello
        self.restarts = 0
        self.local: Engine | None = None  # the fallback, once the server could not be kept alive
        self._sock: socket.socket | None = None
        self._peer_pid: int | None = None  # the server's pid from the socket, known before it answers

    # -- Engine's interface -----------------------------------------------------------------

    def load(self) -> WarmEngine:
        """Have the server load the model (if it has not); ``server`` then describes it."""
        if self.local is None:
            reply, _ = self._call({"op": "load", **self._model()})
            if reply is not None:
                self.server = {k: v for k, v in reply.items() if k not in ("type", "loaded_now")}
        return self

    def synthesize(
        self,
        references: Mapping[str, Reference],
        chunks: Sequence[ChunkRequest],
        params: SynthesisParams = DEFAULT_PARAMS,
        *,
        batch_frames: int = DEFAULT_BATCH_FRAMES,
        max_batch: int | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> list[ChunkAudio]:
        chunks = list(chunks)
        if self.local is not None:
            return self.local.synthesize(
                references, chunks, params, batch_frames=batch_frames, max_batch=max_batch, progress=progress
            )
        used = sorted({c.voice for c in chunks})
        header = {
            "op": "synthesize",
            **self._model(),
            "references": [{"voice": v, "text": references[v].text} for v in used],
            "chunks": [{f.name: getattr(c, f.name) for f in fields(ChunkRequest)} for c in chunks],
            "params": {f.name: getattr(params, f.name) for f in fields(SynthesisParams)},
            "batch_frames": batch_frames,
            "max_batch": max_batch,
        }
        arrays = [references[v].samples for v in used]
        reply, payload = self._call(header, arrays, progress)
        if reply is None:  # fell back while trying
            return self.synthesize(
                references, chunks, params, batch_frames=batch_frames, max_batch=max_batch, progress=progress
            )
        return _chunk_audio(chunks, reply["chunks"], payload)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def shutdown_server(self) -> None:
        """Ask the server to exit (benchmarks, tests, a deployment draining a worker)."""
        with contextlib.suppress(OSError, ServerLost, wire.ConnectionClosed):
            sock = self._sock or self._connect_existing()
            if sock is not None:
                say_goodbye(sock)
        self.close()

    # -- one request, with recovery ---------------------------------------------------------

    def _model(self) -> dict:
        model = {"directory": str(self.files.directory), "checksum": self.files.checksum}
        return {"model": model, "engine": self.options}

    def _call(self, header: dict, arrays: Sequence = (), progress: Callable | None = None) -> tuple:
        errors = []
        for attempt in range(self.settings.max_restarts + 1):
            try:
                sock = self._connection()
                wire.send(sock, header, arrays)
                return self._await(sock, progress)
            except (ServerLost, OSError, wire.ProtocolError) as error:
                if isinstance(error, TimeoutError):  # the request could not even be sent
                    error = ServerLost(f"wedged: not reading for {self.settings.silence_s:g} s")
                errors.append(f"{type(error).__name__}: {error}")
                self._lost(error)
                if attempt < self.settings.max_restarts:
                    self.restarts += 1
                    log.warning(
                        "engine server lost (%s): starting it again (%d of %d)",
                        error,
                        attempt + 1,
                        self.settings.max_restarts,
                    )
            except RequestRefused:  # a bad request, answered in full: the connection stays usable
                raise
            except BaseException:  # the caller's progress callback, an interrupt: mid-answer, so drop it
                self.close()
                raise
        message = f"engine server {self.socket_path} failed {len(errors)} times: " + "; ".join(errors)
        if not self.settings.fallback:
            raise ServerLost(message)
        log.error("%s; synthesizing in this process instead", message)
        self.local = Engine(self.files, device=self.device, **self._engine_kwargs()).load()
        return None, None

    def _await(self, sock: socket.socket, progress: Callable | None) -> tuple[dict, list]:
        """The request's answer. Heartbeats say the server lives; a running request whose
        finished-batch count has not moved for ``stall_s`` is stuck (a hung device)."""
        sock.settimeout(self.settings.silence_s)
        last, moved = None, time.monotonic()
        while True:
            try:
                reply, payload = wire.recv(sock)
            except TimeoutError:
                raise ServerLost(f"wedged: no message for {self.settings.silence_s:g} s") from None
            except (wire.ConnectionClosed, ConnectionResetError) as e:
                raise ServerLost(f"died: {e}") from None
            kind = reply.get("type")
            if kind == "heartbeat":
                if reply.get("state") != "running" or reply.get("progress") != last:
                    last, moved = reply.get("progress"), time.monotonic()
                elif time.monotonic() - moved > self.settings.stall_s:
                    raise ServerLost(f"stalled: no batch finished in {self.settings.stall_s:g} s")
                continue
            if kind == "progress":
                moved = time.monotonic()
                if progress is not None:
                    progress(Progress(reply["done"], reply["total"], reply["audio_seconds"], reply["elapsed"]))
                continue
            if kind == "error":
                if reply.get("kind") == "input":
                    raise RequestRefused(reply["error"])
                raise ServerLost(f"{reply.get('kind')} error: {reply['error']}")
            return reply, payload

    def _lost(self, error: BaseException) -> None:
        self.close()
        pid = (self.server or {}).get("pid") or self._peer_pid
        if pid and kill_server(pid, self.socket_path):
            log.warning("killed engine server %d (%s)", pid, error)
        self.server = self._peer_pid = None

    def _engine_kwargs(self) -> dict:
        import torch

        options = dict(self.options)
        dtype = getattr(torch, options["dtype"]) if options["dtype"] else None
        buckets = FrameBuckets(tuple(options["buckets"])) if options["buckets"] else False
        return {
            "dtype": dtype,
            "attention": options["attention"],
            "compile": options["compile"],
            "compile_mode": options["compile_mode"],
            "buckets": buckets,
        }

    # -- finding or starting the server -----------------------------------------------------

    def _connection(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = self._connect_existing()
        if sock is None:
            with spawn_lock(self.socket_path):
                sock = self._connect_existing()  # started by another task while we waited
                if sock is None:
                    self._spawn()
                    sock = self._connect_existing(timeout=self.settings.startup_s)
                    if sock is None:
                        raise ServerLost(f"the engine server did not start: {log_tail(self.log_path)}")
        self._sock = sock
        return sock

    def _spawn(self) -> None:
        device, visible = self.device, None
        if self.device.startswith("cuda") and self.physical_id is not None:
            device, visible = "cuda:0", str(self.physical_id)  # the server sees its GPU alone
        options = ["--idle-s", str(self.settings.idle_s), "--heartbeat-s", str(self.settings.heartbeat_s)]
        if self.settings.memory_fraction:
            options += ["--memory-fraction", str(self.settings.memory_fraction)]
        try:
            start_server(self.socket_path, self.log_path, device, visible, options, self.settings.startup_s)
        except RuntimeError as e:
            raise ServerLost(str(e)) from None

    def _connect_existing(self, timeout: float | None = None) -> socket.socket | None:
        """A connected, greeted server of this code version, or None when there is none."""
        if not self.socket_path.exists():
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket_path))
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            self._peer_pid = struct.unpack("3i", creds)[0]
            sock.settimeout(timeout or self.settings.silence_s)
            wire.send(sock, {"op": "hello"})
            hello, _ = wire.recv(sock)
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            return None
        except (ConnectionResetError, wire.ConnectionClosed) as e:
            sock.close()
            # A server being killed can still queue a connection in its listener's backlog and
            # reset it as it exits: a dead server's name, not a server that failed to answer.
            if self._peer_pid and not is_server(self._peer_pid, self.socket_path):
                wait_gone(self._peer_pid, 5.0)
                self._peer_pid = None
                return None
            raise ServerLost(f"no answer to hello from {self.socket_path}: {e}") from None
        except (TimeoutError, OSError, wire.ProtocolError) as e:
            sock.close()
            raise ServerLost(f"no answer to hello from {self.socket_path}: {e}") from None
        if hello.get("code") != code_version():
            log.info("engine server %s runs other code (%s): replacing it", hello.get("pid"), hello.get("code"))
            with contextlib.suppress(OSError, wire.ConnectionClosed):
                say_goodbye(sock)
            sock.close()
            wait_gone(hello.get("pid"), 30.0)
            return None
        self.server = hello
        return sock


def _chunk_audio(chunks: Sequence[ChunkRequest], described: list[dict], payload: list) -> list[ChunkAudio]:
    """The server's answer as ChunkAudio, checked: exactly the chunks asked for, in order."""
    keys = [c["key"] for c in described]
    if keys != [c.key for c in chunks] or len(payload) != 2 * len(chunks):
        raise RuntimeError(f"engine server answered {len(keys)} chunks for {len(chunks)} asked: refusing the answer")
    return [ChunkAudio(c["key"], payload[2 * i], int(c["frames"]), payload[2 * i + 1]) for i, c in enumerate(described)]
