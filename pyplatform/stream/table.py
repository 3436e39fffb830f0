"""StreamTable: an append-only, offset-numbered, persisted table with subscriptions.

One writer and many readers may use a table from different threads. The writer only
takes the table lock to number rows and write one frame; subscribers read lazily from the
in-memory window or the on-disk log, so a slow subscriber never holds up the writer.

The table composes its parts: the segment log (:mod:`.log`), the memory window and the
log's retention (:mod:`.window`), schema evolution (:mod:`.schema`), acknowledged offsets
(:mod:`.acks`) and subscriptions (:mod:`.subscription`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from pyplatform.clock import Clock
from pyplatform.stream import schema as schemas
from pyplatform.stream.acks import AckStore, check_name
from pyplatform.stream.coerce import OFFSET_COLUMN, coerce_batch, conform_batch
from pyplatform.stream.errors import RetentionError
from pyplatform.stream.log import NO_TAG, SegmentLog, write_schema
from pyplatform.stream.options import TableOptions
from pyplatform.stream.subscription import OFFSET_ACKED, OFFSET_NEW, OFFSET_OLDEST, Subscription
from pyplatform.stream.window import MemoryWindow, Retention

__all__ = ["StreamTable"]

log = logging.getLogger(__name__)


class StreamTable:
    """An append-only table whose rows are numbered by int64 offsets.

    Parameters
    ----------
    name : str
        Table name (letters, digits, ``_.-``); also its folder name under ``directory``.
    schema : pyarrow.Schema, optional
        Column names and types. May be omitted when reopening a persisted table.
    directory : path, optional
        Parent folder; the log lives in ``directory/name``. None keeps the table in memory
        only (``memory_rows`` is then its retention).
    clock : Clock
        Source of append times for age-based retention (keyword, required: a table in a
        backtest or replay must not read wall time by accident; the builders at the edge
        pass :class:`~pyplatform.clock.LiveClock`).
    options : TableOptions, optional
        Memory window, fsync policy, segment size and retention; keyword ``overrides``
        replace single fields.

    Examples
    --------
    >>> from pyplatform.clock import SimClock
    >>> from pyplatform.domain.schemas import TICKS
    >>> t = StreamTable("ticks", TICKS, clock=SimClock())
    >>> t.append({"ts": [1], "symbol": ["AAPL.US"], "price": [1.0], "volume": [5.0],
    ...           "side": [1], "bid": [0.9], "ask": [1.1]})
    (0, 0)
    """

    def __init__(self, name: str, schema: pa.Schema | None = None, directory: str | Path | None = None,
                 *, clock: Clock, options: TableOptions | None = None, **overrides) -> None:
        self.name = check_name("table", name)
        self.options = replace(options or TableOptions(), **overrides)
        self.clock = clock
        self.directory = Path(directory) / name if directory is not None else None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._log: SegmentLog | None = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        schema, evolve = schemas.open_schema(name, self.directory, schema)
        self.schema = schema
        self._acks = AckStore(self.directory)
        self._retention = Retention(self.options)
        self._next = 0
        self._oldest = 0
        if self.directory is not None:
            self._log = SegmentLog(self.directory, schema, fsync=self.options.fsync,
                                   fsync_interval_s=self.options.fsync_interval_s,
                                   segment_bytes=self.options.segment_bytes)
            if self._log.next_offset is not None:
                self._next = self._log.next_offset
                self._oldest = self._log.oldest_offset
            fixed = schemas.repair_added_at(self.schema, self._next)
            if fixed is not None:
                write_schema(self.directory, fixed)
                self._log.set_schema(fixed)
                self.schema = fixed
        self._window = MemoryWindow(self.options.memory_rows, self._next)
        self._mem_tag: int | None = None  # last_tag of a table without a log
        self._subs: dict[str, Subscription] = {}
        self._listeners: list[Callable[[int, int], None]] = []
        self._started = False
        self._closed = False
        self._flush_timer: threading.Timer | None = None
        if self.directory is not None and evolve:
            # Reopened with a schema that adds nullable columns: the table evolves (as
            # add_columns would), so a process restarted with more factors just continues.
            log.info("stream table %r: adding columns %s requested at reopen", name, [f.name for f in evolve])
            self.add_columns(evolve)

    # -- offsets ------------------------------------------------------------------------
    @property
    def next_offset(self) -> int:
        """Offset the next appended row will get (= number of rows ever appended)."""
        return self._next

    @property
    def oldest_offset(self) -> int:
        """Oldest offset still readable (retention moves it forward)."""
        return self._oldest

    @property
    def last_tag(self) -> int | None:
        """Tag of the newest frame appended with ``tag=`` (persisted; see :meth:`append`)."""
        with self._lock:
            if self._log is not None:
                return self._log.last_tag
            return self._mem_tag

    # -- schema evolution -----------------------------------------------------------------
    def add_columns(self, fields) -> pa.Schema:
        """Add nullable columns at the end of the schema (append-only schema change).

        Rows appended before the change read back with the new columns null (from memory,
        from disk and after reopening); later appends may omit them (nulls). On disk the
        rows written so far are fsynced first and ``schema.arrow`` is then replaced
        atomically, so a crash leaves either the old or the new schema, each consistent
        with the frames on disk.

        Parameters
        ----------
        fields : iterable of pyarrow.Field or (name, type) pairs
            New columns. A column that already exists with the same type is skipped.

        Returns
        -------
        pyarrow.Schema
            The table's schema after the change.

        Raises
        ------
        SchemaError
            A field is not nullable (earlier rows have no value), is named ``offset``,
            is listed twice, or exists already with another type.
        """
        wanted = schemas.new_fields(self.name, fields)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"stream table {self.name!r} is closed")
            schema, new = schemas.extend(self.name, self.schema, wanted, self._next)
            if not new:
                return self.schema
            if self._log is not None:
                # Frames before the change must be durable before the schema saying where
                # the change happened is: otherwise a crash could lose rows below
                # ``added_at`` and later frames there would be decoded with the wrong columns.
                self._log.flush()
                write_schema(self.directory, schema)
                self._log.set_schema(schema)
            self._window.conform(schema)
            self.schema = schema
            self._cond.notify_all()
        log.info("stream table %r: added columns %s at offset %d", self.name, [f.name for f in new], self._next)
        return schema

    # -- writing ------------------------------------------------------------------------
    def append(self, batch, *, tag: int | None = None) -> tuple[int, int]:
        """Append rows; return the offsets ``(first, last)`` they were given.

        Parameters
        ----------
        batch : pyarrow.RecordBatch | pyarrow.Table | dict of arrays | pandas.DataFrame
            Columns by name; each is cast safely to the schema's type. The whole batch is
            validated before anything is written, so a bad batch leaves the table as it was.
        tag : int, optional
            An int64 stored with this batch's frame and returned by :attr:`last_tag`,
            written in the same write as the rows. Engine runners record the input offset
            that produced the rows, which makes "rows + progress" one atomic step.

        Returns
        -------
        (first, last) : tuple of int
            Inclusive offsets. An empty batch returns ``(next_offset, next_offset - 1)``.
        """
        schema = self.schema
        rb = coerce_batch(batch, schema, self.name)
        n = rb.num_rows
        listeners: list = []
        with self._lock:
            if self._closed:
                raise RuntimeError(f"stream table {self.name!r} is closed")
            if self.schema is not schema:  # columns were added while this batch was validated
                rb = conform_batch(rb, self.schema)
            first = self._next
            if n == 0:
                return first, first - 1
            now = self.clock.now_ns()
            if self._log is not None:
                self._log.append(rb, first, now, NO_TAG if tag is None else int(tag))
                if self._log.dirty and self.options.fsync == "batch" and self._flush_timer is None:
                    # Group commit must also cover the last appends before a pause: a timer
                    # fsyncs them within the interval even if no further append comes.
                    self._flush_timer = threading.Timer(self.options.fsync_interval_s, self._timed_flush)
                    self._flush_timer.daemon = True
                    self._flush_timer.start()
            elif tag is not None:
                self._mem_tag = int(tag)
            self._next = first + n
            self._window.append(rb, first)
            self._retain(now)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(first, first + n - 1)
            except Exception:  # a broken listener must not fail the writer
                log.exception("stream table %r: listener %r failed", self.name, fn)
        return first, first + n - 1

    def _retain(self, now_ns: int) -> int:
        """Apply retention (lock held); return log segments deleted. Without a log the
        memory window is the retention: the oldest row is its first."""
        if self._log is None:
            self._oldest = self._window.first_offset
            return 0
        deleted = self._retention.apply(self._log, now_ns)
        oldest = self._log.oldest_offset
        self._oldest = oldest if oldest is not None else self._next
        return deleted

    def _timed_flush(self) -> None:
        with self._lock:
            self._flush_timer = None
            if not self._closed and self._log is not None:
                self._log.flush()

    def flush(self) -> None:
        """Make every appended row durable (fsync), whatever the fsync policy."""
        with self._lock:
            if self._log is not None:
                self._log.flush()

    def enforce_retention(self) -> int:
        """Apply age/size retention now (appends also do); return segments deleted."""
        with self._lock:
            if self._log is None:
                return 0
            return self._retain(self.clock.now_ns())

    # -- reading ------------------------------------------------------------------------
    def read(self, start: int | None = None, end: int | None = None) -> pa.Table:
        """Rows with offsets ``start <= offset < end`` plus an int64 ``offset`` column.

        ``start`` defaults to :attr:`oldest_offset`, ``end`` to :attr:`next_offset` (an
        ``end`` beyond it is clipped).

        Raises
        ------
        RetentionError
            ``start`` is older than :attr:`oldest_offset`.
        """
        with self._lock:
            start = self._oldest if start is None else int(start)
            end = self._next if end is None else min(int(end), self._next)
            if start < 0:
                raise ValueError(f"stream table {self.name!r}: start offset must be >= 0, got {start}")
            if start < self._oldest:
                raise RetentionError(self.name, start, self._oldest)
            end = max(end, start)
            batches: list[pa.RecordBatch] = []
            mem_start = self._window.first_offset
            if start < mem_start and self._log is not None:
                batches += self._log.read(start, min(end, mem_start))
            batches += self._window.slices(start, end)
        table = pa.Table.from_batches(batches, schema=self.schema)
        return table.append_column(OFFSET_COLUMN, pa.array(np.arange(start, end, dtype=np.int64)))

    # -- subscriptions ------------------------------------------------------------------
    def subscribe(self, action: str, handler: Callable[[pa.Table], object] | None = None, *,
                  offset: int = OFFSET_NEW, batch_size: int = 65_536, throttle: float = 0.0,
                  filter=None) -> Subscription:
        """Subscribe ``action`` to this table.

        Parameters
        ----------
        action : str
            Unique per table; names the persisted acknowledged offset.
        handler : callable(pyarrow.Table), optional
            Called with each delivered batch (rows carry ``offset``) by :meth:`pump` or the
            delivery thread after :meth:`start`. Without one, use ``Subscription.poll()``.
        offset : int
            First offset to deliver, or ``OFFSET_NEW`` (rows appended from now on),
            ``OFFSET_ACKED`` (after this action's last :meth:`ack`; from the oldest retained
            row if it never acked) or ``OFFSET_OLDEST``.
        batch_size : int
            Most rows per delivery.
        throttle : float
            Seconds the delivery thread may wait for ``batch_size`` rows to accumulate
            before delivering a smaller batch (0: deliver as soon as rows arrive).
        filter : mapping of column -> values, or callable(pyarrow.Table), optional
            Keep rows whose column value is in the given set (all columns must match), or
            rows where the callable's boolean mask is true (it may also return a table).
        """
        check_name("action", action)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if throttle < 0:
            raise ValueError(f"throttle must be >= 0, got {throttle}")
        with self._lock:
            if action in self._subs:
                raise ValueError(f"stream table {self.name!r}: action {action!r} is already subscribed")
            if offset == OFFSET_NEW:
                pos = self._next
            elif offset == OFFSET_OLDEST:
                pos = self._oldest
            elif offset == OFFSET_ACKED:
                acked = self._acks.get(action)
                pos = self._oldest if acked is None else acked + 1
            else:
                pos = int(offset)
                if pos < 0 or pos > self._next:
                    raise ValueError(
                        f"stream table {self.name!r}: subscribe offset {pos} is outside 0..{self._next} (next_offset)")
            if pos < self._oldest:
                raise RetentionError(self.name, pos, self._oldest)
            sub = Subscription(self, action, handler, pos, batch_size, throttle, filter)
            self._subs[action] = sub
            if self._started and handler is not None:
                sub._start_thread()
        return sub

    def unsubscribe(self, action: str) -> None:
        """Stop and forget a subscription (its acknowledged offset stays)."""
        with self._lock:
            sub = self._subs.pop(action, None)
        if sub is not None:
            sub._stop_thread()

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        with self._lock:
            return dict(self._subs)

    def ack(self, action: str, offset: int) -> None:
        """Record that ``action`` has processed every row up to and including ``offset``.

        Persisted atomically (temp file, fsync, rename). Acks only move forward.
        """
        check_name("action", action)
        offset = int(offset)
        with self._lock:
            if offset < -1 or offset >= self._next:
                raise ValueError(
                    f"stream table {self.name!r}: cannot ack offset {offset} for {action!r}; "
                    f"rows so far are 0..{self._next - 1}")
            prev = self._acks.get(action)
            if prev is not None and offset < prev:
                raise ValueError(
                    f"stream table {self.name!r}: ack for {action!r} would move back from {prev} to {offset}")
            if prev != offset:
                self._acks.set(action, offset)

    def acked(self, action: str) -> int | None:
        """Last offset acknowledged by ``action`` (None if it never acked)."""
        with self._lock:
            return self._acks.get(action)

    def pump(self) -> int:
        """Deliver every pending row to handler subscriptions in this thread; return rows delivered."""
        return sum(sub.pump() for sub in self.subscriptions.values() if sub.handler is not None)

    def start(self) -> None:
        """Deliver to handler subscriptions from background threads (one per subscription)."""
        with self._lock:
            self._started = True
            subs = [s for s in self._subs.values() if s.handler is not None]
        for sub in subs:
            sub._start_thread()

    def add_listener(self, fn: Callable[[int, int], None]) -> Callable[[], None]:
        """Call ``fn(first, last)`` after each append (outside the lock); return a remover.

        Listeners run in the writer's thread and must be quick (an asyncio bridge calls
        ``loop.call_soon_threadsafe``).
        """
        with self._lock:
            self._listeners.append(fn)

        def remove() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)
        return remove

    def close(self) -> None:
        """Stop delivery threads, fsync and close files. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            subs = list(self._subs.values())
            self._cond.notify_all()
        for sub in subs:
            sub._stop_thread()
        with self._lock:
            if self._log is not None:
                self._log.close()

    def __enter__(self) -> StreamTable:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "memory"
        return f"StreamTable({self.name!r}, rows {self._oldest}..{self._next - 1}, {where})"
