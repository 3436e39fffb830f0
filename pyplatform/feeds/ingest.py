"""From decoded batches to stream tables: dedupe, sequence/gap accounting, write-ahead cache.

:class:`Ingestor` is the synchronous core the WebSocket client drives (and tests drive
directly): it owns no socket and no event loop. Ticks go

    decoded -> dedupe (Deduper) -> sort by ts -> cache.put (LMDB, write-ahead)
            -> ticks.append(tag=batch id)

so after a crash between the cache write and the table append, :meth:`Ingestor.recover`
restores exactly the batches whose id is above the table's ``last_tag``.
A reconnect or a restart opens a *gap* at the newest tick received; the first tick batch
afterwards closes it (:class:`Gap`), and the client backfills the gap's bars over REST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.feeds.cache import RecentCache
from pyplatform.feeds.decoder import Decoded
from pyplatform.feeds.dedupe import Deduper, SequenceTracker, missing_rows, tick_keys
from pyplatform.feeds.schemas import TICKS

__all__ = ["Gap", "Ingestor", "IngestResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    """A stretch of time during which no ticks were received (ns UTC, ``start`` exclusive)."""

    start_ns: int
    end_ns: int
    reason: str
    missing: int = 0  #: sequence numbers skipped across it (0 when the source has none)


@dataclass
class IngestResult:
    ticks: int = 0
    quotes: int = 0
    depth: int = 0
    duplicates: int = 0
    gaps: list[Gap] = field(default_factory=list)


def _keys(t: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    ts = t.column("ts").to_numpy()
    keys = tick_keys(t.column("symbol"), ts, t.column("price").to_numpy(),
                     t.column("volume").to_numpy(), t.column("seq").to_numpy() if "seq" in t.column_names else None)
    return keys, ts


class Ingestor:
    """Write decoded market data into tables exactly once.

    Parameters
    ----------
    ticks : StreamTable-like
        ``append(batch, tag=...)``, ``last_tag``, ``next_offset``, ``oldest_offset``, ``read``.
    quotes, depth : StreamTable-like, optional
        Where quotes / depth rows go (dropped when ``None``).
    cache : RecentCache, optional
        Write-ahead cache of recent ticks (gap recovery after a restart).
    dedupe_window_s : float
        How long a tick's identity is remembered.
    """

    def __init__(self, ticks, quotes=None, depth=None, cache: RecentCache | None = None,
                 dedupe_window_s: float = 300.0) -> None:
        self.ticks, self.quotes, self.depth, self.cache = ticks, quotes, depth, cache
        self.dedupe = Deduper(window_ns=int(dedupe_window_s * 1e9))
        self.quote_dedupe = Deduper(window_ns=int(dedupe_window_s * 1e9))
        self.sequences = SequenceTracker()
        self.last_ts: int | None = None
        self._stream_last: dict[str, int] = {}
        self.gaps: list[Gap] = []
        self._gap_from: dict[str, tuple[int, str, int]] = {}
        self._restart_from: int | None = None
        self.written = 0

    # -- recovery -----------------------------------------------------------------------
    def recover(self) -> int:
        """Restore cached ticks the table lacks, prime dedupe/sequence state; rows restored.

        Opens a ``restart`` gap at the newest cached tick, closed by the first live batch.
        """
        if self.cache is None:
            return 0
        everything, newest_id = self.cache.read(0)
        if everything.num_rows == 0:
            return 0
        tag = getattr(self.ticks, "last_tag", None)
        if tag is not None:
            self.cache.reserve_ids_above(int(tag))
            todo, _ = self.cache.read(int(tag))
        elif getattr(self.ticks, "next_offset", 0) == 0:
            todo = everything
        else:  # an untagged table: compare against its tail, row multiset by row multiset
            tail = self._table_tail(everything.num_rows)
            lo = pc.min(everything.column("ts")).as_py()
            tail = tail.filter(pc.greater_equal(tail.column("ts"), lo))
            todo = everything.take(pa.array(missing_rows(everything, tail)))
        keys, ts = _keys(everything)
        self.dedupe.filter(keys, ts)
        self.sequences.update(everything.column("symbol"), everything.column("seq").to_numpy())
        if todo.num_rows:
            todo = todo.sort_by("ts")
            self.ticks.append(todo.select(TICKS.names), tag=newest_id)
            self.written += todo.num_rows
        self.last_ts = int(pc.max(everything.column("ts")).as_py())
        self._restart_from = self.last_ts
        log.info("feed recovery: %d cached ticks, %d restored into %r", everything.num_rows, todo.num_rows,
                 getattr(self.ticks, "name", "ticks"))
        return todo.num_rows

    def _table_tail(self, n: int) -> pa.Table:
        start = max(self.ticks.oldest_offset, self.ticks.next_offset - 2 * n - 1024)
        return self.ticks.read(start)

    # -- live ---------------------------------------------------------------------------
    def mark_disconnected(self, reason: str, stream: str = "") -> None:
        """Stream ``stream`` broke (reconnect): open a gap at the newest tick it received.

        Several connections (one per iTick endpoint) may share an ingestor; each names
        itself with ``stream`` so a gap on one is not closed by data from another.
        """
        last = self._stream_last.get(stream)
        if last is not None and stream not in self._gap_from:
            self._gap_from[stream] = (last, reason, self.sequences.missing)

    def ingest(self, decoded: Decoded, stream: str = "") -> IngestResult:
        """Write one decoded batch; return counts and any gap it closed."""
        out = IngestResult()
        t = decoded.ticks
        if t.num_rows:
            keys, ts = _keys(t)
            keep = self.dedupe.filter(keys, ts)
            out.duplicates = int(len(keep) - keep.sum())
            if not keep.all():
                t = t.filter(pa.array(keep))
        if t.num_rows:
            t = t.sort_by("ts")
            seq = t.column("seq").to_numpy()
            if (seq >= 0).any():
                self.sequences.update(t.column("symbol"), seq)
            first_ts = int(t.column("ts")[0].as_py())
            opened = self._gap_from.pop(stream, None)
            if opened is None and self._restart_from is not None:
                opened = (self._restart_from, "restart", 0)
                self._restart_from = None
            if opened is not None:
                start, reason, missing_before = opened
                gap = Gap(start, first_ts, reason, max(self.sequences.missing - missing_before, 0))
                self.gaps.append(gap)
                out.gaps.append(gap)
            tag = self.cache.put(t) if self.cache is not None else None
            self.ticks.append(t.select(TICKS.names), **({"tag": tag} if tag else {}))
            newest = int(t.column("ts")[-1].as_py())
            self.last_ts = newest if self.last_ts is None else max(self.last_ts, newest)
            self._stream_last[stream] = max(self._stream_last.get(stream, newest), newest)
            out.ticks = t.num_rows
            self.written += t.num_rows
        q = decoded.quotes
        if q.num_rows and self.quotes is not None:
            qk = tick_keys(q.column("symbol"), q.column("ts").to_numpy(),
                           q.column("last").to_numpy(), q.column("volume").to_numpy())
            keep = self.quote_dedupe.filter(qk, q.column("ts").to_numpy())
            q = q.filter(pa.array(keep))
            if q.num_rows:
                self.quotes.append(q)
            out.quotes = q.num_rows
        d = decoded.depth
        if d.num_rows and self.depth is not None:
            self.depth.append(d)
            out.depth = d.num_rows
        return out

