"""Compact binary encoding for tick (and any flat columnar) batches: MessagePack + zstd.

A batch is encoded column by column, never row by row:

* integers (timestamps, sequences) are delta-encoded, divided by the deltas' GCD (ms
  timestamps stored in ns have a GCD of 1e6) and stored in the narrowest integer width,
  byte planes shuffled so zstd sees runs;
* floats that are exact decimals at 0..8 places (prices carry their asset class's
  precision, volumes are often whole) are scaled to integers and delta-encoded the same
  way -- the check is exact (round-trip equality), otherwise the raw float64 bytes are
  kept, byte-shuffled so zstd finds the repeated exponent bytes;
* strings (symbols) are dictionary-encoded: the distinct values plus narrow indices;
* a column with one repeated value (``side`` = 0, ``bid`` = NaN) is stored once.

The frame is ``b"PPC1"`` + a flag byte (0 raw, 1 zstd) + the MessagePack body, whose map
carries the Arrow schema (names and types), so decoding needs nothing out of band.
Decoding is lossless: ``decode_batch(encode_batch(t)).equals(t)``.
"""

from __future__ import annotations

import threading

import msgpack
import numpy as np
import pyarrow as pa
import zstandard

__all__ = ["encode_batch", "decode_batch", "CodecError"]

MAGIC = b"PPC1"
_INTS = (np.int8, np.int16, np.int32, np.int64)
_TYPES = {"int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
          "double": pa.float64(), "float": pa.float32(), "string": pa.string()}


_local = threading.local()  # zstd contexts are reusable but not shareable across threads


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache = _local.__dict__.setdefault("c", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "d"):
        _local.d = zstandard.ZstdDecompressor()
    return _local.d


class CodecError(ValueError):
    """A frame that is not a pyplatform columnar batch, or a column type it cannot carry."""


def _narrow(values: np.ndarray) -> tuple[str, bytes]:
    """Integers in the narrowest width holding them, byte-planes shuffled (zstd likes it)."""
    if not len(values):
        return "int8", b""
    lo, hi = int(values.min()), int(values.max())
    for dt in _INTS:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            a = values.astype(dt)
            width = a.dtype.itemsize
            return np.dtype(dt).name, np.ascontiguousarray(a.view(np.uint8).reshape(-1, width).T).tobytes()
    raise CodecError("integer column exceeds int64")  # pragma: no cover - int64 input


def _unnarrow(data: bytes, width: str) -> np.ndarray:
    size = np.dtype(width).itemsize
    planes = np.frombuffer(data, np.uint8).reshape(size, -1)
    return np.ascontiguousarray(planes.T).view(width).ravel()


def _delta(values: np.ndarray) -> list:
    """First value, then differences divided by their GCD (ms timestamps in ns: 1e6)."""
    values = values.astype(np.int64, copy=False)
    first = int(values[0]) if len(values) else 0
    diffs = np.diff(values)
    step = int(np.gcd.reduce(np.abs(diffs))) if len(diffs) else 1
    step = step or 1
    width, data = _narrow(diffs // step)
    return ["delta", first, step, width, data]


def _encode_float(a: np.ndarray) -> list:
    finite = np.isfinite(a)
    if finite.all() and len(a):
        for places in range(9):
            scale = 10.0 ** places
            scaled = np.round(a * scale)
            if np.abs(scaled).max() < 2**53 and np.array_equal(scaled / scale, a):
                return ["decimal", places] + _delta(scaled.astype(np.int64))[1:]
    shuffled = np.ascontiguousarray(a.astype(np.float64).view(np.uint8).reshape(-1, 8).T)
    return ["shuffle8", shuffled.tobytes()]


def _encode_column(col: pa.ChunkedArray | pa.Array) -> list:
    typ = str(col.type)
    if col.null_count:
        raise CodecError(f"column of type {typ} has {col.null_count} nulls; the codec carries none")
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        enc = col.dictionary_encode() if isinstance(col, pa.Array) else col.combine_chunks().dictionary_encode()
        width, data = _narrow(enc.indices.to_numpy())
        return ["dict", enc.dictionary.to_pylist(), width, data]
    if typ not in _TYPES:
        raise CodecError(f"unsupported column type {typ}")
    a = col.to_numpy() if isinstance(col, pa.Array) else col.combine_chunks().to_numpy()
    if len(a) and (np.array_equal(a, np.full_like(a, a[0]), equal_nan=a.dtype.kind == "f")):
        return ["const", a[0].item()]
    if a.dtype.kind in "iu":
        return _delta(a)
    return _encode_float(a)


def encode_batch(batch: pa.Table | pa.RecordBatch, compress: bool = True, level: int = 3) -> bytes:
    """Encode a flat Arrow batch (int/float/string columns, no nulls) as bytes.

    Parameters
    ----------
    batch : pyarrow.Table or RecordBatch
    compress : bool
        zstd-compress the MessagePack body.
    level : int
        zstd level.
    """
    cols = [[f.name, str(f.type)] + _encode_column(batch.column(i)) for i, f in enumerate(batch.schema)]
    body = msgpack.packb({"n": batch.num_rows, "cols": cols}, use_bin_type=True)
    if compress:
        return MAGIC + b"\x01" + _compressor(level).compress(body)
    return MAGIC + b"\x00" + body


def _undelta(first: int, step: int, width: str, data: bytes, n: int) -> np.ndarray:
    out = np.empty(n, np.int64)
    if n:
        out[0] = first
        np.cumsum(_unnarrow(data, width).astype(np.int64) * step, out=out[1:])
        out[1:] += first
    return out


def decode_batch(frame: bytes) -> pa.Table:
    """Inverse of :func:`encode_batch`.

    Raises
    ------
    CodecError
        If ``frame`` does not start with the codec's magic or its body is damaged.
    """
    if frame[:4] != MAGIC or len(frame) < 5 or frame[4] not in (0, 1):
        raise CodecError(f"not a pyplatform columnar batch (header {bytes(frame[:5])!r})")
    body = frame[5:]
    try:
        if frame[4] == 1:
            body = _decompressor().decompress(body)
        obj = msgpack.unpackb(body, raw=False)
        n = obj["n"]
        arrays, fields = [], []
        for name, typ, enc, *rest in obj["cols"]:
            atype = _TYPES[typ]
            if enc == "const":
                arr = pa.array([rest[0]] * 1, atype)
                arr = pa.array(np.repeat(arr.to_numpy(zero_copy_only=False), n), atype)
            elif enc == "dict":
                values, width, data = rest
                idx = _unnarrow(data, width)
                arr = pa.array(np.asarray(values, dtype=object)[idx] if n else [], atype)
            elif enc == "delta":
                arr = pa.array(_undelta(*rest, n).astype(atype.to_pandas_dtype()), atype)
            elif enc == "decimal":
                places, *delta = rest
                arr = pa.array(_undelta(*delta, n) / 10.0 ** places, atype)
            elif enc == "shuffle8":
                raw = np.frombuffer(rest[0], np.uint8).reshape(8, -1).T.copy()
                arr = pa.array(raw.view(np.float64).ravel(), atype)
            else:
                raise CodecError(f"column {name!r}: unknown encoding {enc!r}")
            arrays.append(arr)
            fields.append(pa.field(name, atype))
    except (KeyError, ValueError, TypeError, zstandard.ZstdError, msgpack.UnpackException) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"damaged columnar batch: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
