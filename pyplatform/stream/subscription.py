"""Subscriptions: each reader's own position in a stream table.

A subscription holds only an offset; rows stay in the table. Pull consumers call
:meth:`Subscription.poll`; handler subscriptions are driven by :meth:`pump` (same thread)
or a delivery thread. A handler that raises leaves the position at the failed batch, so
nothing is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pyplatform.stream.table import StreamTable

__all__ = ["Subscription", "OFFSET_NEW", "OFFSET_ACKED", "OFFSET_OLDEST", "make_filter"]

log = logging.getLogger(__name__)

#: Start with rows appended after subscribing.
OFFSET_NEW = -1
#: Start after the action's last acknowledged offset (oldest retained row if none).
OFFSET_ACKED = -2
#: Start at the oldest retained row.
OFFSET_OLDEST = -3


def make_filter(spec, schema: pa.Schema) -> Callable[[pa.Table], pa.Table] | None:
    """Build a table -> table filter from a column->values mapping or a callable."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        tests = []
        for column, values in spec.items():
            if column not in schema.names:
                raise ValueError(f"filter column {column!r} is not in the table's columns {schema.names}")
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                values = [values]
            value_set = pa.array(list(values), type=schema.field(column).type)
            tests.append((column, value_set))

        def by_values(table: pa.Table) -> pa.Table:
            mask = None
            for column, value_set in tests:
                m = pc.is_in(table.column(column), value_set=value_set)
                mask = m if mask is None else pc.and_(mask, m)
            return table.filter(mask)
        return by_values
    if callable(spec):
        def by_callable(table: pa.Table) -> pa.Table:
            result = spec(table)
            if isinstance(result, pa.Table):
                return result
            if isinstance(result, np.ndarray):
                result = pa.array(result.astype(bool, copy=False))
            return table.filter(result)
        return by_callable
    raise TypeError(f"filter must be a mapping of column -> values or a callable, got {type(spec).__name__}")


class Subscription:
    """One action's position in a table. Create with :meth:`StreamTable.subscribe`."""

    def __init__(self, table: StreamTable, action: str, handler, position: int, batch_size: int,
                 throttle: float, filter_spec) -> None:
        self.table = table
        self.action = action
        self.handler = handler
        self.batch_size = int(batch_size)
        self.throttle = float(throttle)
        self._filter = make_filter(filter_spec, table.schema)
        self._position = int(position)
        self._lock = threading.Lock()  # one consumer at a time per subscription
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: The exception that stopped the delivery thread (None while healthy).
        self.error: BaseException | None = None
        self.delivered_rows = 0

    @property
    def position(self) -> int:
        """Offset of the next row this subscription will read."""
        return self._position

    @property
    def pending(self) -> int:
        """Rows appended but not yet read by this subscription (before filtering)."""
        return max(self.table.next_offset - self._position, 0)

    def seek(self, offset: int) -> None:
        """Move to ``offset`` (e.g. ``RetentionError.oldest_offset`` after a retention error)."""
        with self._lock:
            self._position = int(offset)

    def _next_chunk(self, max_rows: int | None) -> tuple[pa.Table | None, int]:
        """Next non-empty (filtered) chunk and the position after it, without committing."""
        n = self.batch_size if max_rows is None else max(1, min(int(max_rows), self.batch_size))
        pos = self._position
        while True:
            end = self.table.next_offset
            if pos >= end:
                return None, pos
            stop = min(end, pos + n)
            chunk = self.table.read(pos, stop)
            pos = stop
            if self._filter is not None:
                chunk = self._filter(chunk)
            if chunk.num_rows:
                return chunk, pos

    def poll(self, max_rows: int | None = None) -> pa.Table | None:
        """Next rows (at most ``batch_size`` / ``max_rows``), or None when caught up.

        Rows carry an ``offset`` column. The position moves past what was read (and past
        rows the filter removed).

        Raises
        ------
        RetentionError
            The position fell behind retention; :meth:`seek` to the offset it names.
        """
        with self._lock:
            chunk, pos = self._next_chunk(max_rows)
            self._position = pos
        if chunk is not None:
            self.delivered_rows += chunk.num_rows
        return chunk

    def _deliver_one(self) -> int:
        with self._lock:
            chunk, pos = self._next_chunk(None)
            if chunk is None:
                self._position = pos
                return 0
            self.handler(chunk)  # raises -> position unchanged: the batch is retried
            self._position = pos
        self.delivered_rows += chunk.num_rows
        return chunk.num_rows

    def pump(self) -> int:
        """Deliver every pending row to the handler in this thread; return rows delivered."""
        if self.handler is None:
            raise RuntimeError(f"subscription {self.action!r} has no handler: use poll()")
        total = 0
        while True:
            n = self._deliver_one()
            if n == 0 and self.pending == 0:
                return total
            total += n

    @property
    def last_read(self) -> int:
        """Offset of the last row read (position - 1)."""
        return self._position - 1

    def ack(self, offset: int | None = None) -> None:
        """Acknowledge ``offset`` (default: everything read so far) for this action."""
        offset = self.last_read if offset is None else offset
        if offset >= 0:
            self.table.ack(self.action, offset)

    # -- delivery thread ----------------------------------------------------------------
    def _start_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.table.name}-{self.action}",
                                        daemon=True)
        self._thread.start()

    def _stop_thread(self) -> None:
        self._stop.set()
        with self.table._cond:
            self.table._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        last_delivery = time.monotonic()
        cond = self.table._cond
        while not self._stop.is_set():
            with cond:
                while not self._stop.is_set() and self.table.next_offset <= self._position:
                    cond.wait(timeout=0.5)
            if self._stop.is_set():
                return
            if self.throttle > 0 and self.pending < self.batch_size:
                # Let rows accumulate up to batch_size, but never hold them past throttle.
                deadline = last_delivery + self.throttle
                while not self._stop.is_set() and self.pending < self.batch_size:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    with cond:
                        cond.wait(timeout=left)
            try:
                while not self._stop.is_set() and self._deliver_one():
                    last_delivery = time.monotonic()
                    if self.throttle > 0 and self.pending < self.batch_size:
                        break
            except Exception as exc:
                # Stop rather than skip: the position stays at the failed batch so a fixed
                # handler resumes with no loss. The error is kept for the owner to inspect.
                self.error = exc
                log.exception("stream table %r: handler of %r failed; delivery stopped at offset %d",
                              self.table.name, self.action, self._position)
                return

    def close(self) -> None:
        """Unsubscribe (the acknowledged offset is kept)."""
        self.table.unsubscribe(self.action)

    def __repr__(self) -> str:
        return f"Subscription({self.table.name!r}, {self.action!r}, position={self._position})"
