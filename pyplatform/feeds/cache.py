"""The last few minutes of received ticks, on disk in LMDB, for gap recovery.

Each decoded batch is written *before* it is appended to the tick table (write-ahead), as
one LMDB record: key = big-endian batch id (monotonic, survives restarts), value = the
batch's newest timestamp (8 bytes) + the batch in the columnar codec. The tick table is
appended with ``tag=batch_id``, so after a crash ``table.last_tag`` says exactly which
cached batches never reached the table. Records older than ``window_s`` (by the newest
timestamp written) are pruned on every write.

LMDB is opened with ``sync=False``: a record survives a process crash (it is in the OS
page cache) but not necessarily a power cut; the tick table's own fsync policy governs
durability beyond that.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import lmdb
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.feeds.codec import decode_batch, encode_batch
from pyplatform.feeds.schemas import WIRE_TICKS

__all__ = ["RecentCache"]

log = logging.getLogger(__name__)
_KEY = struct.Struct(">Q")
_TS = struct.Struct(">q")


class RecentCache:
    """LMDB-backed ring of recent tick batches.

    Parameters
    ----------
    path : path
        Directory of the LMDB environment (created).
    window_s : float
        Seconds of data kept (default 300: the last five minutes).
    map_size : int
        LMDB map size in bytes (address space reserved, not disk used).
    """

    def __init__(self, path: str | Path, window_s: float = 300.0, map_size: int = 1 << 30) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.window_ns = int(window_s * 1e9)
        self.env = lmdb.open(str(self.path), map_size=map_size, sync=False, max_dbs=0, lock=True)
        with self.env.begin() as txn:
            cur = txn.cursor()
            self._next_id = _KEY.unpack(cur.key())[0] + 1 if cur.last() else 1
        self._newest = self.newest_ns()

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> RecentCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reserve_ids_above(self, batch_id: int) -> None:
        """Make the next batch id larger than ``batch_id`` (a table tagged by an older cache)."""
        self._next_id = max(self._next_id, int(batch_id) + 1)

    def put(self, ticks: pa.Table) -> int:
        """Store one batch (``WIRE_TICKS`` columns); return its batch id (0 if empty)."""
        if ticks.num_rows == 0:
            return 0
        batch_id = self._next_id
        newest = int(pc.max(ticks.column("ts")).as_py())
        self._newest = max(self._newest or newest, newest)
        value = _TS.pack(newest) + encode_batch(ticks.select(WIRE_TICKS.names), level=1)
        cutoff = self._newest - self.window_ns
        try:
            self._write(batch_id, value, cutoff)
        except lmdb.MapFullError:
            # the window holds more than the map: keep streaming into the table, uncached
            log.error("feed cache %s is full (map_size=%d); batch %d not cached - raise map_size",
                      self.path, self.env.info()["map_size"], batch_id)
            return 0
        self._next_id += 1
        return batch_id

    def _write(self, batch_id: int, value: bytes, cutoff: int) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(_KEY.pack(batch_id), value)
            cur = txn.cursor()
            if cur.first():
                while True:  # prune expired batches from the oldest end
                    key, val = cur.item()
                    if key == _KEY.pack(batch_id) or _TS.unpack(val[:8])[0] >= cutoff:
                        break
                    if not cur.delete():
                        break

    def read(self, after_id: int = 0) -> tuple[pa.Table, int]:
        """Batches with id > ``after_id`` as one table, and the newest id read (0 if none)."""
        tables, last = [], 0
        with self.env.begin() as txn:
            cur = txn.cursor()
            if cur.set_range(_KEY.pack(after_id + 1)):
                for key, val in cur:
                    tables.append(decode_batch(bytes(val[8:])))
                    last = _KEY.unpack(key)[0]
        if not tables:
            return WIRE_TICKS.empty_table(), 0
        return pa.concat_tables([t.cast(WIRE_TICKS) for t in tables]), last

    def newest_ns(self) -> int | None:
        """Newest tick timestamp cached, or ``None`` when empty."""
        with self.env.begin() as txn:
            cur = txn.cursor()
            newest = None
            for _, val in cur:
                ts = _TS.unpack(val[:8])[0]
                newest = ts if newest is None else max(newest, ts)
            return newest

    def __len__(self) -> int:
        return self.env.stat()["entries"]
