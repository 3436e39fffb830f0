"""The append-only on-disk log behind a stream table.

A table's directory holds ``schema.arrow`` and segment files named by the offset of their
first row (``00000000000000000000.seg``). A segment is a sequence of frames::

    header (40 bytes, little-endian): magic b"PPS1", payload length u32, crc32 u32,
        row count u32, first offset i64, append time ns i64, tag i64
    payload: one Arrow IPC record-batch message (``RecordBatch.serialize()``)

Each frame is written with one ``write`` call on an ``O_APPEND`` descriptor. A crash can
only leave a torn *last* frame; :meth:`SegmentLog.open` checks every frame of the last
segment (length, CRC, offset continuity) and truncates from the first bad one, so what was
fsynced stays and nothing half-written is ever served. Retention deletes whole segments,
oldest first, never the active one.

Schema evolution: columns added by :meth:`StreamTable.add_columns` carry the offset from
which frames hold them (field metadata ``pyplatform.added_at``). A frame is decoded with
the columns that existed at its first offset and then padded with nulls to the current
schema, so old frames are never rewritten.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pyplatform.fsio import atomic_write, fsync_dir
from pyplatform.stream.coerce import ADDED_AT_KEY, conform_batch
from pyplatform.stream.errors import CorruptLogError

__all__ = ["SegmentLog", "NO_TAG", "write_schema", "read_schema"]

_HEADER = struct.Struct("<4sIIIqqq")
_MAGIC = b"PPS1"
_SUFFIX = ".seg"
#: Tag value of frames appended without a tag.
NO_TAG = -(2**63)




def write_schema(directory: Path, schema: pa.Schema) -> None:
    """Store ``schema`` atomically as ``schema.arrow`` in ``directory``."""
    atomic_write(Path(directory) / "schema.arrow", schema.serialize().to_pybytes())


def read_schema(directory: Path) -> pa.Schema | None:
    """The schema stored in ``directory``, or None if there is none."""
    path = directory / "schema.arrow"
    if not path.exists():
        return None
    return pa.ipc.read_schema(pa.py_buffer(path.read_bytes()))


def _crc(n_rows: int, first: int, append_ns: int, tag: int, payload) -> int:
    head = struct.pack("<Iqqq", n_rows, first, append_ns, tag)
    return zlib.crc32(payload, zlib.crc32(head))


def added_at(field: pa.Field) -> int:
    """First offset whose frames hold ``field`` (0 for columns the table was created with)."""
    md = field.metadata or {}
    return int(md[ADDED_AT_KEY]) if ADDED_AT_KEY in md else 0


def schema_at(schema: pa.Schema, offset: int) -> pa.Schema:
    """The columns of ``schema`` that frames starting at ``offset`` were written with."""
    return pa.schema([f for f in schema if added_at(f) <= offset], metadata=schema.metadata)


@dataclass
class _Segment:
    base: int
    path: Path
    # Parallel per-frame lists (one entry per append, not per row).
    pos: list[int] = field(default_factory=list)
    first: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    length: list[int] = field(default_factory=list)
    size: int = 0
    last_append_ns: int = 0
    last_tag: int = NO_TAG

    @property
    def next_offset(self) -> int:
        return self.first[-1] + self.rows[-1] if self.first else self.base

    @property
    def n_rows(self) -> int:
        return self.next_offset - self.base

    def add(self, pos: int, first: int, rows: int, length: int, append_ns: int, tag: int) -> None:
        self.pos.append(pos)
        self.first.append(first)
        self.rows.append(rows)
        self.length.append(length)
        self.size = pos + _HEADER.size + length
        self.last_append_ns = append_ns
        if tag != NO_TAG:
            self.last_tag = tag


class SegmentLog:
    """Segment files of one table: append, read a range, fsync, retention.

    Not thread-safe on its own: :class:`~pyplatform.stream.table.StreamTable` serialises
    calls under its lock.
    """

    def __init__(self, directory: Path, schema: pa.Schema, *, fsync: str = "batch",
                 fsync_interval_s: float = 0.2, segment_bytes: int = 64 << 20) -> None:
        if fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync must be 'always', 'batch' or 'never', got {fsync!r}")
        self.directory = Path(directory)
        self.schema = schema
        self._frame_schemas: dict[int, pa.Schema] = {}
        self._added = sorted(added_at(f) for f in schema)
        self.fsync = fsync
        self.fsync_interval_s = float(fsync_interval_s)
        self.segment_bytes = int(segment_bytes)
        self.segments: list[_Segment] = []
        self._bases: list[int] = []
        self._wfd: int | None = None
        self._rfds: dict[int, int] = {}
        self._dirty = False
        self._last_fsync = time.monotonic()
        self.truncated_bytes = 0  # how much a torn tail cost on open (for logs/tests)
        self._open()

    def set_schema(self, schema: pa.Schema) -> None:
        """Switch to an evolved ``schema`` (the caller persisted it; see ``StreamTable.add_columns``)."""
        self.schema = schema
        self._frame_schemas.clear()
        self._added = sorted(added_at(f) for f in schema)

    def _frame_schema(self, first: int) -> pa.Schema:
        # Frames fall into a handful of schema generations: key the cache by how many
        # columns existed at the frame's first offset (columns are only ever appended).
        n = bisect.bisect_right(self._added, first)
        if n == len(self._added):
            return self.schema
        sch = self._frame_schemas.get(n)
        if sch is None:
            sch = self._frame_schemas[n] = schema_at(self.schema, first)
        return sch

    # -- opening and repair -------------------------------------------------------------
    def _open(self) -> None:
        paths = sorted(self.directory.glob(f"*{_SUFFIX}"))
        for i, path in enumerate(paths):
            try:
                base = int(path.stem)
            except ValueError:
                continue
            seg = _Segment(base, path)
            last = i == len(paths) - 1
            self._scan(seg, expected=self.segments[-1].next_offset if self.segments else base, repair=last)
            self.segments.append(seg)
            self._bases.append(base)
        if self.segments:
            self._wfd = os.open(self.segments[-1].path, os.O_WRONLY | os.O_APPEND)

    def _scan(self, seg: _Segment, expected: int, repair: bool) -> None:
        if seg.base != expected:
            raise CorruptLogError(f"{seg.path}: starts at offset {seg.base} but the previous segment ends at {expected}")
        data = seg.path.read_bytes() if repair else None
        size = seg.path.stat().st_size
        pos, nxt = 0, seg.base
        with open(seg.path, "rb") as fh:
            while pos < size:
                bad = None
                if size - pos < _HEADER.size:
                    bad = "incomplete frame header"
                else:
                    head = data[pos:pos + _HEADER.size] if data is not None else (fh.seek(pos), fh.read(_HEADER.size))[1]
                    magic, length, crc, rows, first, append_ns, tag = _HEADER.unpack(head)
                    end = pos + _HEADER.size + length
                    if magic != _MAGIC:
                        bad = "bad frame magic"
                    elif end > size:
                        bad = "incomplete frame payload"
                    elif first != nxt:
                        bad = f"frame starts at offset {first}, expected {nxt}"
                    elif data is not None and _crc(rows, first, append_ns, tag, data[pos + _HEADER.size:end]) != crc:
                        bad = "checksum mismatch"
                if bad is not None:
                    if not repair:
                        raise CorruptLogError(f"{seg.path}: {bad} at byte {pos}; only the last segment can be repaired")
                    # A torn write from a crash: everything from here on was never acknowledged
                    # as durable, so cutting it restores the last consistent state.
                    self.truncated_bytes = size - pos
                    os.truncate(seg.path, pos)
                    fd = os.open(seg.path, os.O_WRONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    break
                seg.add(pos, first, rows, length, append_ns, tag)
                nxt = first + rows
                pos = end

    # -- properties ---------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """Whether frames were written since the last fsync."""
        return self._dirty

    @property
    def next_offset(self) -> int | None:
        """Offset after the last row on disk, or None for an empty log."""
        return self.segments[-1].next_offset if self.segments else None

    @property
    def oldest_offset(self) -> int | None:
        return self.segments[0].base if self.segments else None

    @property
    def total_rows(self) -> int:
        return sum(s.n_rows for s in self.segments)

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def last_tag(self) -> int | None:
        for seg in reversed(self.segments):
            if seg.last_tag != NO_TAG:
                return seg.last_tag
        return None

    # -- writing ------------------------------------------------------------------------
    def append(self, batch: pa.RecordBatch, first: int, append_ns: int, tag: int = NO_TAG) -> None:
        """Write ``batch`` (rows ``first`` .. ``first + len - 1``) as one frame."""
        payload = batch.serialize()
        rows = batch.num_rows
        crc = _crc(rows, first, append_ns, tag, payload)
        head = _HEADER.pack(_MAGIC, payload.size, crc, rows, first, append_ns, tag)
        seg = self.segments[-1] if self.segments else None
        if seg is None or (seg.size >= self.segment_bytes and seg.first):
            seg = self._roll(first)
        pos = seg.size
        total = len(head) + payload.size
        try:
            written = os.writev(self._wfd, [head, payload])  # one syscall, no copy of the payload
            if written < total:  # short writes are rare but legal
                rest = (head + payload.to_pybytes())[written:]
                while rest:
                    rest = rest[os.write(self._wfd, rest):]
        except OSError:
            # Disk full or similar: cut what part of the frame got out, so later frames do
            # not follow a hole (which the torn-tail repair would then throw away with them).
            os.ftruncate(self._wfd, pos)
            raise
        seg.add(pos, first, rows, payload.size, append_ns, tag)
        self._dirty = True
        if self.fsync == "always":
            self.flush()
        elif self.fsync == "batch" and time.monotonic() - self._last_fsync >= self.fsync_interval_s:
            # Group commit: one fsync covers every frame written since the last one. The
            # interval is I/O pacing, not event time, so the monotonic clock is right here.
            self.flush()

    def _roll(self, base: int) -> _Segment:
        if self._wfd is not None:
            self.flush()
            os.close(self._wfd)
        path = self.directory / f"{base:020d}{_SUFFIX}"
        self._wfd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fsync_dir(self.directory)  # a new or renamed file is durable once its entry is
        seg = _Segment(base, path)
        self.segments.append(seg)
        self._bases.append(base)
        return seg

    def flush(self) -> None:
        """fsync the active segment if anything was written since the last fsync."""
        if self._dirty and self._wfd is not None:
            os.fsync(self._wfd)
            self._dirty = False
        self._last_fsync = time.monotonic()

    # -- reading ------------------------------------------------------------------------
    def _rfd(self, seg: _Segment) -> int:
        fd = self._rfds.get(seg.base)
        if fd is None:
            fd = self._rfds[seg.base] = os.open(seg.path, os.O_RDONLY)
        return fd

    def read(self, start: int, end: int) -> list[pa.RecordBatch]:
        """Record batches covering exactly offsets ``start`` .. ``end - 1`` (caller checks bounds)."""
        out: list[pa.RecordBatch] = []
        si = max(bisect.bisect_right(self._bases, start) - 1, 0)
        while start < end and si < len(self.segments):
            seg = self.segments[si]
            fi = max(bisect.bisect_right(seg.first, start) - 1, 0)
            while start < end and fi < len(seg.first):
                f0, rows = seg.first[fi], seg.rows[fi]
                if f0 + rows > start:
                    raw = os.pread(self._rfd(seg), seg.length[fi], seg.pos[fi] + _HEADER.size)
                    batch = pa.ipc.read_record_batch(pa.py_buffer(raw), self._frame_schema(f0))
                    batch = conform_batch(batch, self.schema)
                    lo, hi = start - f0, min(end, f0 + rows) - f0
                    out.append(batch.slice(lo, hi - lo) if (lo, hi) != (0, rows) else batch)
                    start = f0 + hi
                fi += 1
            si += 1
        return out

    # -- retention ----------------------------------------------------------------------
    def enforce_retention(self, *, rows: int | None, nbytes: int | None, age_ns: int | None,
                          now_ns: int) -> int:
        """Delete whole old segments beyond the limits; return how many were deleted.

        ``rows``/``nbytes``: keep at least this much (a segment goes only if what remains
        still satisfies the limit). ``age_ns``: a segment goes once its newest row was
        appended more than this long before ``now_ns``. The active segment always stays.
        """
        deleted = 0
        total_rows, total_bytes = self.total_rows, self.total_bytes
        while len(self.segments) > 1:
            seg = self.segments[0]
            expired = (
                (rows is not None and total_rows - seg.n_rows >= rows)
                or (nbytes is not None and total_bytes - seg.size >= nbytes)
                or (age_ns is not None and now_ns - seg.last_append_ns > age_ns)
            )
            if not expired:
                break
            fd = self._rfds.pop(seg.base, None)
            if fd is not None:
                os.close(fd)
            seg.path.unlink(missing_ok=True)
            self.segments.pop(0)
            self._bases.pop(0)
            total_rows -= seg.n_rows
            total_bytes -= seg.size
            deleted += 1
        if deleted:
            fsync_dir(self.directory)  # a new or renamed file is durable once its entry is
        return deleted

    def close(self) -> None:
        if self._wfd is not None:
            self.flush()
            os.close(self._wfd)
            self._wfd = None
        for fd in self._rfds.values():
            os.close(fd)
        self._rfds.clear()
