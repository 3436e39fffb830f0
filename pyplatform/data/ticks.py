"""Synthetic trade ticks with bid/ask quotes, on each asset class's calendar.

Per symbol: arrival times are a Poisson process over the open sessions whose intensity
follows the same intraday profile as bar volume (thinning), made strictly increasing in
nanoseconds so (symbol, ts) is a key; the mid price is a random walk in continuous time;
the spread is a whole number of ticks; each trade is a buy at the ask or a sell at the bid.
Everything is NumPy over all the ticks of a symbol.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.calendars import calendar_for
from pyplatform.data.bar_simulator import _YEAR_SECONDS, _decimals, _shape
from pyplatform.data.universe import as_instruments, symbol_params
from pyplatform.domain.instruments import AssetClass
from pyplatform.domain.schemas import TICKS

__all__ = ["generate_ticks"]

_NS = 1_000_000_000


def _open_intervals(cal, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
    d0 = pd.Timestamp(start_ns).normalize() - pd.Timedelta("1D")
    d1 = pd.Timestamp(end_ns).normalize() + pd.Timedelta("2D")
    s = cal.sessions(d0, d1)
    lo = np.maximum(s["open_ns"].to_numpy(), start_ns)
    hi = np.minimum(s["close_ns"].to_numpy(), end_ns)
    keep = hi > lo
    return lo[keep], hi[keep]


def generate_ticks(symbols, start, end, seed: int = 0, rate: float = 1.0, start_prices: dict | None = None,
                   as_arrow: bool = False):
    """Synthetic ticks in memory for ``start <= ts < end`` (only while each market is open).

    Parameters
    ----------
    symbols : int, str, or list of str / Instrument
        Symbols or a count for :func:`~pyplatform.data.make_universe`.
    start, end : time-like
        Half-open UTC range.
    seed : int
        Same inputs and seed: identical ticks.
    rate : float
        Mean trades per second per symbol while open (before the intraday profile).
    start_prices : dict, optional
        Symbol -> first mid price (e.g. the last close of generated bars).
    as_arrow : bool
        Return an Arrow table in the TICKS schema (int64 ``ts``) instead of pandas.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        Indexed by (datetime, symbol), sorted by time; columns price, volume, side (+1 buy,
        -1 sell), bid, ask.
    """
    if rate <= 0:
        raise ValueError(f"generate_ticks: rate must be > 0, got {rate}")
    instruments = as_instruments(symbols, seed)
    params = symbol_params(instruments, seed)
    s_ns, e_ns = pd.Timestamp(start).as_unit("ns").value, pd.Timestamp(end).as_unit("ns").value
    parts = []
    for inst in instruments:
        p = params.loc[inst.symbol]
        ac = inst.asset_class
        cal = calendar_for(inst.symbol)
        lo, hi = _open_intervals(cal, s_ns, e_ns)
        rng = np.random.default_rng([seed, zlib.crc32(inst.symbol.encode()), s_ns // _NS])
        lengths = hi - lo
        total = float(lengths.sum()) / _NS
        if total <= 0:
            continue
        peak = 2.5  # intensity ceiling for thinning (profiles stay below it)
        n = rng.poisson(rate * total * peak)
        pos = np.sort(rng.random(n)) * lengths.sum()
        seg = np.searchsorted(np.cumsum(lengths), pos, side="right")
        seg = np.minimum(seg, len(lo) - 1)
        ts = lo[seg] + (pos - (np.cumsum(lengths) - lengths)[seg]).astype(np.int64)
        sess_lo = lo[seg]
        sessions = cal.sessions(pd.Timestamp(s_ns).normalize() - pd.Timedelta("1D"),
                                pd.Timestamp(e_ns).normalize() + pd.Timedelta("2D"))
        full_open = sessions["open_ns"].to_numpy()
        full_close = sessions["close_ns"].to_numpy()
        j = np.clip(np.searchsorted(full_open, ts, side="right") - 1, 0, len(full_open) - 1)
        u = (ts - full_open[j]) / np.maximum(full_close[j] - full_open[j], 1)
        keep = rng.random(n) * peak < _shape(ac, ts, u)
        ts, sess_lo = ts[keep], sess_lo[keep]
        if ts.size == 0:
            continue
        # strictly increasing ns: t'_i = max(t_i, t'_{i-1} + 1)
        i = np.arange(ts.size, dtype=np.int64)
        ts = np.maximum.accumulate(ts - i) + i
        dec = int(_decimals(ac, np.array([p["price0"]]))[0])
        tick = 10.0 ** -dec
        dt = np.diff(ts, prepend=ts[0]) / _NS
        sig = p["vol"] / np.sqrt(_YEAR_SECONDS[ac])
        p0 = (start_prices or {}).get(inst.symbol, p["price0"])
        mid = p0 * np.exp(np.cumsum(sig * np.sqrt(dt) * rng.standard_normal(ts.size)))
        spread_ticks = max(1, int(p["spread"]))
        if ac is AssetClass.CRYPTO:
            spread_ticks = max(1, int(round(p0 * 1e-4 / tick)))
        bid = np.maximum(np.floor(mid / tick - spread_ticks / 2.0), 1.0)
        ask = bid + spread_ticks
        side = np.where(rng.random(ts.size) < 0.5, 1, -1).astype(np.int8)
        price = np.where(side > 0, ask, bid)
        size = float(p["trade_size"])
        raw = size * np.exp(rng.normal(0.0, 0.8, ts.size))
        if ac is AssetClass.CRYPTO:
            volume = np.maximum(np.round(raw, 4), 1e-4)
        elif ac is AssetClass.STOCK:
            volume = np.maximum(np.round(raw), 1.0)
        else:
            volume = np.maximum(np.round(raw * 1000.0), 1000.0)  # forex: units of base currency
        parts.append(pa.table({
            "ts": ts, "symbol": pa.array([inst.symbol] * ts.size, pa.string()),
            "price": np.round(price * tick, dec), "volume": volume, "side": side,
            "bid": np.round(bid * tick, dec), "ask": np.round(ask * tick, dec),
        }, schema=TICKS))
    table = pa.concat_tables(parts) if parts else TICKS.empty_table()
    sym = table.column("symbol").to_numpy(zero_copy_only=False).astype(str)
    table = table.take(pa.array(np.lexsort((sym, table.column("ts").to_numpy()))))
    if as_arrow:
        return table
    frame = table.to_pandas()
    frame.index = pd.MultiIndex.from_arrays(
        [pd.to_datetime(frame.pop("ts").to_numpy(), unit="ns"), frame.pop("symbol")], names=["datetime", "symbol"])
    return frame
