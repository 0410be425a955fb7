"""Messages on the warm engine's local socket: a JSON header and raw numeric arrays.

One message is a 4-byte big-endian header length, the header (UTF-8 JSON, an object), then
the bytes of the arrays the header lists under ``"arrays"`` (dtype and shape each), in order.
Only plain numeric dtypes cross; nothing is unpickled, so a message is data however it was
made. Sizes are checked before anything is allocated.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DTYPES = ("float32", "float64", "int16", "int32", "int64")
MAX_HEADER_BYTES = 64 * 2**20
MAX_ARRAY_BYTES = 8 * 2**30
_LENGTH = struct.Struct(">I")


class ConnectionClosed(ConnectionError):
    """The other side closed the connection (or died) before a whole message arrived."""


class ProtocolError(ValueError):
    """A message that does not follow this format."""


def send(sock: socket.socket, header: dict, arrays: Sequence[np.ndarray] = ()) -> None:
    import numpy as np

    payloads = [np.ascontiguousarray(a) for a in arrays]
    for array in payloads:
        if array.dtype.name not in DTYPES:
            raise ProtocolError(f"array dtype {array.dtype} cannot cross the socket (allowed: {', '.join(DTYPES)})")
    described = {**header, "arrays": [{"dtype": a.dtype.name, "shape": list(a.shape)} for a in payloads]}
    data = json.dumps(described, separators=(",", ":")).encode("utf-8")
    sock.sendall(_LENGTH.pack(len(data)) + data)
    for array in payloads:
        if array.nbytes:
            sock.sendall(memoryview(array).cast("B"))


def recv(sock: socket.socket) -> tuple[dict, list[np.ndarray]]:
    import numpy as np

    (size,) = _LENGTH.unpack(_read(sock, _LENGTH.size))
    if size > MAX_HEADER_BYTES:
        raise ProtocolError(f"message header of {size} bytes (at most {MAX_HEADER_BYTES})")
    try:
        header = json.loads(_read(sock, size).decode("utf-8"))
    except ValueError as e:
        raise ProtocolError(f"message header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise ProtocolError("message header is not an object")
    specs = header.pop("arrays", [])
    arrays = []
    total = 0
    for spec in specs:
        dtype, shape = spec.get("dtype"), spec.get("shape")
        if dtype not in DTYPES or not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ProtocolError(f"bad array description {spec!r}")
        count = 1
        for n in shape:
            count *= n
        nbytes = count * np.dtype(dtype).itemsize
        total += nbytes
        if total > MAX_ARRAY_BYTES:
            raise ProtocolError(f"message arrays over {MAX_ARRAY_BYTES} bytes")
        data = _read(sock, nbytes) if nbytes else None
        arrays.append(np.frombuffer(data, dtype=dtype).reshape(shape) if data else np.zeros(shape, dtype))
    return header, arrays


def _read(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise ConnectionClosed(f"connection closed after {got} of {size} bytes")
        got += n
    return buffer
