"""History-store contract: the same assertions for every backend (oracle: pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

T0 = pd.Timestamp("2024-03-04 09:30:00")
SYMS = ["AAPL.US", "EURUSD.GB"]


def _bars(n: int = 30, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k, s in enumerate(SYMS):
        close = 100 + k * 10 + np.cumsum(rng.normal(0, 0.1, n)).round(2)
        ts = T0 + pd.to_timedelta(np.arange(n), unit="min")
        rows.append(pd.DataFrame({"ts": ts, "symbol": s, "open": close, "high": close + 0.05,
                                  "low": close - 0.05, "close": close, "volume": rng.integers(1, 100, n) * 1.0,
                                  "vwap": close, "trades": rng.integers(1, 9, n)}))
    return pd.concat(rows, ignore_index=True)


def test_write_then_read_returns_the_rows_indexed_by_time_and_symbol(backend):
    bars = _bars()
    assert backend.store.write("bars_1m", bars) == len(bars)
    got = backend.store.read("bars_1m")
    assert list(got.index.names) == ["datetime", "symbol"]
    expect = bars.rename(columns={"ts": "datetime"}).set_index(["datetime", "symbol"]).sort_index(level=[0, 1])
    assert [str(s) for s in got.index.get_level_values("symbol")] == list(expect.index.get_level_values("symbol"))
    assert (got.index.get_level_values("datetime") == expect.index.get_level_values("datetime")).all()
    for c in ("open", "close", "volume", "vwap"):
        np.testing.assert_allclose(got[c].to_numpy(), expect[c].to_numpy())
    assert got["trades"].astype("int64").tolist() == expect["trades"].tolist()


def test_range_is_half_open_and_symbols_filter(backend):
    backend.store.write("bars_1m", _bars())
    got = backend.store.read("bars_1m", symbols=["EURUSD.GB"], start=T0 + pd.Timedelta("5min"),
                             end=T0 + pd.Timedelta("10min"), columns=["close"])
    times = got.index.get_level_values("datetime")
    assert times.min() == T0 + pd.Timedelta("5min") and times.max() == T0 + pd.Timedelta("9min")
    assert set(map(str, got.index.get_level_values("symbol"))) == {"EURUSD.GB"} and list(got.columns) == ["close"]


def test_rewriting_a_key_replaces_the_row(backend):
    bars = _bars(5)
    backend.store.write("bars_1m", bars)
    again = bars.iloc[[0]].copy()
    again["close"] = 999.0
    backend.store.write("bars_1m", again)
    got = backend.store.read("bars_1m", symbols=[bars.symbol[0]])
    assert len(got) == 5 and got["close"].iloc[0] == 999.0


def test_cross_section_at_gives_each_symbols_last_row(backend):
    bars = _bars()
    backend.store.write("bars_1m", bars)
    at = T0 + pd.Timedelta("12min") + pd.Timedelta("30s")
    got = backend.store.cross_section("bars_1m", at=at, columns=["close"])
    oracle = bars[bars.ts <= at].sort_values("ts").groupby("symbol").last()
    assert sorted(map(str, got.index.get_level_values("symbol"))) == SYMS
    for (dt, sym), row in got.iterrows():
        assert dt == oracle.loc[str(sym), "ts"] and row["close"] == pytest.approx(oracle.loc[str(sym), "close"])


def test_resample_matches_pandas(backend):
    bars = _bars()
    backend.store.write("bars_1m", bars)
    got = backend.store.resample("bars_1m", "5min")
    for sym in SYMS:
        b = bars[bars.symbol == sym].set_index("ts")
        r = b.resample("5min", origin="epoch")
        oracle = pd.DataFrame({"open": r.open.first(), "high": r.high.max(), "low": r.low.min(),
                               "close": r.close.last(), "volume": r.volume.sum(), "trades": r.trades.sum()})
        mine = got.xs(sym, level="symbol")
        np.testing.assert_allclose(mine[["open", "high", "low", "close", "volume"]].to_numpy(),
                                   oracle[["open", "high", "low", "close", "volume"]].to_numpy())
        assert mine["trades"].astype("int64").tolist() == oracle["trades"].tolist()
        vw = (b.vwap * b.volume).resample("5min", origin="epoch").sum() / r.volume.sum()
        np.testing.assert_allclose(mine["vwap"].to_numpy(), vw.to_numpy())


def test_asof_join_matches_pandas_merge_asof(backend):
    bars = _bars()
    backend.store.write("bars_1m", bars)
    left = pd.DataFrame({"ts": [T0 + pd.Timedelta("90s"), T0 - pd.Timedelta("1min"), T0 + pd.Timedelta("10min")],
                         "symbol": ["AAPL.US", "AAPL.US", "EURUSD.GB"], "qty": [1, 2, 3]})
    got = backend.store.asof_join(left, "bars_1m", columns=["close"])
    oracle = pd.merge_asof(left.reset_index().sort_values("ts"), bars.sort_values("ts")[["ts", "symbol", "close"]],
                           on="ts", by="symbol").sort_values("index")
    np.testing.assert_allclose(got["close"].to_numpy(), oracle["close"].to_numpy())  # NaN where none before
    assert got["qty"].tolist() == [1, 2, 3]
