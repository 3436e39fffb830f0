"""Event-driven backtest: parity with the vectorised path, latency, slippage, fees, volume limits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pyplatform.backtest import BacktestConfig, FeeSchedule, SlippageConfig, run_backtest
from pyplatform.backtest.vectorized import dual_ma_positions, dual_ma_returns
from pyplatform.data import generate_bars

MA = {"kind": "ma_cross", "params": {"fast": 5, "slow": 20}}


@pytest.fixture(scope="module")
def minute_bars():
    return generate_bars(["AAPL.US", "BTCUSDT.BA"], "2024-01-02", "2024-01-04", freq="1min", seed=3)


def one(bars, sym):
    return bars.xs(sym, level="symbol", drop_level=False)


@pytest.mark.parametrize("sym", ["AAPL.US", "BTCUSDT.BA"])
def test_frictionless_equals_vectorised(minute_bars, sym):
    b = one(minute_bars, sym)
    r = run_backtest(MA, bars=b, backtest=BacktestConfig.frictionless(freq="1min"))
    o, c = b["open"].to_numpy(), b["close"].to_numpy()
    expected = dual_ma_returns(o, c, 5, 20)
    got = r.returns.to_numpy()
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # same trades: every change of the vectorised position is one fill at the next bar's open
    pos = dual_ma_positions(c, 5, 20)
    changes = np.flatnonzero(np.diff(pos.astype(int)) != 0) + 1  # bar whose close decided
    fills = r.trades
    n = min(len(changes), len(fills))
    assert len(fills) in (len(changes), len(changes) - 1)  # a decision on the very last bar cannot fill
    np.testing.assert_array_equal(fills["price"].to_numpy()[:n], o[changes[:n] + 1])
    np.testing.assert_array_equal(fills["side"].to_numpy()[:n], np.where(pos[changes[:n]] > 0, 1, -1))
    assert math.isclose(r.metrics["total_return"], float(np.prod(1 + expected) - 1), abs_tol=1e-9)


def _first_signal(r, b):
    """Index (in b) of the bar whose close triggered the first order, and that order's side."""
    sig_ts = int(r.orders["client_order_id"].iloc[0].rsplit("-", 1)[1])
    ts = b.index.get_level_values("datetime").to_numpy().astype("datetime64[ns]").astype(np.int64)
    return int(np.searchsorted(ts, sig_ts)), int(r.orders["side"].iloc[0])


@pytest.mark.parametrize("latency_ms, tick", [(0.0, 0), (75.0, 0), (20_000.0, 1), (35_000.0, 2)])
def test_latency_moves_the_fill_along_the_next_bar(minute_bars, latency_ms, tick):
    b = one(minute_bars, "AAPL.US")
    r = run_backtest(MA, bars=b, backtest=BacktestConfig.frictionless(freq="1min", latency_ms=latency_ms,
                                                                       audit_timestamps=0))
    t, _ = _first_signal(r, b)
    nxt = b.iloc[t + 1]
    up = nxt["close"] >= nxt["open"]
    # the bar replayed as open (0), first extreme (1/4), other extreme (1/2), close (3/4)
    path = [nxt["open"], nxt["low"] if up else nxt["high"], nxt["high"] if up else nxt["low"], nxt["close"]]
    first = r.trades.iloc[0]
    assert first["price"] == path[tick]
    bar_start = b.index.get_level_values("datetime")[t + 1].value
    assert first["ts"] == bar_start + int(latency_ms * 1e6)
    assert first["price"] != b.iloc[t]["close"] or path[tick] == b.iloc[t]["close"]


def hand_bars(closes_by_day, symbol="AAPL.US"):
    """1-minute bars from 14:30 UTC, one list of closes per session (open = previous close + 0.05)."""
    rows = []
    for d, closes in enumerate(closes_by_day):
        t0 = pd.Timestamp("2024-01-02 14:30") + pd.Timedelta(days=d)
        for i, c in enumerate(closes):
            o = round((closes[i - 1] if i else c) + 0.05, 2)
            rows.append((t0 + pd.Timedelta(minutes=i), symbol, o, max(o, c) + 0.1, min(o, c) - 0.1, c, 1e6))
    df = pd.DataFrame(rows, columns=["datetime", "symbol", "open", "high", "low", "close", "volume"])
    return df.set_index(["datetime", "symbol"])


def test_order_after_the_close_waits_for_the_next_session():
    # a golden cross (fast 2 / slow 3) on the session's last bar: the market is closed when the
    # order arrives, so it fills at the next session's open -- never at that bar's close
    b = hand_bars([[10, 9.9, 9.8, 9.7, 9.6, 9.5, 9.4, 9.3, 9.2, 11.0], [11.4, 11.6, 11.8, 12.0]])
    r = run_backtest({"kind": "ma_cross", "params": {"fast": 2, "slow": 3}}, bars=b,
                     backtest=BacktestConfig.frictionless(freq="1min", latency_ms=75))
    assert list(r.signals["direction"]) == [1]
    assert r.signals["ts"].iloc[0] == pd.Timestamp("2024-01-02 14:39").value
    f = r.trades.iloc[0]
    assert f["ts"] == pd.Timestamp("2024-01-03 14:30").value
    assert f["price"] == pytest.approx(11.45)  # day 2 opens at 11.45; the triggering close was 11.0
    assert f["side"] == 1


@pytest.mark.parametrize("bps", [5.0, 25.0])
def test_fixed_slippage_against_the_trader(minute_bars, bps):
    b = one(minute_bars, "AAPL.US")
    base = run_backtest(MA, bars=b, backtest=BacktestConfig.frictionless(freq="1min"))
    slipped = run_backtest(MA, bars=b, backtest=BacktestConfig.frictionless(
        freq="1min", slippage=SlippageConfig(kind="fixed", bps=bps)))
    assert len(base.trades) and len(slipped.trades) == len(base.trades)
    for (_, f0), (_, f1) in zip(base.trades.iterrows(), slipped.trades.iterrows()):
        raw = f0["price"] * (1 + f0["side"] * bps * 1e-4)
        # rounded to the cent against the trader: up for buys, down for sells
        want = math.ceil(raw * 100 - 1e-9) / 100 if f0["side"] > 0 else math.floor(raw * 100 + 1e-9) / 100
        assert f1["price"] == pytest.approx(want, abs=1e-9)
    assert slipped.metrics["total_return"] < base.metrics["total_return"]


def test_fees_per_asset_class_and_the_equity_identity(minute_bars):
    fees = {"stock": FeeSchedule(per_unit=0.01, minimum=2.0), "crypto": FeeSchedule(bps=10.0)}
    r = run_backtest(MA, bars=minute_bars, backtest=BacktestConfig(freq="1min", fees=fees, latency_ms=50,
                                                                    participation=None, vwap_slicing=False))
    f = r.trades
    assert set(f["symbol"]) == {"AAPL.US", "BTCUSDT.BA"}
    stock, crypto = f[f["symbol"] == "AAPL.US"], f[f["symbol"] == "BTCUSDT.BA"]
    np.testing.assert_allclose(stock["fee"], np.maximum(2.0, 0.01 * stock["quantity"]))
    np.testing.assert_allclose(crypto["fee"], 10e-4 * crypto["quantity"] * crypto["price"])
    # equity = capital - cash paid for fills - fees + positions at the last close (independent sum)
    last_close = minute_bars.groupby(level="symbol")["close"].last()
    pos = (f["side"] * f["quantity"]).groupby(f["symbol"]).sum()
    cash = 1_000_000 - (f["side"] * f["quantity"] * f["price"]).sum() - f["fee"].sum()
    want = cash + (pos * last_close.reindex(pos.index)).sum()
    assert r.equity.iloc[-1] == pytest.approx(want, rel=1e-12)
    assert r.metrics["fees"] == pytest.approx(f["fee"].sum())


def test_volume_participation_caps_fills_per_bar(minute_bars):
    b = one(minute_bars, "AAPL.US")
    cfg = BacktestConfig(freq="1min", participation=0.05, vwap_slicing=False, latency_ms=50, fees={},
                         slippage=SlippageConfig(kind="none"))
    r = run_backtest(MA, bars=b, capital=5_000_000, backtest=cfg)
    f = r.trades
    bar = (f["ts"] // 60_000_000_000) * 60_000_000_000
    vol = b["volume"].droplevel("symbol")
    per_bar = f.groupby([bar, f["side"]])["quantity"].sum()  # each side of the book offers its share
    cap = 0.05 * vol.reindex(pd.to_datetime(per_bar.index.get_level_values(0))).to_numpy()
    assert (per_bar.to_numpy() <= cap + 1e-9).all()
    assert (f["quantity"] == np.floor(f["quantity"])).all()  # whole shares
    assert (f.groupby("client_order_id").size() > 1).any()  # some orders needed several bars


def test_large_orders_are_sliced_by_vwap(minute_bars):
    b = one(minute_bars, "AAPL.US")
    r = run_backtest(MA, bars=b, capital=20_000_000, backtest=BacktestConfig(freq="1min", participation=0.1,
                                                                             vwap_slicing=True))
    kids = r.orders[r.orders["parent_id"].notna()]
    assert len(kids) > 0
    groups = list(kids.groupby("parent_id", sort=False))
    # a new signal on the symbol drops the rest of a schedule, so some parents have one child
    assert max(len(g) for _, g in groups) > 2
    for parent, g in groups:
        if len(g) < 2:
            continue
        assert np.diff(g["ts"].to_numpy()).min() >= 60_000_000_000  # one child per minute bucket
        assert (g["client_order_id"] == [f"{parent}.{i}" for i in range(1, len(g) + 1)]).all()
