"""Wire encodings, negotiated per connection through the WebSocket subprotocol.

- ``pp.json.v1``: every server message is a JSON text frame.
- ``pp.msgpack-zstd.v1``: every server message is a binary frame: one flag byte
  (``0`` plain, ``1`` zstd-compressed) followed by a msgpack map. Frames at least
  ``compress_min_bytes`` long are compressed (live frames of a few rows are not: on
  them zstd costs more CPU than the bytes it saves; replays and snapshots are).

Under load several queued messages share one WebSocket message: JSON messages are then
separated by newlines (JSON lines), msgpack maps follow each other after the flag byte
(a msgpack stream); :func:`decode_messages` returns them all. Client requests are always
JSON text frames. A data frame is
``{"type": "data", "topic": T, "rows": [{"seq": ..., "ts": ..., "symbol": ..., ...}]}``.
Frames are assembled from rows encoded once per batch (see :mod:`rowcodec`), so the
same row bytes are shared by every client that receives the row.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
import numpy as np
import pyarrow as pa
import zstandard

from pyplatform.signals.rowcodec import encode_json_rows, encode_msgpack_rows, msgpack_array_header, msgpack_str

__all__ = ["JSON_SUBPROTOCOL", "MSGPACK_SUBPROTOCOL", "SUBPROTOCOLS", "Codec", "JsonCodec", "MsgpackZstdCodec",
           "codec_for", "decode_frame", "decode_messages"]

JSON_SUBPROTOCOL = "pp.json.v1"
MSGPACK_SUBPROTOCOL = "pp.msgpack-zstd.v1"
SUBPROTOCOLS = (MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL)

_PLAIN, _ZSTD = 0, 1


class Codec:
    """One wire encoding: encodes row batches once and assembles frames from row bytes."""

    name: str
    text: bool

    def encode_rows(self, rows: pa.Table) -> tuple[bytes, np.ndarray]:
        raise NotImplementedError

    def frame(self, kind: str, topic: str, pieces: list[bytes], count: int) -> bytes:
        """A ``{"type": kind, "topic": topic, "rows": [...]}`` frame from encoded row runs."""
        raise NotImplementedError

    def control(self, message: dict[str, Any]) -> bytes:
        raise NotImplementedError

    # Pieces for assembling many clients' frames at once (see :mod:`assemble`):
    # frame = finish(prefix(kind, topic, count) + rows[:-trim] + suffix)
    trim: int = 0
    suffix: bytes = b""

    def prefix(self, kind: str, topic: str, count: int) -> bytes:
        raise NotImplementedError

    def finish(self, payload: bytes) -> bytes:
        return payload

    def mergeable(self, frame: bytes) -> bool:
        """Whether ``frame`` may share a WebSocket message with its neighbours."""
        return True

    def merge(self, frames: list[bytes]) -> bytes:
        """Several queued messages as one WebSocket message (a slow or busy client gets fewer, bigger frames)."""
        raise NotImplementedError


class JsonCodec(Codec):
    name = JSON_SUBPROTOCOL
    text = True

    def encode_rows(self, rows: pa.Table) -> tuple[bytes, np.ndarray]:
        # each row ends with "}," so runs of rows concatenate into an array body
        return encode_json_rows(rows, terminator="},")

    trim = 1  # the trailing comma of the last row
    suffix = b"]}"

    def prefix(self, kind: str, topic: str, count: int) -> bytes:
        return b'{"type":"%s","topic":%s,"rows":[' % (kind.encode(), json.dumps(topic).encode())

    def frame(self, kind: str, topic: str, pieces: list[bytes], count: int) -> bytes:
        body = b"".join(pieces)
        return b"".join((self.prefix(kind, topic, count), body[:-1], self.suffix))

    def control(self, message: dict[str, Any]) -> bytes:
        return json.dumps(message, separators=(",", ":")).encode()

    def merge(self, frames: list[bytes]) -> bytes:
        # JSON lines: the encoders escape newlines inside strings, so "\n" only separates messages
        return b"\n".join(frames)


class MsgpackZstdCodec(Codec):
    name = MSGPACK_SUBPROTOCOL
    text = False

    def __init__(self, compress_min_bytes: int = 4096, level: int = 3) -> None:
        self.compress_min_bytes = compress_min_bytes
        self._zc = zstandard.ZstdCompressor(level=level)
        self._heads: dict[tuple[str, str], bytes] = {}

    def encode_rows(self, rows: pa.Table) -> tuple[bytes, np.ndarray]:
        return encode_msgpack_rows(rows)

    def _wrap(self, payload: bytes) -> bytes:
        if len(payload) >= self.compress_min_bytes:
            return b"\x01" + self._zc.compress(payload)
        return b"\x00" + payload

    def prefix(self, kind: str, topic: str, count: int) -> bytes:
        """Flag byte 0 + the map up to the rows array header (``finish`` compresses if large)."""
        head = self._heads.get((kind, topic))
        if head is None:
            head = b"\x00\x83" + msgpack_str("type") + msgpack_str(kind) + msgpack_str("topic") + msgpack_str(topic)
            head = self._heads[(kind, topic)] = head + msgpack_str("rows")
        return head + msgpack_array_header(count)

    def finish(self, payload: bytes) -> bytes:
        if len(payload) >= self.compress_min_bytes:
            return b"\x01" + self._zc.compress(payload[1:])
        return payload

    def frame(self, kind: str, topic: str, pieces: list[bytes], count: int) -> bytes:
        return self.finish(b"".join([self.prefix(kind, topic, count), *pieces]))

    def control(self, message: dict[str, Any]) -> bytes:
        return self._wrap(msgpack.packb(message))

    def mergeable(self, frame: bytes) -> bool:
        return frame[0] == _PLAIN

    def merge(self, frames: list[bytes]) -> bytes:
        # a msgpack stream: one flag byte, then the maps back to back
        return b"".join([frames[0], *(f[1:] for f in frames[1:])])


def codec_for(subprotocol: str | None, compress_min_bytes: int = 4096) -> Codec:
    """The codec for a negotiated subprotocol (JSON when none was negotiated)."""
    if subprotocol == MSGPACK_SUBPROTOCOL:
        return MsgpackZstdCodec(compress_min_bytes)
    return JsonCodec()


_ZD = zstandard.ZstdDecompressor()


def decode_frame(frame: str | bytes, *, max_output: int = 64 << 20) -> dict[str, Any]:
    """Decode one server frame of either encoding into a dict.

    Raises
    ------
    ValueError
        On an unknown flag byte or undecodable payload.
    """
    if isinstance(frame, str):
        return json.loads(frame)
    if not frame:
        raise ValueError("empty binary frame")
    flag, payload = frame[0], frame[1:]
    if flag == _ZSTD:
        payload = _ZD.decompress(payload, max_output_size=max_output)
    elif flag != _PLAIN:
        raise ValueError(f"unknown frame flag byte {flag}")
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def decode_messages(frame: str | bytes, *, max_output: int = 64 << 20) -> list[dict[str, Any]]:
    """Every message in one WebSocket message of either encoding, in order."""
    if isinstance(frame, str):
        return [json.loads(line) for line in frame.split("\n") if line]
    if not frame:
        raise ValueError("empty binary frame")
    flag, payload = frame[0], frame[1:]
    if flag == _ZSTD:
        payload = _ZD.decompress(payload, max_output_size=max_output)
    elif flag != _PLAIN:
        raise ValueError(f"unknown frame flag byte {flag}")
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(payload), 1))
    unpacker.feed(payload)
    return list(unpacker)
