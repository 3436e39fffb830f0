"""Synthetic OHLCV bars: correlated, stochastic-volatility, jumpy prices on each asset class's calendar.

The model, per asset class and per chunk of sessions (a month), all symbols at once as
``(symbols, bars)`` NumPy matrices:

- log return of bar t = sigma * intraday_shape(t)^0.5 * exp(h_day) * (beta * market(t) +
  sector_beta * sector(t) + idiosyncratic(t)) + jump(t) + overnight gap (stocks, first bar
  of a session). ``h`` is a daily AR(1) log-volatility (stochastic volatility); the market and
  sector shocks are shared by every symbol of the class (correlated sectors); jumps are rare
  and large.
- open = previous close (times the gap), high/low extend beyond max/min(open, close) by a
  half-normal multiple of the bar's sigma, prices rounded to the asset class's precision.
- volume follows a U-shaped intraday profile for stocks (busy open and close), a London/New
  York overlap hump for forex and a mild daily cycle for crypto, and rises with |return|;
  trade counts are Poisson in volume / typical trade size; vwap sits inside the bar's range.
- day-to-day volume varies as real volume does: a daily AR(1) log-volume level (busy and
  quiet days cluster) times the day's volatility level (volume rises with volatility), so
  ``volume / mavg(volume, 20)`` of daily bars has a standard deviation near 0.3 rather than
  the ~0.03 that independent per-minute noise averages down to.
- prices stay in plausible ranges over decades: the log price is pulled back towards its
  starting level (a mean-reverting drift, applied once per chunk with a rate chosen so the
  stationary spread of the log price is about 0.45 for stocks, 0.12 for forex and 0.8 for
  crypto). The pull is far too slow to be a tradable signal on daily bars (half-lives of
  months to decades, against daily noise), but a stock does not wander from 105 to 2 in
  twelve years.

State (last log price, last log-vol) carries from one chunk to the next, so a long history is
generated month by month in bounded memory and is identical to generating it in one go.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.signal import lfilter

from pyplatform.calendars import calendar_for
from pyplatform.domain.instruments import PRICE_DECIMALS, AssetClass, Instrument
from pyplatform.domain.schemas import BARS
from pyplatform.data.universe import as_instruments, symbol_params

__all__ = ["BarSimulator", "generate_bars", "month_chunks"]

_YEAR_SECONDS = {  # trading seconds per year, to turn annual vol into per-bar vol
    AssetClass.STOCK: 252 * 6.5 * 3600, AssetClass.INDEX: 252 * 6.5 * 3600,
    AssetClass.FOREX: 260 * 24 * 3600, AssetClass.CRYPTO: 365 * 24 * 3600,
}
_CLASS_CODE = {AssetClass.STOCK: 1, AssetClass.FOREX: 2, AssetClass.CRYPTO: 3, AssetClass.INDEX: 4}
_PHI, _H_SD = 0.97, 0.35          # daily log-vol persistence and stationary sd
_JUMPS_PER_DAY = 0.15             # expected jumps per symbol per session
_VPHI, _V_SD = 0.6, 0.30          # daily log-volume level: persistence and stationary sd
_V_VOL = 0.8                      # loading of daily log-volume on the day's log-volatility
#: stationary sd of the log price around its starting level, per class (see the module notes)
_LOGP_SD = {AssetClass.STOCK: 0.45, AssetClass.FOREX: 0.12, AssetClass.CRYPTO: 0.8, AssetClass.INDEX: 0.3}
_DAYS_PER_YEAR = {AssetClass.STOCK: 252.0, AssetClass.INDEX: 252.0, AssetClass.FOREX: 260.0, AssetClass.CRYPTO: 365.0}
_KAPPA_MIN = 0.05                 # per year: even a quiet symbol reverts within decades
_NS = 1_000_000_000


def month_chunks(start, end) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` cut at month boundaries (dates)."""
    a, b = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if b <= a:
        return []
    edges = [a] + [t for t in pd.date_range(a, b, freq="MS") if a < t < b] + [b]
    return list(zip(edges[:-1], edges[1:]))


def _shape(ac: AssetClass, ts: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Intraday activity profile with mean ~1 (volume scales with it; volatility with its root)."""
    if ac in (AssetClass.STOCK, AssetClass.INDEX):
        s = 0.55 + 1.8 * (2.0 * u - 1.0) ** 2
        return s / 1.15
    hour = (ts // (3600 * _NS)) % 24 + ((ts // (60 * _NS)) % 60) / 60.0
    if ac is AssetClass.FOREX:
        return (0.5 + 1.5 * np.exp(-(((hour - 14.0) / 3.5) ** 2))) / 0.933
    return (0.8 + 0.4 * np.exp(-(((hour - 15.0) / 4.0) ** 2))) / 0.958


@dataclass
class _ClassState:
    instruments: list[Instrument]
    params: pd.DataFrame
    logp: np.ndarray
    h: np.ndarray
    sectors: np.ndarray
    n_sectors: int
    v: np.ndarray = None          # daily log-volume level, carried between chunks
    anchor: np.ndarray = None     # log starting price the mean-reverting drift pulls towards
    kappa: np.ndarray = None      # mean-reversion rate per year


@dataclass
class BarSimulator:
    """Generates bars chunk by chunk, carrying prices and volatility between chunks.

    Parameters
    ----------
    instruments : list of Instrument
    seed : int
    freq : str
        Bar width (``1min`` by default); any pandas offset that divides the sessions.
    """

    instruments: list[Instrument]
    seed: int = 0
    freq: str = "1min"
    _classes: dict[AssetClass, _ClassState] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        params = symbol_params(self.instruments, self.seed)
        by_class: dict[AssetClass, list[Instrument]] = {}
        for inst in self.instruments:
            by_class.setdefault(inst.asset_class, []).append(inst)
        for ac, insts in by_class.items():
            p = params.loc[[i.symbol for i in insts]]
            names = sorted({i.sector for i in insts})
            sectors = np.array([names.index(i.sector) for i in insts])
            rng = np.random.default_rng([self.seed, _CLASS_CODE[ac], 0])
            logp0 = np.log(p["price0"].to_numpy())
            h0 = rng.normal(0.0, _H_SD, len(insts))
            # a separate stream for the newer parts of the model, so the draws above (and the
            # prices they make) do not shift when the volume model changes
            v0 = np.random.default_rng([self.seed, _CLASS_CODE[ac], 1]).normal(0.0, _V_SD, len(insts))
            # OU: stationary variance sigma^2 / (2 kappa) = sd^2  ->  kappa = sigma^2 / (2 sd^2)
            kappa = np.maximum(p["vol"].to_numpy() ** 2 / (2.0 * _LOGP_SD[ac] ** 2), _KAPPA_MIN)
            self._classes[ac] = _ClassState(insts, p, logp0, h0, sectors, len(names), v=v0,
                                            anchor=logp0.copy(), kappa=kappa)

    def chunk(self, start, end) -> tuple[pa.Table, pa.Table]:
        """Bars of the sessions dated in ``[start, end)`` and their daily bars.

        Returns
        -------
        (pyarrow.Table, pyarrow.Table)
            Minute (``freq``) bars and daily bars in the :data:`~pyplatform.domain.schemas.BARS`
            schema, each sorted by (symbol, ts).
        """
        parts, daily = [], []
        for ac, st in self._classes.items():
            got = self._simulate(ac, st, start, end)
            if got is not None:
                parts.append(got[0])
                daily.append(got[1])
        if not parts:
            return BARS.empty_table(), BARS.empty_table()
        return pa.concat_tables(parts), pa.concat_tables(daily)

    def _simulate(self, ac: AssetClass, st: _ClassState, start, end):
        cal = calendar_for(st.instruments[0].symbol)
        sessions = cal.sessions(start, end)
        if sessions.empty:
            return None
        step = pd.Timedelta(self.freq).value
        ts, sidx = cal.minutes_with_session(start, end, self.freq)
        k, m, n_days = len(st.instruments), len(ts), len(sessions)
        chunk_key = int(pd.Timestamp(start).value // (86_400 * _NS))
        rng = np.random.default_rng([self.seed, _CLASS_CODE[ac], chunk_key])
        p = st.params
        opens = sessions["open_ns"].to_numpy()
        closes = sessions["close_ns"].to_numpy()
        u = (ts - opens[sidx]) / np.maximum(closes[sidx] - opens[sidx], 1)
        shape = _shape(ac, ts, u)
        sig = (p["vol"].to_numpy() * np.sqrt(step / _NS / _YEAR_SECONDS[ac]))[:, None]
        # daily stochastic log-volatility, continuing from the previous chunk
        eta = rng.normal(0.0, _H_SD * np.sqrt(1 - _PHI**2), (k, n_days))
        h = lfilter([1.0], [1.0, -_PHI], eta, axis=1, zi=(_PHI * st.h)[:, None])[0]
        st.h = h[:, -1].copy()
        vol_t = sig * np.sqrt(shape)[None, :] * np.exp(h[:, sidx] - 0.5 * _H_SD**2)
        z_mkt = rng.standard_normal(m)
        z_sec = rng.standard_normal((st.n_sectors, m))
        beta = p["beta"].to_numpy()[:, None]
        sbeta = p["sector_beta"].to_numpy()[:, None]
        idio_w = np.sqrt(np.maximum(1.0 - beta**2 - sbeta**2, 0.05))
        z = beta * z_mkt[None, :] + sbeta * z_sec[st.sectors] + idio_w * rng.standard_normal((k, m))
        r = vol_t * z
        bars_per_day = max(m / n_days, 1.0)
        jump = rng.random((k, m)) < _JUMPS_PER_DAY / bars_per_day
        # a jump is 8 one-minute sigmas whatever the bar width: scaling by the bar's own sigma
        # would make hourly bars' jumps ~8x larger and double their daily variance
        r = r + jump * rng.normal(0.0, 8.0, (k, m)) * vol_t * np.sqrt(60 * _NS / step)
        gap = np.zeros((k, m))
        first = np.flatnonzero(np.diff(sidx, prepend=-1) != 0)
        if ac in (AssetClass.STOCK, AssetClass.INDEX):
            day_sig = p["vol"].to_numpy()[:, None] / np.sqrt(252.0)
            gap[:, first] = rng.normal(0.0, 1.0, (k, len(first))) * day_sig * 0.4
        dec = _decimals(ac, p["price0"].to_numpy())[:, None]
        tick = 10.0 ** -dec
        # mean-reverting drift: the chunk closes (1 - exp(-kappa dt)) of the gap to the anchor,
        # spread evenly over its bars (discrete OU with one step per chunk)
        dt_years = n_days / _DAYS_PER_YEAR[ac]
        pull = (1.0 - np.exp(-st.kappa * dt_years)) * (st.anchor - st.logp)
        drift = (pull / m)[:, None]
        close = np.exp(st.logp[:, None] + np.cumsum(r + gap + drift, axis=1))
        close = np.maximum(_round(close, dec), tick)
        open_ = np.empty_like(close)
        open_[:, 0] = np.exp(st.logp) * np.exp(gap[:, 0])
        open_[:, 1:] = close[:, :-1] * np.exp(gap[:, 1:])
        open_ = np.maximum(_round(open_, dec), tick)
        st.logp = np.log(close[:, -1])
        ext = np.abs(rng.standard_normal((2, k, m))) * 0.6 * vol_t
        high = _round(np.maximum(open_, close) * np.exp(ext[0]), dec)
        low = np.maximum(_round(np.minimum(open_, close) * np.exp(-ext[1]), dec), tick)
        base = p["volume"].to_numpy()[:, None] * (step / (60 * _NS))
        # the day's volume level: AR(1) in logs (own random stream) plus the day's volatility
        vrng = np.random.default_rng([self.seed, _CLASS_CODE[ac], chunk_key, 1])
        v_eps = vrng.normal(0.0, _V_SD * np.sqrt(1 - _VPHI**2), (k, n_days))
        v = lfilter([1.0], [1.0, -_VPHI], v_eps, axis=1, zi=(_VPHI * st.v)[:, None])[0]
        st.v = v[:, -1].copy()
        day_level = np.exp(v + _V_VOL * h - 0.5 * (_V_SD**2 + (_V_VOL * _H_SD) ** 2))
        volume = base * shape[None, :] * day_level[:, sidx] * np.exp(0.5 * rng.standard_normal((k, m)) - 0.125) \
            * (1.0 + 0.5 * np.abs(r) / np.maximum(vol_t, 1e-12))
        if ac is AssetClass.CRYPTO:
            volume = np.round(volume, 4)
        elif ac is AssetClass.INDEX:
            volume = np.zeros_like(volume)
        else:
            volume = np.maximum(np.round(volume), 1.0)
        size = p["trade_size"].to_numpy()[:, None]
        trades = np.where(volume > 0, 1 + rng.poisson(volume / size), 0).astype(np.int64)
        vwap = _round((high + low + 2.0 * close) / 4.0, dec + 2)
        minute = _table(ts, [i.symbol for i in st.instruments], open_, high, low, close, volume, vwap, trades)
        # daily bars: one per session, stamped with the session date (00:00 UTC)
        ends = np.append(first[1:], m)
        d_vol = np.add.reduceat(volume, first, axis=1)
        d_vwap = np.where(d_vol > 0, np.add.reduceat(vwap * volume, first, axis=1) / np.where(d_vol > 0, d_vol, 1),
                          close[:, ends - 1])
        day_ts = sessions["session"].to_numpy().astype("datetime64[D]").astype("datetime64[ns]").astype(np.int64)
        daily = _table(day_ts[sidx[first]], [i.symbol for i in st.instruments], open_[:, first],
                       np.maximum.reduceat(high, first, axis=1), np.minimum.reduceat(low, first, axis=1),
                       close[:, ends - 1], d_vol, _round(d_vwap, dec + 2),
                       np.add.reduceat(trades, first, axis=1))
        return minute, daily


def _decimals(ac: AssetClass, price0: np.ndarray) -> np.ndarray:
    """Quote decimals per symbol: the asset class's, except crypto, which (like real exchanges)
    quotes about six significant digits (BTC in cents, small coins to 8 decimals)."""
    full = np.full(price0.shape, PRICE_DECIMALS[ac], dtype=np.int64)
    if ac is not AssetClass.CRYPTO:
        return full
    return np.clip(6 - np.floor(np.log10(price0)).astype(np.int64), 2, PRICE_DECIMALS[ac])


def _round(x: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Round each row of ``x`` to its own number of decimals."""
    scale = 10.0 ** dec
    return np.rint(x * scale) / scale


def _table(ts, symbols, open_, high, low, close, volume, vwap, trades) -> pa.Table:
    """(symbols x bars) matrices as a symbol-major Arrow table in the BARS schema."""
    k, m = open_.shape
    sym = pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(k, dtype=np.int32), m)), pa.array(symbols))
    return pa.table({
        "ts": pa.array(np.tile(np.asarray(ts, dtype=np.int64), k)),
        "symbol": sym.cast(pa.string()),
        "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
        "volume": volume.ravel(), "vwap": vwap.ravel(), "trades": trades.ravel(),
    }, schema=BARS)


def generate_bars(symbols, start, end, freq: str = "1min", seed: int = 0, as_arrow: bool = False):
    """Synthetic bars in memory (for tests, demos and the exchange simulator).

    Parameters
    ----------
    symbols : int, str, or list of str / Instrument
        Symbols (``AAPL.US``, ``EURUSD.GB``, ``BTCUSDT.BA``) or a count for :func:`make_universe`.
    start, end : date-like
        Sessions dated in ``[start, end)``; bars are then clipped to ``start <= ts < end`` when
        either bound has a time of day.
    freq : str
        ``1min`` (default), another intraday width such as ``5s`` or ``5min``, or ``1D`` for
        daily bars aggregated from minute bars.
    seed : int
        Same seed, same symbols and range: identical bars.
    as_arrow : bool
        Return an Arrow table in the BARS schema (int64 ``ts``) instead of a pandas frame.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        Indexed by (datetime, symbol) and sorted by time then symbol; columns open, high,
        low, close, volume, vwap, trades.
    """
    instruments = as_instruments(symbols, seed)
    daily = pd.Timedelta(freq) >= pd.Timedelta("1D")
    if daily and pd.Timedelta(freq) != pd.Timedelta("1D"):
        raise ValueError(f"generate_bars: freq {freq!r} not supported: use an intraday width or '1D'")
    sim = BarSimulator(instruments, seed=seed, freq="1min" if daily else freq)
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    day_end = e.normalize() + (pd.Timedelta("1D") if e != e.normalize() else pd.Timedelta(0))
    parts = []
    for a, b in month_chunks(s.normalize(), day_end):
        minute, day = sim.chunk(a, b)
        parts.append(day if daily else minute)
    table = pa.concat_tables(parts) if parts else BARS.empty_table()
    if s != s.normalize() or e != e.normalize():
        ts = table.column("ts").to_numpy()
        keep = (ts >= s.value) & (ts < e.value)
        if not keep.all():
            table = table.filter(pa.array(keep))
    sym = table.column("symbol").to_numpy(zero_copy_only=False).astype(str)
    order = np.lexsort((sym, table.column("ts").to_numpy()))
    table = table.take(pa.array(order))
    if as_arrow:
        return table
    frame = table.to_pandas()
    frame.index = pd.MultiIndex.from_arrays(
        [pd.to_datetime(frame.pop("ts").to_numpy(), unit="ns"), frame.pop("symbol")], names=["datetime", "symbol"])
    return frame
