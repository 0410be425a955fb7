"""A warm engine: one process per GPU keeps the model loaded between synthesize tasks.

    python -m voicebatch.synthesis.engine_server --socket PATH [--device cuda:0] [--idle-s 900]

A synthesize task pays imports, CUDA start-up, the model load and the first batch's warm-up
(14.4 s measured on an H200) before its first useful batch. This server pays them once: a task
leases its GPU as before (``devices.lease_device``), then asks the server of that GPU for its
chunks over a Unix socket (``warm.WarmEngine`` starts the server when there is none). The server
answers one connection at a time, so the GPU lease still decides who uses the GPU.

Requests (``wire.py`` messages; arrays travel raw, never pickled):

- ``{"op": "hello"}``: ``{"type": "hello", "pid", "device", "model", "loads", "requests"}``.
- ``{"op": "load", "model", "engine"}``: load (or keep) that model with those engine options.
- ``{"op": "synthesize", "model", "engine", "references", "chunks", "params", "batch_frames",
  "max_batch"}`` with each reference's samples as arrays: ``progress`` messages as batches
  finish, then ``{"type": "result", "chunks": [{"key", "frames"}]}`` with each chunk's samples
  and mel.
- ``{"op": "shutdown"}``.

While a request runs, a heartbeat message goes out every ``--heartbeat-s``: the client tells a
wedged server (no message for a while) from a slow one. A bad request gets ``{"type": "error",
"kind": "input"}`` and the server stays; a CUDA error leaves the device unusable, so the
server answers ``"kind": "fatal"`` and exits (the client starts a new one). With no request for
``--idle-s`` seconds it exits and frees the GPU. Only processes of the server's own user may
connect (the socket's folder is private and the peer's uid is checked).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from voicebatch.synthesis import wire

log = logging.getLogger("voicebatch.synthesis.engine_server")

PROTOCOL = 1
_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def code_version() -> str:
    """A hash of the synthesis code and the wire protocol: a client replaces a server that an
    older version left running instead of being served by old code."""
    digest = hashlib.sha256(f"protocol {PROTOCOL}".encode())
    for path in sorted(_PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class EngineServer:
    def __init__(self, path: Path, device: str, *, idle_s: float, heartbeat_s: float) -> None:
        self.path, self.device = path, device
        self.idle_s, self.heartbeat_s = idle_s, heartbeat_s
        self.engine = None
        self.key: tuple | None = None
        self.loads = self.requests = 0
        self.progress = 0  # batches finished: heartbeats carry it, so a client sees work advance
        self.started = self.last_activity = time.monotonic()
        self.code = code_version()
        self.stopping = threading.Event()
        self._clients = 0
        self._state = threading.Lock()  # the counters above
        self._engine_lock = threading.Lock()  # one request at a time uses the engine

    # -- lifecycle --------------------------------------------------------------------------

    def serve(self) -> int:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        listener.bind(str(staging))
        staging.chmod(0o600)
        listener.listen(16)
        staging.replace(self.path)  # appears whole: a client never finds a half-made server
        inode = self.path.stat().st_ino
        log.info("engine server %d listening on %s (device %s)", os.getpid(), self.path, self.device)
        listener.settimeout(min(1.0, self.idle_s))  # wakes to check for shutdown and idleness
        try:
            while not self.stopping.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    with self._state:
                        idle = self._clients == 0 and time.monotonic() - self.last_activity >= self.idle_s
                    if idle:
                        log.info("no request for %.0f s: exiting to free the device", self.idle_s)
                        return 0
                    continue
                if not self._same_user(conn):
                    conn.close()
                    continue
                with self._state:
                    self._clients += 1
                threading.Thread(target=self._client, args=(conn,), daemon=True).start()
            return 0
        finally:
            listener.close()
            try:
                if self.path.stat().st_ino == inode:  # a newer server may have taken the name
                    self.path.unlink()
            except FileNotFoundError:
                pass

    def _same_user(self, conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            log.warning("refused a connection from pid %d (uid %d is not this server's)", pid, uid)
            return False
        return True

    def _client(self, conn: socket.socket) -> None:
        """Serve one client's requests until it closes the connection (a thread per client:
        a waiting client is greeted and sent heartbeats while another's request runs)."""
        conn.settimeout(self.idle_s)  # a client gone quiet does not count as activity forever
        send_lock = threading.Lock()

        def send(header: dict, arrays: list | None = None) -> None:
            with send_lock:
                wire.send(conn, header, arrays or ())

        try:
            while not self.stopping.is_set():
                try:
                    header, arrays = wire.recv(conn)
                except (wire.ConnectionClosed, ConnectionResetError, TimeoutError):
                    return
                except wire.ProtocolError as e:
                    send({"type": "error", "kind": "input", "error": str(e)})
                    return
                op = header.get("op")
                if op == "shutdown":
                    self.stopping.set()
                    send({"type": "bye"})
                    return
                if op == "hello":
                    send(self.hello())
                elif op in ("load", "synthesize"):
                    self._run(send, op, header, arrays)
                else:
                    send({"type": "error", "kind": "input", "error": f"unknown op {op!r}"})
        except OSError:
            return  # the client went away while we answered
        finally:
            conn.close()
            with self._state:
                self._clients -= 1
                self.last_activity = time.monotonic()

    def hello(self) -> dict:
        return {
            "type": "hello",
            "protocol": PROTOCOL,
            "code": self.code,
            "pid": os.getpid(),
            "device": self.device,
            "model": self.key[1] if self.key else None,
            "loads": self.loads,
            "requests": self.requests,
            "uptime_s": round(time.monotonic() - self.started, 3),
        }

    # -- requests ---------------------------------------------------------------------------

    def _run(self, send, op: str, header: dict, arrays: list) -> None:
        """One request under the engine lock, with heartbeats from before it gets the lock
        until its answer is ready (the answer is sent after the last heartbeat)."""
        done, state = threading.Event(), {"state": "queued"}
        beat = threading.Thread(target=self._heartbeat, args=(send, done, state), daemon=True)
        beat.start()
        reply: tuple[dict, list | None]
        fatal = False
        try:
            with self._engine_lock:
                state["state"] = "running"
                with self._state:
                    self.requests += 1
                loaded = self._engine(header)
                if op == "load":
                    reply = ({"type": "loaded", "loaded_now": loaded, **self.hello()}, None)
                else:
                    reply = self._synthesize(send, header, arrays)
        except (ValueError, KeyError, TypeError) as e:
            reply = ({"type": "error", "kind": "input", "error": f"{type(e).__name__}: {e}"}, None)
        except Exception as e:
            fatal = "CUDA error" in str(e) or "CUBLAS" in str(e) or "cuDNN" in str(e)
            log.exception("request failed%s", ": the device is unusable, exiting" if fatal else "")
            reply = ({"type": "error", "kind": "fatal" if fatal else "internal", "error": str(e)[:2000]}, None)
        finally:
            done.set()
            beat.join()
        try:
            send(*reply)
        finally:
            if fatal:
                os._exit(3)  # a broken CUDA context cannot be repaired in this process

    def _engine(self, header: dict) -> bool:
        """The engine for the request's model and options, loading it when they changed."""
        from voicebatch.synthesis.models import load_model_files

        model, options = header["model"], header.get("engine", {})
        key = (model["directory"], model["checksum"], tuple(sorted(options.items())))
        if self.key == key and self.engine is not None:
            return False
        self._drop()
        files = load_model_files(Path(model["directory"]))
        if files.checksum != model["checksum"]:
            raise ValueError(f"{model['directory']}: checksum {files.checksum[:12]}… is not the one asked for")
        started = time.perf_counter()
        self.engine = _build_engine(files, self.device, options).load()
        self.key, self.loads = key, self.loads + 1
        log.info("loaded %s in %.2f s (load %d)", files.name, time.perf_counter() - started, self.loads)
        return True

    def _drop(self) -> None:
        if self.engine is None:
            return
        self.engine, self.key = None, None
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _synthesize(self, send, header: dict, arrays: list) -> tuple[dict, list]:
        from voicebatch.synthesis.engine import ChunkRequest, Progress, Reference, SynthesisParams

        refs = header["references"]
        if len(arrays) != len(refs):
            raise ValueError(f"{len(refs)} references but {len(arrays)} sample arrays")
        references = {r["voice"]: Reference(r["voice"], a, r["text"]) for r, a in zip(refs, arrays, strict=True)}
        chunks = [ChunkRequest(**c) for c in header["chunks"]]

        def progress(p: Progress) -> None:
            with self._state:
                self.progress += 1
            send(
                {
                    "type": "progress",
                    "done": p.done,
                    "total": p.total,
                    "audio_seconds": p.audio_seconds,
                    "elapsed": p.elapsed,
                }
            )

        kwargs = {"batch_frames": header["batch_frames"]} if header.get("batch_frames") else {}
        audio = self.engine.synthesize(
            references,
            chunks,
            SynthesisParams(**header.get("params", {})),
            max_batch=header.get("max_batch"),
            progress=progress,
            **kwargs,
        )
        payload = [a for result in audio for a in (result.samples, result.mel)]
        described = [{"key": a.key, "frames": a.frames} for a in audio]
        return {"type": "result", "chunks": described}, payload

    def _heartbeat(self, send, done: threading.Event, state: dict) -> None:
        while not done.wait(self.heartbeat_s):
            try:
                send({"type": "heartbeat", "progress": self.progress, "state": state["state"]})
            except OSError:
                return


def _build_engine(files, device: str, options: dict):
    import torch

    from voicebatch.synthesis.buckets import FrameBuckets
    from voicebatch.synthesis.engine import Engine

    dtype = getattr(torch, options["dtype"]) if options.get("dtype") else None
    buckets = options.get("buckets")
    if isinstance(buckets, list):
        buckets = FrameBuckets(tuple(buckets))
    return Engine(
        files,
        device=device,
        dtype=dtype,
        attention=options.get("attention"),
        compile=options.get("compile"),
        compile_mode=options.get("compile_mode") or "default",
        buckets=buckets,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A warm voicebatch engine on one device, served on a Unix socket.")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--idle-s", type=float, default=900.0, help="exit after this long without a request")
    parser.add_argument("--heartbeat-s", type=float, default=1.0)
    parser.add_argument("--memory-fraction", type=float, help="cap this process's share of the GPU's memory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # runs the finally: the socket name is removed
    if args.device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(args.device))
        if args.memory_fraction:
            torch.cuda.set_per_process_memory_fraction(args.memory_fraction, torch.device(args.device))
            log.info("GPU memory capped at %.0f %% for this process", args.memory_fraction * 100)
    # The heavy imports before the socket appears: a client waits for the socket anyway, and
    # imports that hold the interpreter for seconds would otherwise delay the first heartbeats.
    import f5_tts.model  # noqa: F401
    import torch

    import voicebatch.synthesis.engine  # noqa: F401

    server = EngineServer(args.socket, args.device, idle_s=args.idle_s, heartbeat_s=args.heartbeat_s)
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
