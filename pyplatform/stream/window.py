"""What a stream table keeps: the in-memory window of recent batches and the log's retention.

The memory window holds whole appended batches, newest last, up to ``memory_rows`` rows (at
least the newest batch). For a table without a directory it is the table's retention; a
persisted table keeps older rows in its segment log, trimmed by :class:`Retention`.
Neither takes a lock: the table calls them under its own.
"""

from __future__ import annotations

import bisect

import pyarrow as pa

from pyplatform.stream.coerce import conform_batch
from pyplatform.stream.log import SegmentLog
from pyplatform.stream.options import TableOptions

__all__ = ["MemoryWindow", "Retention"]


class MemoryWindow:
    """Recent batches by first offset; old whole batches are evicted beyond ``limit`` rows.

    Parameters
    ----------
    limit : int
        Rows to keep (``TableOptions.memory_rows``); the newest batch always stays.
    start : int
        Offset the next appended batch starts at (rows before it are on disk or gone).
    """

    def __init__(self, limit: int, start: int = 0) -> None:
        self.limit = int(limit)
        self._batches: list[pa.RecordBatch | None] = []
        self._firsts: list[int] = []
        self._rows = 0
        self._head = 0  # entries before this index were evicted (compacted in bulk)
        self._next = int(start)

    @property
    def first_offset(self) -> int:
        """Oldest offset held in memory (the next offset when the window is empty)."""
        return self._firsts[self._head] if len(self._firsts) > self._head else self._next

    def append(self, batch: pa.RecordBatch, first: int) -> None:
        """Add ``batch`` numbered from ``first`` and evict what falls out of the window."""
        self._batches.append(batch)
        self._firsts.append(first)
        self._rows += batch.num_rows
        self._next = first + batch.num_rows
        self._trim()

    def _trim(self) -> None:
        # Keep at least the newest batch; evict whole old batches beyond the window. Evicted
        # entries are skipped by index and compacted in bulk: deleting from the front of a
        # list per append would make tiny appends O(window).
        mem, head = self._batches, self._head
        while len(mem) - head > 1 and self._rows - mem[head].num_rows >= self.limit:
            self._rows -= mem[head].num_rows
            mem[head] = None  # release the batch now
            head += 1
        if head > 1024 and head * 2 > len(mem):
            del mem[:head]
            del self._firsts[:head]
            head = 0
        self._head = head

    def slices(self, lo: int, end: int) -> list[pa.RecordBatch]:
        """The rows with ``max(lo, first_offset) <= offset < end``, as zero-copy slices."""
        out: list[pa.RecordBatch] = []
        lo = max(lo, self.first_offset)
        if lo >= end:
            return out
        head = self._head
        i = max(bisect.bisect_right(self._firsts, lo, head) - 1, head)
        while i < len(self._batches) and self._firsts[i] < end:
            f0, rb = self._firsts[i], self._batches[i]
            a, b = max(lo, f0) - f0, min(end, f0 + rb.num_rows) - f0
            if b > a:
                out.append(rb if (a, b) == (0, rb.num_rows) else rb.slice(a, b - a))
            i += 1
        return out

    def conform(self, schema: pa.Schema) -> None:
        """Re-shape every held batch to ``schema`` (columns added: nulls, cheap), so reads
        and subscribers never see two schemas."""
        for i in range(self._head, len(self._batches)):
            if self._batches[i] is not None:
                self._batches[i] = conform_batch(self._batches[i], schema)


class Retention:
    """The log retention of :class:`TableOptions`, in the log's units, computed once.

    Parameters
    ----------
    options : TableOptions
        ``retention_rows``, ``retention_bytes``, ``retention_age_s`` (all None: keep all).
    """

    def __init__(self, options: TableOptions) -> None:
        self.rows = options.retention_rows
        self.nbytes = options.retention_bytes
        self.age_ns = None if options.retention_age_s is None else int(options.retention_age_s * 1e9)
        self.active = self.rows is not None or self.nbytes is not None or self.age_ns is not None

    def apply(self, log: SegmentLog, now_ns: int) -> int:
        """Delete the old whole segments of ``log`` beyond the limits; return how many."""
        if not self.active:
            return 0
        return log.enforce_retention(rows=self.rows, nbytes=self.nbytes, age_ns=self.age_ns, now_ns=now_ns)
