"""Vectorised encoding of columnar rows into JSON objects or msgpack maps.

The fan-out encodes every row ONCE per batch and shares the bytes between all the clients
that receive it, so the encoders work on whole columns (NumPy byte scatter for msgpack,
Arrow string kernels for JSON) instead of building one Python dict per row.

Each encoder returns ``(buffer, bounds)``: row ``i`` is ``buffer[bounds[i]:bounds[i+1]]``.
JSON rows are complete objects (``{"seq":1,...}``); msgpack rows are complete maps, so a
frame is just a container header followed by the concatenated rows.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["encode_json_rows", "encode_msgpack_rows", "msgpack_array_header", "msgpack_str"]


def msgpack_str(text: str) -> bytes:
    """msgpack encoding of one string (used for constant keys and frame headers)."""
    raw = text.encode()
    n = len(raw)
    if n < 32:
        return bytes([0xA0 | n]) + raw
    if n < 256:
        return b"\xd9" + bytes([n]) + raw
    if n < 65536:
        return b"\xda" + n.to_bytes(2, "big") + raw
    return b"\xdb" + n.to_bytes(4, "big") + raw


def msgpack_array_header(n: int) -> bytes:
    """msgpack header of an array of ``n`` items."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 65536:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + n.to_bytes(2, "big")


# --------------------------------------------------------------------------- msgpack


def _fixed_field(key: bytes, tag: int, values: np.ndarray, dtype: str) -> tuple[int, np.ndarray]:
    """Key + tag + big-endian value bytes, as an (n, width) uint8 matrix."""
    n = len(values)
    body = np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(n, np.dtype(dtype).itemsize)
    width = len(key) + 1 + body.shape[1]
    mat = np.empty((n, width), dtype=np.uint8)
    mat[:, : len(key)] = np.frombuffer(key, dtype=np.uint8)
    mat[:, len(key)] = tag
    mat[:, len(key) + 1 :] = body
    return width, mat


def _string_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(utf8 data bytes, start offsets, lengths) of an Arrow string array without nulls."""
    arr = pc.fill_null(arr.cast(pa.large_string()), "")
    if arr.offset:  # a slice: normalise so offsets start at the buffer we read
        arr = pa.concat_arrays([arr])
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64, count=len(arr) + 1)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return data, offs[:-1], np.diff(offs)


def _str_header(lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row msgpack string header as an (n, 5) matrix and its used width per row."""
    n = len(lens)
    hdr = np.zeros((n, 5), dtype=np.uint8)
    width = np.empty(n, dtype=np.int64)
    small = lens < 32
    s8 = (lens >= 32) & (lens < 256)
    s16 = (lens >= 256) & (lens < 65536)
    s32 = lens >= 65536
    hdr[small, 0] = 0xA0 | lens[small].astype(np.uint8)
    width[small] = 1
    hdr[s8, 0] = 0xD9
    hdr[s8, 1] = lens[s8].astype(np.uint8)
    width[s8] = 2
    hdr[s16, 0] = 0xDA
    hdr[s16, 1:3] = lens[s16].astype(">u2").view(np.uint8).reshape(-1, 2) if s16.any() else 0
    width[s16] = 3
    hdr[s32, 0] = 0xDB
    hdr[s32, 1:5] = lens[s32].astype(">u4").view(np.uint8).reshape(-1, 4) if s32.any() else 0
    width[s32] = 5
    return hdr, width


def _scatter_var(out: np.ndarray, dst: np.ndarray, src_data: np.ndarray, src_start: np.ndarray, lens: np.ndarray) -> None:
    """Copy variable-length byte runs ``src[start:start+len]`` to ``out[dst:dst+len]`` at once."""
    total = int(lens.sum())
    if total == 0:
        return
    run_first = np.repeat(np.cumsum(lens) - lens, lens)
    within = np.arange(total, dtype=np.int64) - run_first
    out[np.repeat(dst, lens) + within] = src_data[np.repeat(src_start, lens) + within]


def encode_msgpack_rows(table: pa.Table | pa.RecordBatch) -> tuple[bytes, np.ndarray]:
    """Encode every row as a msgpack map ``{column: value}``.

    Supported column types: signed/unsigned integers (as int64), floats (as float64;
    NaN stays NaN), booleans, strings. Nulls in numeric columns become NaN / 0 is never
    invented: integer nulls are rejected with a clear error.

    Returns
    -------
    (bytes, numpy.ndarray)
        The concatenated rows and ``n + 1`` row bounds.
    """
    n = table.num_rows
    names = table.schema.names
    head = _map_header(len(names))
    # each field: ("fixed", width, matrix) or ("var", key, header matrix, header width, data, starts, lens)
    fields: list[tuple] = []
    row_len = np.full(n, len(head), dtype=np.int64)
    for name in names:
        col = table.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        key = msgpack_str(name)
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            data, starts, lens = _string_parts(col)
            hdr, hw = _str_header(lens)
            if col.null_count:  # nulls are msgpack nil, not empty strings
                nulls = col.is_null().to_numpy(zero_copy_only=False)
                hdr[nulls, 0] = 0xC0
                hw[nulls] = 1
            fields.append(("var", key, hdr, hw, data, starts, lens))
            row_len += len(key) + hw + lens
            continue
        if pa.types.is_floating(t):
            vals = col.to_numpy(zero_copy_only=False).astype(np.float64)
            width, mat = _fixed_field(key, 0xCB, vals, ">f8")
        elif pa.types.is_integer(t):
            if col.null_count:
                raise ValueError(f"column {name!r} has {col.null_count} null integer(s); cannot encode")
            vals = col.to_numpy(zero_copy_only=False).astype(np.int64)
            width, mat = _fixed_field(key, 0xD3, vals, ">i8")
        elif pa.types.is_boolean(t):
            vals = col.to_numpy(zero_copy_only=False).astype(bool)
            width = len(key) + 1
            mat = np.empty((n, width), dtype=np.uint8)
            mat[:, : len(key)] = np.frombuffer(key, dtype=np.uint8)
            mat[:, len(key)] = np.where(vals, 0xC3, 0xC2)
        else:
            raise TypeError(f"column {name!r} has type {t}, which the signal encoder does not support")
        fields.append(("fixed", width, mat))
        row_len += width
    bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=bounds[1:])
    out = np.empty(int(bounds[-1]), dtype=np.uint8)
    pos = bounds[:-1].copy()
    out[pos] = head[0] if len(head) == 1 else 0
    if len(head) > 1:
        out[pos[:, None] + np.arange(len(head))] = np.frombuffer(head, dtype=np.uint8)
    pos += len(head)
    for f in fields:
        if f[0] == "fixed":
            _, width, mat = f
            out[pos[:, None] + np.arange(width)] = mat
            pos += width
        else:
            _, key, hdr, hw, data, starts, lens = f
            out[pos[:, None] + np.arange(len(key))] = np.frombuffer(key, dtype=np.uint8)
            pos += len(key)
            # write all 5 header bytes then let the payload overwrite the unused tail
            for j in range(5):
                m = hw > j
                out[pos[m] + j] = hdr[m, j]
            pos += hw
            _scatter_var(out, pos, data, starts, lens)
            pos += lens
    return out.tobytes(), bounds


# --------------------------------------------------------------------------- JSON


def _json_string_column(col: pa.Array) -> pa.Array:
    """Quoted, escaped JSON string literals for a string column (vectorised)."""
    col = col.cast(pa.string())
    has_ctl = pc.any(pc.match_substring_regex(col, r"[\x00-\x1f]")).as_py()
    if has_ctl:
        # rare (free-text reasons): exact escaping through the json module
        return pa.array([json.dumps(v) if v is not None else "null" for v in col.to_pylist()], pa.string())
    esc = pc.replace_substring(col, "\\", "\\\\")
    esc = pc.replace_substring(esc, '"', '\\"')
    quoted = pc.binary_join_element_wise('"', esc, '"', "")
    return pc.fill_null(quoted, "null")


def encode_json_rows(table: pa.Table | pa.RecordBatch, terminator: str = "}") -> tuple[bytes, np.ndarray]:
    """Encode every row as a JSON object; NaN and infinities become ``null``.

    ``terminator`` closes each row; the fan-out uses ``"},"`` so that rows cut from the
    buffer concatenate straight into a JSON array body (one trailing comma to drop).

    Returns
    -------
    (bytes, numpy.ndarray)
        The concatenated rows (no separators) and ``n + 1`` row bounds.
    """
    parts: list[pa.Array] = []
    for i, name in enumerate(table.schema.names):
        col = table.column(i)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            lit = _json_string_column(col)
        elif pa.types.is_floating(t):
            s = pc.cast(col, pa.string())
            lit = pc.fill_null(pc.if_else(pc.is_finite(col), s, pa.scalar(None, pa.string())), "null")
        elif pa.types.is_integer(t):
            lit = pc.fill_null(pc.cast(col, pa.string()), "null")
        elif pa.types.is_boolean(t):
            lit = pc.fill_null(pc.if_else(col, "true", "false"), "null")
        else:
            raise TypeError(f"column {name!r} has type {t}, which the signal encoder does not support")
        prefix = ("{" if i == 0 else ",") + json.dumps(name) + ":"
        parts.append(pc.binary_join_element_wise(prefix, lit, ""))
    parts.append(pa.array([terminator] * table.num_rows, pa.string()) if table.num_rows else pa.array([], pa.string()))
    rows = pc.binary_join_element_wise(*parts, "").cast(pa.large_string())
    rows = pa.concat_arrays([rows]) if rows.offset else rows
    bufs = rows.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64, count=len(rows) + 1)
    data = bytes(bufs[2])[offs[0] : offs[-1]] if len(rows) else b""
    return data, offs - offs[0]
