"""Fan-out of stream-table rows to subscribers, sans I/O.

The fan-out reads each new stream-table batch once, projects it per topic, encodes the
rows once per wire encoding (grouped by symbol), and assembles each subscriber's frame
by concatenating the shared row bytes of its symbols; subscribers with identical symbol
sets share the whole frame. Frames go to a per-subscriber queue bounded in bytes (and
frames): a subscriber whose queue is full is marked *lagged* (the adapter tells it the last delivered
sequence and drops it) and the publisher never waits.

The obvious implementation (serialise each message once per client) is not an option of
this class: it is the benchmark's baseline, a subclass in :mod:`pyplatform.bench`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.signals.assemble import SubsetIndex, assemble_frames, build_index, gather_segments
from pyplatform.signals.topics import Topic, TopicError, check_topic_against_schema, filter_symbols, group_by_symbol, project_rows
from pyplatform.signals.wire import Codec

__all__ = ["Fanout", "Subscriber", "SubscribeError"]

log = logging.getLogger(__name__)


class SubscribeError(Exception):
    """A subscription could not be served; ``info`` is the error message sent to the client."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info.get("message", ""))
        self.info = info


class Subscriber:
    """One connection's side of the fan-out: its subscriptions and its bounded frame queue.

    Parameters
    ----------
    sid : str
        Connection id (logs, registry).
    codec : Codec
        The connection's wire encoding (shared instance: frames are shared).
    max_frames : int
        Queue bound in frames; reaching it marks the subscriber lagged.
    max_bytes : int
        Queue bound in bytes (default 8 MiB): the memory a client that stops reading can pin.
    wake : callable
        Called after frames were queued (the adapter wakes its writer task).
    direct : callable, optional
        ``direct(frame) -> bool`` writes a frame immediately when the connection is idle
        and its socket buffer is not full (no task switch per frame); ``False`` queues it.
    on_lag : callable, optional
        Called once when the queue overflows (the adapter drops the connection even
        while its writer is blocked on a full socket).
    """

    __slots__ = ("sid", "codec", "max_frames", "max_bytes", "queued_bytes", "wake", "on_lag", "direct", "queue",
                 "lagged", "delivered", "subs", "sent_frames")

    def __init__(self, sid: str, codec: Codec, max_frames: int = 1_000, wake: Callable[[], None] = lambda: None,
                 on_lag: Callable[[], None] | None = None, direct: Callable[[bytes], bool] | None = None,
                 max_bytes: int = 8 * 1024 * 1024) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError(f"need max_frames >= 1 and max_bytes >= 1, got {max_frames}, {max_bytes}")
        self.sid = sid
        self.codec = codec
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.wake = wake
        self.on_lag = on_lag or wake
        self.direct = direct
        self.queue: deque[tuple[bytes, str | None, int]] = deque()
        self.lagged = False
        self.delivered: dict[str, int] = {}  # topic -> last sequence handed to the transport
        self.subs: dict[str, frozenset[str] | None] = {}
        self.sent_frames = 0

    def push(self, frame: bytes, topic: str | None = None, seq: int = -1) -> None:
        if self.lagged:
            return
        if not self.queue and self.direct is not None and self.direct(frame):
            self.mark_sent(topic, seq)  # written straight to an idle, uncongested socket
            return
        if len(self.queue) >= self.max_frames or self.queued_bytes + len(frame) > self.max_bytes:
            self.lagged = True
            self.queue.clear()  # the client resumes by sequence; keeping stale frames helps nobody
            self.queued_bytes = 0
            self.on_lag()
            return
        self.queue.append((frame, topic, seq))
        self.queued_bytes += len(frame)
        self.wake()

    def pop(self) -> tuple[bytes, str | None, int]:
        """The oldest queued frame (the writer's side of the queue)."""
        item = self.queue.popleft()
        self.queued_bytes -= len(item[0])
        return item

    def mark_sent(self, topic: str | None, seq: int) -> None:
        self.sent_frames += 1
        if topic is not None and seq >= 0:
            self.delivered[topic] = seq

    def lag_notice(self) -> dict[str, Any]:
        return {"type": "lagged", "delivered": dict(self.delivered),
                "message": f"slow consumer: more than {self.max_frames} frames or {self.max_bytes} bytes queued; "
                           "resume from delivered + 1"}


class Fanout:
    """Reads stream tables and fans rows out to subscribers.

    Parameters
    ----------
    tables : mapping of str to stream table
        ``quotes``, ``bars``, ``factors``, ``signals`` (any subset): objects with
        ``read(start)``, ``next_offset`` and ``oldest_offset``.
    codecs : mapping of str to Codec
        One shared codec per subprotocol.
    max_rows_per_frame : int
        Larger deliveries (replays, wide subscriptions) are split into several frames.
    """

    def __init__(self, tables: Mapping[str, Any], codecs: Mapping[str, Codec], *, max_rows_per_frame: int = 2_000,
                 seed_rows: int = 1_000_000) -> None:
        self.tables = dict(tables)
        self.codecs = dict(codecs)
        self.max_rows_per_frame = max_rows_per_frame
        self.cursor = {name: int(t.next_offset) for name, t in self.tables.items()}
        self._subs: dict[str, dict[str, tuple[Topic, dict[Subscriber, frozenset[str] | None]]]] = {n: {} for n in self.tables}
        self._latest: dict[str, pa.Table | None] = {n: None for n in self.tables}
        self._pending: dict[str, list[pa.Table]] = {n: [] for n in self.tables}
        self._pending_rows: dict[str, int] = {n: 0 for n in self.tables}
        self.row_hooks: list[Callable[[str, pa.Table], None]] = []  # e.g. the Redis hot cache
        self.rows_published = 0
        self._version = 0  # bumped on every subscription change: cached indexes are rebuilt
        self._indexes: dict[tuple[str, str], tuple[int, SubsetIndex]] = {}
        # load (or compile) the segment-copy kernel now, not during the first live batch
        gather_segments(np.zeros(1, np.uint8), np.zeros(1, np.int64), np.ones(1, np.int64))
        for name, t in self.tables.items():  # rows appended before the service started still snapshot
            start = max(int(t.oldest_offset), self.cursor[name] - seed_rows)
            if start < self.cursor[name]:
                self._remember(name, self._read(name, start, self.cursor[name]))

    # ------------------------------------------------------------------ subscriptions
    def _table_for(self, topic: Topic, request_id: Any) -> Any:
        table = self.tables.get(topic.table)
        if table is None:
            raise SubscribeError({"type": "error", "code": "unavailable", "id": request_id, "topic": topic.name,
                                  "message": f"topic {topic.name!r}: this service has no {topic.table!r} table"})
        try:
            check_topic_against_schema(topic, table.schema)
        except TopicError as exc:
            raise SubscribeError({"type": "error", "code": "bad_request", "id": request_id, "topic": topic.name,
                                  "message": str(exc)}) from None
        return table

    def _check_from(self, topic: Topic, table: Any, from_seq: int, request_id: Any) -> None:
        cursor = self.cursor[topic.table]
        oldest = int(table.oldest_offset)
        if from_seq < oldest:
            raise SubscribeError({"type": "error", "code": "retention", "id": request_id, "topic": topic.name,
                                  "oldest_seq": oldest, "message": f"sequence {from_seq} of {topic.name} is no longer "
                                  f"retained; the oldest available sequence is {oldest}"})
        if from_seq > cursor:
            raise SubscribeError({"type": "error", "code": "bad_request", "id": request_id, "topic": topic.name,
                                  "next_seq": cursor, "message": f"from_seq {from_seq} is beyond the next sequence {cursor}"})

    @staticmethod
    def _ack(sub: Subscriber, topic: Topic, symbols: frozenset[str] | None, mode: str, from_seq: int | None,
             live_seq: int, request_id: Any) -> None:
        sub.push(sub.codec.control({"type": "subscribed", "id": request_id, "topic": topic.name, "mode": mode,
                                    "symbols": "*" if symbols is None else sorted(symbols), "from_seq": from_seq,
                                    "live_seq": live_seq}))

    def replay_chunk(self, sub: Subscriber, topic: Topic, symbols: frozenset[str] | None, pos: int, max_rows: int,
                     *, request_id: Any = None, ack: bool = False) -> int:
        """Queue the replay of rows ``[pos, pos + max_rows)`` (bounded by the cursor); return the next position.

        A long replay is served chunk by chunk so the event loop keeps serving everybody
        else in between; :meth:`subscribe` with ``from_seq`` = the returned position then
        finishes the replay and registers without a gap. ``ack=True`` (first chunk) sends
        the ``subscribed`` message, whose ``live_seq`` is then a lower bound.
        """
        table = self._table_for(topic, request_id)
        self._check_from(topic, table, pos, request_id)
        end = min(pos + max_rows, self.cursor[topic.table])
        if ack:
            self._ack(sub, topic, symbols, "replay", pos, self.cursor[topic.table], request_id)
        if end > pos:
            rows = self._read(topic.table, pos, end)
            self._push_ordered(sub, sub.codec, topic.name, filter_symbols(project_rows(topic, rows), symbols), "data")
        return end

    def subscribe(self, sub: Subscriber, topic: Topic, symbols: frozenset[str] | None, from_seq: int | None,
                  *, request_id: Any = None, extra_latest: pa.Table | None = None, ack: bool = True) -> dict[str, Any]:
        """Register ``sub`` on ``topic`` and queue its catch-up (replay or snapshot) frames.

        Everything between reading the catch-up rows and registering happens without
        yielding, so the live stream starts exactly at the cursor the catch-up ended on.

        Raises
        ------
        SubscribeError
            Unknown table/factor, or ``from_seq`` outside what the table retains.
        """
        table = self._table_for(topic, request_id)
        cursor = self.cursor[topic.table]
        codec = sub.codec
        if from_seq is not None:
            self._check_from(topic, table, from_seq, request_id)
            mode = "replay"
            rows = self._read(topic.table, from_seq, cursor) if from_seq < cursor else None
            kind = "data"
        else:
            mode = "snapshot"
            rows = self.latest(topic.table, extra_latest)
            kind = "snapshot"
        if ack:
            self._ack(sub, topic, symbols, mode, from_seq, cursor, request_id)
        if rows is not None and rows.num_rows:
            sel = filter_symbols(project_rows(topic, rows), symbols)
            if kind == "snapshot":
                sel = sel.sort_by("seq")
            self._push_ordered(sub, codec, topic.name, sel, kind)
        slot = self._subs[topic.table].setdefault(topic.name, (topic, {}))
        slot[1][sub] = symbols
        sub.subs[topic.name] = symbols
        self._version += 1
        return {"mode": mode, "live_seq": cursor}

    def unsubscribe(self, sub: Subscriber, topic: Topic) -> None:
        self._version += 1
        slot = self._subs.get(topic.table, {}).get(topic.name)
        if slot is not None:
            slot[1].pop(sub, None)
            if not slot[1]:
                del self._subs[topic.table][topic.name]
        sub.subs.pop(topic.name, None)

    def detach(self, sub: Subscriber) -> None:
        """Forget every subscription of ``sub`` (connection closed)."""
        self._version += 1
        for table_subs in self._subs.values():
            for name in [n for n, (_, m) in table_subs.items() if sub in m]:
                table_subs[name][1].pop(sub, None)
                if not table_subs[name][1]:
                    del table_subs[name]
        sub.subs.clear()

    def subscriber_count(self) -> int:
        return len({s for t in self._subs.values() for _, m in t.values() for s in m})

    # ------------------------------------------------------------------ publishing
    def pump(self, table_name: str) -> int:
        """Fan out every row appended to ``table_name`` since the last pump; returns the row count."""
        table = self.tables[table_name]
        start = self.cursor[table_name]
        if int(table.next_offset) <= start:
            return 0
        rows = self._read(table_name, start, None)
        if rows.num_rows == 0:
            return 0
        self.cursor[table_name] = int(rows.column("offset")[-1].as_py()) + 1
        self._remember(table_name, rows)
        for hook in self.row_hooks:
            try:
                hook(table_name, rows)
            except Exception:  # a cache problem must never stop the stream
                log.exception("row hook failed for %s", table_name)
        for topic, subs in list(self._subs[table_name].values()):
            if subs:
                self._fanout_topic(topic, subs, rows)
        self.rows_published += rows.num_rows
        return rows.num_rows

    def _read(self, name: str, start: int, end: int | None) -> pa.Table:
        table = self.tables[name]
        # ``end`` goes to the table: a replay slice must cost its own rows, not the whole tail
        try:
            rows = table.read(start) if end is None else table.read(start, end)
        except Exception as exc:
            if type(exc).__name__ != "RetentionError":
                raise
            oldest = int(table.oldest_offset)
            log.error("fan-out of %s fell behind retention at %d; skipping to %d", name, start, oldest)
            rows = table.read(oldest) if end is None else table.read(oldest, max(end, oldest))
        if not isinstance(rows, pa.Table):
            rows = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else pa.table(rows)
        if end is not None:
            rows = rows.filter(pc.less(rows.column("offset"), end))
        return rows

    def _fanout_topic(self, topic: Topic, subs: dict[Subscriber, frozenset[str] | None], rows: pa.Table) -> None:
        """Deliver new ``rows`` of ``topic``'s table to its subscribers (``subs``: symbols, or
        ``None`` for all); the one step a subclass replaces to deliver another way."""
        projected = project_rows(topic, rows)
        if projected.num_rows == 0:
            return
        by_codec: dict[str, list[tuple[Subscriber, frozenset[str] | None]]] = {}
        for sub, symbols in subs.items():
            by_codec.setdefault(sub.codec.name, []).append((sub, symbols))
        names, order, gb = group_by_symbol(projected.column("symbol"))
        grouped = projected.take(pa.array(order))
        seqs = grouped.column("seq").to_numpy()
        group_last = seqs[gb[1:] - 1]
        last_seq_all = int(projected.column("seq")[-1].as_py())
        for codec_name, members in by_codec.items():
            codec = self.codecs[codec_name]
            buf, bounds = codec.encode_rows(grouped)
            wildcard = [sub for sub, symbols in members if symbols is None]
            if wildcard:
                if projected.num_rows > self.max_rows_per_frame:
                    for sub in wildcard:
                        self._push_ordered(sub, codec, topic.name, projected, "data")
                else:  # one frame, the same bytes for every all-symbols subscriber
                    frame = codec.frame("data", topic.name, [buf], projected.num_rows)
                    for sub in wildcard:
                        sub.push(frame, topic.name, last_seq_all)
            if len(wildcard) == len(members):
                continue
            index = self._index(topic.name, codec_name, members)
            frames, oversized = assemble_frames(index, codec, "data", topic.name, buf, bounds, names, gb, group_last,
                                                self.max_rows_per_frame)
            name = topic.name
            for group, frame, seq in frames:
                for sub in group:
                    # Subscriber.push's common case inlined (an idle socket takes the frame now):
                    # this loop runs once per subscriber per batch, so each call saved counts
                    if not sub.queue and not sub.lagged and sub.direct is not None and sub.direct(frame):
                        sub.sent_frames += 1
                        sub.delivered[name] = seq
                    else:
                        sub.push(frame, name, seq)
            for sub in oversized:  # split in sequence order so a resume from the last seen seq loses nothing
                self._push_ordered(sub, codec, topic.name, filter_symbols(projected, subs[sub]), "data")

    def _index(self, topic: str, codec_name: str, members: list[tuple[Subscriber, frozenset[str] | None]]) -> SubsetIndex:
        """The flattened (subscriber, symbol) index, rebuilt only after subscriptions changed."""
        key = (topic, codec_name)
        hit = self._indexes.get(key)
        if hit is not None and hit[0] == self._version:
            return hit[1]
        index = build_index([(sub, symbols) for sub, symbols in members if symbols is not None])
        self._indexes[key] = (self._version, index)
        return index

    def _push_ordered(self, sub: Subscriber, codec: Codec, topic: str, rows: pa.Table, kind: str) -> None:
        """Frames of at most ``max_rows_per_frame`` rows, in sequence order."""
        if rows.num_rows == 0:
            return
        buf, bounds = codec.encode_rows(rows)
        mv = memoryview(buf)
        seqs = rows.column("seq").to_numpy()
        step = self.max_rows_per_frame
        for i in range(0, rows.num_rows, step):
            j = min(i + step, rows.num_rows)
            sub.push(codec.frame(kind, topic, [mv[bounds[i]:bounds[j]]], j - i), topic, int(seqs[j - 1]))

    # ------------------------------------------------------------------ latest rows (snapshots)
    def _remember(self, name: str, rows: pa.Table) -> None:
        self._pending[name].append(rows)
        self._pending_rows[name] += rows.num_rows
        if self._pending_rows[name] > 200_000:  # bound memory between snapshot requests
            self.latest(name)

    def latest(self, name: str, extra: pa.Table | None = None) -> pa.Table | None:
        """The latest row per key (symbol; strategy+symbol for signals), merged with ``extra``.

        ``extra`` (rows from the Redis hot cache, with ``offset``) only wins where it is
        newer than what this process has seen.
        """
        parts = [t for t in ([self._latest[name]] + self._pending[name]) if t is not None]
        if parts:
            self._latest[name] = latest_per_key(pa.concat_tables(parts, promote_options="default"))
            self._pending[name], self._pending_rows[name] = [], 0
        cur = self._latest[name]
        if cur is not None:
            # Columns added to the table since these rows were read (a factor published
            # while running) are null in them, so a topic on the new column can snapshot.
            cur = self._latest[name] = _with_columns(cur, self.tables[name].schema)
        if extra is not None and extra.num_rows:
            both = [extra] if cur is None else [extra.select(cur.schema.names).cast(cur.schema), cur]
            return latest_per_key(pa.concat_tables(both))
        return cur


def _with_columns(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` plus, as nulls, the columns of ``schema`` it lacks."""
    for f in schema:
        if f.name not in rows.column_names:
            rows = rows.append_column(pa.field(f.name, f.type), pa.nulls(rows.num_rows, f.type))
    return rows


def latest_per_key(rows: pa.Table) -> pa.Table:
    """Keep the highest-offset row per symbol (per strategy and symbol when a strategy column exists)."""
    if rows.num_rows == 0:
        return rows
    rows = rows.sort_by("offset")
    key = rows.column("symbol")
    if "strategy" in rows.schema.names:
        key = pc.binary_join_element_wise(rows.column("strategy"), key, "\x1f")
    codes = pc.dictionary_encode(key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key).indices.to_numpy()
    # first occurrence in the reversed order is the last occurrence in offset order
    _, first_rev = np.unique(codes[::-1], return_index=True)
    keep = np.sort(len(codes) - 1 - first_rev)
    return rows.take(pa.array(keep))
