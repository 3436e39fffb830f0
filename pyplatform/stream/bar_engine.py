"""The bar engine: ticks in, OHLCV + VWAP + trade-count bars out, per symbol, on event time.

Sans-I/O: :meth:`BarEngine.feed` takes a tick batch and returns the bars it closed;
:meth:`BarEngine.on_clock` closes windows of quiet symbols. The runtime
(:mod:`pyplatform.stream.runtime`) wires it between stream tables.

Windows are ``[k*size, (k+1)*size)`` on the Unix epoch, stamped with their start. For one
symbol, window ``W`` closes (is emitted, once) when that symbol's event-time watermark (the
largest tick time seen) reaches ``W.end + accepted_delay``, or when ``on_clock(now)`` has
``now >= W.end + accepted_delay``. Ticks are merged into any window not yet closed, in
whatever order they arrive (open/close are the first/last tick by event time, ties by
arrival). A tick for a window that has already closed is *late*: it is not merged, it is
counted per symbol (:attr:`late_ticks`) and kept for :meth:`drain` ``("late")`` so the
runtime can append it to a late-ticks table. Nothing is silently dropped.

Feeding a batch gives exactly what feeding its rows one at a time would (the lateness
pass runs in arrival order in a compiled kernel), so results do not depend on batch sizes.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.domain.schemas import BARS
from pyplatform.stream.bar_kernels import (
    INT64_MIN, PARTIAL_FIELDS, classify_late, closed_bound, combine_partials, empty_partials,
)

__all__ = ["BarEngine", "to_nanos"]

_REQUIRED = ("ts", "symbol", "price", "volume")
_FORMAT = "pyplatform.bars/1"


def to_nanos(value, name: str = "duration") -> int:
    """A duration (``"1min"``, ``"5s"``, int nanoseconds, timedelta) as int nanoseconds."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, timedelta, np.timedelta64, pd.Timedelta)):
        try:
            return int(pd.Timedelta(value).value)
        except ValueError as exc:
            raise ValueError(f"{name}: cannot read {value!r} as a duration: {exc}") from None
    raise TypeError(f"{name}: expected a duration like '1min' or int nanoseconds, got {type(value).__name__}")


def _as_table(batch) -> pa.Table:
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, dict):
        return pa.table({k: (v if isinstance(v, (pa.Array, pa.ChunkedArray)) else np.asarray(v))
                         for k, v in batch.items()})
    if isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False)
    raise TypeError(f"unsupported tick batch {type(batch).__name__}: expected Arrow, dict of arrays or pandas")


class BarEngine:
    """Time-series engine building bars of one window size from ticks.

    Parameters
    ----------
    window : str | int | timedelta
        Bar width, e.g. ``"1s"``, ``"1min"``, ``"5min"`` or nanoseconds.
    accepted_delay : str | int | timedelta
        How long after a window's end (in event time) ticks for it are still merged.
    keep_late : bool
        Keep late ticks for :meth:`drain` (counts are kept either way).

    Examples
    --------
    >>> eng = BarEngine("1min")
    >>> bars = eng.feed({"ts": [0, 30_000_000_000, 60_000_000_000], "symbol": ["A"] * 3,
    ...                  "price": [1.0, 2.0, 3.0], "volume": [1.0, 1.0, 1.0]})
    >>> bars.column("close").to_pylist()
    [2.0]
    """

    output_schema = BARS

    def __init__(self, window="1min", accepted_delay=0, *, keep_late: bool = True) -> None:
        self.size = to_nanos(window, "window")
        self.delay = to_nanos(accepted_delay, "accepted_delay")
        if self.size <= 0:
            raise ValueError(f"window must be positive, got {window!r}")
        if self.delay < 0:
            raise ValueError(f"accepted_delay must be >= 0, got {accepted_delay!r}")
        self.keep_late = keep_late
        self._sym_index: dict[str, int] = {}
        self._symbols: list[str] = []
        self._sym_pa = pa.array([], type=pa.string())
        self._wm = np.empty(0, dtype=np.int64)
        self._closed = np.empty(0, dtype=np.int64)
        self._late = np.empty(0, dtype=np.int64)
        self._clock_closed = INT64_MIN
        self._open = empty_partials()
        self._seq = 0
        self._late_rows: list[pa.Table] = []
        #: Next input offset to feed (from the ``offset`` column of fed batches), or None.
        self.input_offset: int | None = None
        #: Bumped when ``on_clock`` changes state (the runner skips checkpoints otherwise).
        self.clock_version = 0

    # -- symbols ------------------------------------------------------------------------
    def _sids(self, symbol: pa.ChunkedArray) -> np.ndarray:
        if symbol.null_count:
            first = int(np.flatnonzero(symbol.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"tick batch: column 'symbol' is null at row {first}")
        # One vectorised hash lookup per batch; Python only touches symbols never seen before.
        idx = pc.index_in(symbol, value_set=self._sym_pa)
        if idx.null_count:
            new = pc.unique(pc.filter(symbol, pc.is_null(idx))).to_pylist()
            self._add_symbols(new)
            idx = pc.index_in(symbol, value_set=self._sym_pa)
        return idx.to_numpy().astype(np.int64, copy=False)

    def _add_symbols(self, new: list[str]) -> None:
        for s in new:
            self._sym_index[s] = len(self._symbols)
            self._symbols.append(s)
        grow = len(new)
        self._wm = np.append(self._wm, np.full(grow, INT64_MIN, dtype=np.int64))
        self._closed = np.append(self._closed, np.full(grow, INT64_MIN, dtype=np.int64))
        self._late = np.append(self._late, np.zeros(grow, dtype=np.int64))
        self._sym_pa = pa.array(self._symbols, type=pa.string())

    # -- feeding ------------------------------------------------------------------------
    def feed(self, batch) -> pa.Table:
        """Merge a tick batch; return the bars (schema BARS) of windows that closed.

        Rows with a null or NaN price/volume/time are rejected with the batch (the engine is
        unchanged) and the error names the column and row.
        """
        table = _as_table(batch)
        missing = [c for c in _REQUIRED if c not in table.schema.names]
        if missing:
            raise ValueError(f"tick batch: missing column(s) {missing}; need {list(_REQUIRED)}")
        n = table.num_rows
        if n == 0:
            return BARS.empty_table()
        ts = self._column(table, "ts", pa.int64())
        price = self._column(table, "price", pa.float64())
        volume = self._column(table, "volume", pa.float64())
        for name, arr in (("price", price), ("volume", volume)):
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise ValueError(f"tick batch: column {name!r} is not finite ({arr[bad[0]]}) at row {bad[0]}")
        if "offset" in table.schema.names:
            offs = table.column("offset").to_numpy()
        else:
            offs = None
        symbol = table.column("symbol")
        if symbol.type != pa.string():
            try:
                symbol = symbol.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"tick batch: column 'symbol' must be strings: {exc}") from None
        sid = self._sids(symbol)
        wstart = np.floor_divide(ts, self.size) * self.size
        late = classify_late(sid, ts, wstart, self._wm, self._closed, self._clock_closed, self.size, self.delay)
        seq = np.arange(self._seq, self._seq + n, dtype=np.int64)
        self._seq += n
        if offs is not None:
            self.input_offset = int(offs.max()) + 1
        good = ~late
        if late.any():
            self._late += np.bincount(sid[late], minlength=len(self._symbols))
            if self.keep_late:
                self._late_rows.append(table.filter(pa.array(late)))
        if good.any():
            g_price, g_vol, g_ts, g_seq = price[good], volume[good], ts[good], seq[good]
            ticks = {
                "sid": sid[good], "wstart": wstart[good], "first_ts": g_ts, "first_seq": g_seq,
                "open": g_price, "last_ts": g_ts, "last_seq": g_seq, "close": g_price,
                "high": g_price, "low": g_price, "volume": g_vol, "pv": g_price * g_vol,
                "trades": np.ones(g_ts.shape[0], dtype=np.int64), "max_seq": g_seq,
            }
            self._open = combine_partials({k: np.concatenate((self._open[k], ticks[k])) for k in PARTIAL_FIELDS})
        # Windows closed by this batch's watermarks (the kernel moved them forward).
        np.maximum(self._closed, closed_bound(self._wm, self.size, self.delay), out=self._closed)
        return self._emit_closed()

    @staticmethod
    def _column(table: pa.Table, name: str, typ: pa.DataType) -> np.ndarray:
        col = table.column(name)
        if col.null_count:
            first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"tick batch: column {name!r} is null at row {first}")
        try:
            col = col.cast(typ, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"tick batch: column {name!r}: cannot convert {col.type} to {typ}: {exc}") from None
        return col.to_numpy()

    def on_clock(self, now_ns: int) -> pa.Table:
        """Close every window with ``end + accepted_delay <= now_ns`` (for quiet symbols)."""
        bound = closed_bound(int(now_ns), self.size, self.delay)
        if bound > self._clock_closed:
            self._clock_closed = bound
            self.clock_version += 1
        return self._emit_closed()

    def flush(self) -> pa.Table:
        """Close and emit every open window (end of data); later ticks for them are late."""
        p = self._open
        if p["sid"].size:
            ends = p["wstart"] + self.size
            np.maximum.at(self._closed, p["sid"], ends)
        return self._emit_closed()

    def _emit_closed(self) -> pa.Table:
        p = self._open
        if p["sid"].size == 0:
            return BARS.empty_table()
        bound = np.maximum(self._closed[p["sid"]], self._clock_closed)
        done = p["wstart"] < bound
        if not done.any():
            return BARS.empty_table()
        out = {k: v[done] for k, v in p.items()}
        self._open = {k: v[~done] for k, v in p.items()}
        order = np.lexsort((out["sid"], out["wstart"]))  # by window, then symbol id
        out = {k: v[order] for k, v in out.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            vwap = np.where(out["volume"] > 0, out["pv"] / out["volume"], np.nan)
        return pa.Table.from_arrays([
            pa.array(out["wstart"]), pc.take(self._sym_pa, pa.array(out["sid"])),
            pa.array(out["open"]), pa.array(out["high"]), pa.array(out["low"]), pa.array(out["close"]),
            pa.array(out["volume"]), pa.array(vwap), pa.array(out["trades"]),
        ], schema=BARS)

    # -- late ticks -----------------------------------------------------------------------
    @property
    def late_ticks(self) -> dict[str, int]:
        """Late ticks per symbol since the engine started (symbols with none are omitted)."""
        return {self._symbols[i]: int(c) for i in np.flatnonzero(self._late) for c in [self._late[i]]}

    @property
    def open_windows(self) -> int:
        """Windows still accumulating ticks."""
        return int(self._open["sid"].size)

    def drain(self, name: str = "late") -> pa.Table | None:
        """Late ticks kept since the last call (their original columns), or None."""
        if name != "late":
            raise KeyError(f"BarEngine has no side output {name!r} (only 'late')")
        if not self._late_rows:
            return None
        rows, self._late_rows = self._late_rows, []
        return pa.concat_tables(rows, promote_options="default")

    # -- snapshot -------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The whole state as bytes (NumPy ``.npz``, no pickle), input offset included."""
        meta = {"format": _FORMAT, "size": self.size, "delay": self.delay, "seq": self._seq,
                "clock_closed": self._clock_closed, "input_offset": self.input_offset}
        arrays = {f"open_{k}": v for k, v in self._open.items()}
        late_ipc = b""
        if self._late_rows:
            tbl = pa.concat_tables(self._late_rows, promote_options="default")
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, tbl.schema) as w:
                w.write_table(tbl)
            late_ipc = sink.getvalue()
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                 symbols=np.array(self._symbols, dtype=np.str_), wm=self._wm, closed=self._closed,
                 late=self._late, late_rows=np.frombuffer(late_ipc, dtype=np.uint8), **arrays)
        return buf.getvalue()

    def restore(self, data: bytes) -> int | None:
        """Replace the state with a :meth:`snapshot`; return its input offset (or None)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("format") != _FORMAT:
                raise ValueError(f"not a bar-engine snapshot (format {meta.get('format')!r})")
            if (meta["size"], meta["delay"]) != (self.size, self.delay):
                raise ValueError(
                    f"snapshot is for window={meta['size']}ns accepted_delay={meta['delay']}ns, "
                    f"this engine has window={self.size}ns accepted_delay={self.delay}ns")
            self._symbols = [str(s) for s in z["symbols"].tolist()]
            self._sym_index = {s: i for i, s in enumerate(self._symbols)}
            self._sym_pa = pa.array(self._symbols, type=pa.string())
            self._wm, self._closed, self._late = z["wm"].copy(), z["closed"].copy(), z["late"].copy()
            self._open = {k: z[f"open_{k}"].astype(t, copy=True) for k, t in PARTIAL_FIELDS.items()}
            late_ipc = z["late_rows"].tobytes()
        self._late_rows = [pa.ipc.open_stream(late_ipc).read_all()] if late_ipc else []
        self._seq = int(meta["seq"])
        self._clock_closed = int(meta["clock_closed"])
        self.input_offset = meta["input_offset"]
        return self.input_offset
