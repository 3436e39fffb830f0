"""K-lines (OHLCV bars) from the simulator's recent tape, answering iTick's REST shape."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["KTYPE_FREQ", "kline_bars"]

#: iTick ``kType`` -> pandas frequency: 1 1min, 2 5min, 3 10min, 4 30min, 5 1h, 6 2h,
#: 7 4h, 8 1 day, 9 1 week, 10 1 month.
KTYPE_FREQ = {1: "1min", 2: "5min", 3: "10min", 4: "30min", 5: "1h", 6: "2h", 7: "4h", 8: "1D",
              9: "W", 10: "M"}


def kline_bars(ticks: pa.Table, symbol: str, ktype: int, limit: int, end_ms: int | None) -> list[dict]:
    """Bars of ``symbol`` as iTick REST ``data`` rows (``t`` = bar start, ms), oldest first.

    ``ticks`` has ``ts`` (ns), ``symbol``, ``price``, ``volume``. Only the last ``limit``
    bars starting at or before ``end_ms`` are returned.
    """
    if ktype not in KTYPE_FREQ:
        raise ValueError(f"kType must be 1..10, got {ktype}")
    if ticks.num_rows == 0:
        return []
    f = ticks.filter(pc.equal(ticks.column("symbol"), symbol)).to_pandas()
    if f.empty:
        return []
    ts = pd.to_datetime(f["ts"], unit="ns")
    freq = KTYPE_FREQ[ktype]
    start = ts.dt.to_period(freq).dt.start_time if ktype >= 9 else ts.dt.floor(freq)
    f["start"] = start.astype("int64") // 1_000_000
    f["tu"] = f["price"] * f["volume"]
    g = f.groupby("start", sort=True)
    bars = pd.DataFrame({"o": g["price"].first(), "h": g["price"].max(), "l": g["price"].min(),
                         "c": g["price"].last(), "v": g["volume"].sum(), "tu": g["tu"].sum()})
    if end_ms is not None:
        bars = bars[bars.index <= end_ms]
    bars = bars.tail(max(int(limit), 0))
    return [{"tu": round(float(r.tu), 6), "c": float(r.c), "t": int(t), "v": float(r.v), "h": float(r.h),
             "l": float(r.l), "o": float(r.o)} for t, r in zip(bars.index, bars.itertuples())]
