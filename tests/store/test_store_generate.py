"""The synthetic market: universes, bars and ticks on their calendars, and generate_market."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pyplatform.calendars import calendar_for
from pyplatform.data import generate_bars, generate_market, generate_ticks, make_universe
from pyplatform.domain.instruments import PRICE_DECIMALS, AssetClass, asset_class_of
from pyplatform.store import EmbeddedStore


def test_universe_symbols_look_real_and_are_deterministic():
    uni = make_universe(40, seed=3, indices=2)
    assert make_universe(40, seed=3, indices=2) == uni
    assert make_universe(40, seed=4) != make_universe(40, seed=3)
    syms = [i.symbol for i in uni]
    assert len(set(syms)) == 42
    classes = {c: [i for i in uni if i.asset_class is c] for c in AssetClass}
    assert len(classes[AssetClass.STOCK]) == 28 and len(classes[AssetClass.FOREX]) == 6
    assert len(classes[AssetClass.CRYPTO]) == 6 and len(classes[AssetClass.INDEX]) == 2
    assert all(re.fullmatch(r"[A-Z]{3,4}\.US", i.symbol) for i in classes[AssetClass.STOCK])
    assert classes[AssetClass.FOREX][0].symbol == "EURUSD.GB"
    assert classes[AssetClass.CRYPTO][0].symbol == "BTCUSDT.BA"
    assert len({i.sector for i in classes[AssetClass.STOCK]}) == 8


@pytest.fixture(scope="module")
def week():
    return generate_bars(["AAA.US", "BBB.US", "EURUSD.GB", "BTCUSDT.BA"], "2024-03-04", "2024-03-11", seed=1)


def test_bars_are_deterministic(week):
    again = generate_bars(["AAA.US", "BBB.US", "EURUSD.GB", "BTCUSDT.BA"], "2024-03-04", "2024-03-11", seed=1)
    pd.testing.assert_frame_equal(week, again)
    other = generate_bars(["AAA.US"], "2024-03-04", "2024-03-11", seed=2)
    assert not np.array_equal(other["close"].to_numpy(), week.xs("AAA.US", level="symbol")["close"].to_numpy())


def test_bars_follow_each_calendar(week):
    for sym, per_day in [("AAA.US", 390), ("EURUSD.GB", 1440), ("BTCUSDT.BA", 1440)]:
        ts = week.xs(sym, level="symbol").index.asi8
        assert calendar_for(sym).is_open(ts).all()
        days = 5 if sym != "BTCUSDT.BA" else 7
        assert len(ts) == days * per_day
    assert week.index.is_monotonic_increasing


def test_bars_are_well_formed(week):
    assert (week["high"] >= week[["open", "close"]].max(axis=1)).all()
    assert (week["low"] <= week[["open", "close"]].min(axis=1)).all()
    assert (week["low"] > 0).all() and (week["volume"] > 0).all() and (week["trades"] >= 1).all()
    assert ((week["vwap"] >= week["low"] - 1e-9) & (week["vwap"] <= week["high"] + 1e-9)).all()
    a = week.xs("AAA.US", level="symbol")
    np.testing.assert_allclose(a["close"] * 100, np.rint(a["close"] * 100), atol=1e-6)  # 2 decimals
    e = week.xs("EURUSD.GB", level="symbol")
    np.testing.assert_allclose(e["close"] * 1e5, np.rint(e["close"] * 1e5), atol=1e-4)
    # a continuous market opens each bar at the previous close
    np.testing.assert_array_equal(e["open"].to_numpy()[1:], e["close"].to_numpy()[:-1])


def test_stock_volume_is_u_shaped(week):
    a = week.xs("AAA.US", level="symbol")["volume"]
    minute = (a.index - a.index.normalize()).total_seconds() // 60
    edge = a[(minute < 13 * 60 + 60) | (minute >= 19 * 60 + 30)].mean()  # first hour, last half hour (EST)
    middle = a[(minute >= 16 * 60) & (minute < 18 * 60)].mean()
    assert edge > 1.5 * middle


def test_sectors_are_correlated():
    uni = make_universe(24, seed=5, mix=(1.0, 0.0, 0.0))
    bars = generate_bars(uni, "2024-03-04", "2024-03-09", seed=5)
    rets = np.log(bars["close"]).unstack("symbol").diff().dropna()
    corr = rets.corr().to_numpy()
    sector = np.array([i.sector for i in uni])[np.argsort([i.symbol for i in uni])]
    same = sector[:, None] == sector[None, :]
    off = ~np.eye(len(sector), dtype=bool)
    assert corr[same & off].mean() > corr[~same].mean() + 0.1
    assert corr[~same].mean() > 0.1  # the market factor


def test_daily_bars_aggregate_the_minutes():
    syms = ["AAA.US", "BTCUSDT.BA"]
    minute = generate_bars(syms, "2024-03-04", "2024-03-07", seed=9)
    daily = generate_bars(syms, "2024-03-04", "2024-03-07", freq="1D", seed=9)
    flat = minute.reset_index()
    flat["day"] = flat["datetime"].dt.normalize()  # NYSE and crypto sessions fall on UTC dates
    g = flat.groupby(["day", "symbol"])
    np.testing.assert_allclose(daily["open"].to_numpy(), g["open"].first().to_numpy())
    np.testing.assert_allclose(daily["high"].to_numpy(), g["high"].max().to_numpy())
    np.testing.assert_allclose(daily["close"].to_numpy(), g["close"].last().to_numpy())
    np.testing.assert_allclose(daily["volume"].to_numpy(), g["volume"].sum().to_numpy())
    np.testing.assert_array_equal(daily["trades"].to_numpy(), g["trades"].sum().to_numpy())


def test_ticks_are_keyed_quoted_and_inside_sessions():
    t = generate_ticks(["AAA.US", "EURUSD.GB", "BTCUSDT.BA"], "2024-03-08 20:00", "2024-03-09 02:00", seed=4, rate=2.0)
    again = generate_ticks(["AAA.US", "EURUSD.GB", "BTCUSDT.BA"], "2024-03-08 20:00", "2024-03-09 02:00", seed=4, rate=2.0)
    pd.testing.assert_frame_equal(t, again)
    assert not t.index.duplicated().any() and t.index.is_monotonic_increasing
    for sym in ["AAA.US", "EURUSD.GB", "BTCUSDT.BA"]:
        x = t.xs(sym, level="symbol")
        assert calendar_for(sym).is_open(x.index.asi8).all()
        assert (x["bid"] < x["ask"]).all()
        assert ((x["price"] == x["ask"]) == (x["side"] == 1)).all()
        assert ((x["price"] == x["bid"]) == (x["side"] == -1)).all()
    # NYSE closes 21:00 UTC on a winter Friday; forex 22:00; crypto trades all night
    stock = t.xs("AAA.US", level="symbol").index
    assert stock.max() < pd.Timestamp("2024-03-08 21:00") and len(stock) > 3000
    assert t.xs("EURUSD.GB", level="symbol").index.max() < pd.Timestamp("2024-03-08 22:00")
    assert t.xs("BTCUSDT.BA", level="symbol").index.max() > pd.Timestamp("2024-03-09 01:50")
    arrow = generate_ticks(["AAA.US"], "2024-03-08 20:00", "2024-03-08 20:10", seed=4, as_arrow=True)
    assert arrow.schema.names == ["ts", "symbol", "price", "volume", "side", "bid", "ask"]


def test_generate_market_writes_bars_daily_bars_ticks_and_instruments(tmp_path):
    store = EmbeddedStore(tmp_path / "history", fsync=False)
    s = generate_market(store=store, n_symbols=6, start="2024-02-20", end="2024-03-12", tick_days=1, seed=2,
                        progress=False, tick_rate=0.2)
    assert s.rows["bars_1m"] == len(store.read("bars_1m")) > 0
    assert set(store.instruments()["symbol"]) == set(store.symbols("bars_1m"))
    assert len(store.symbols("ticks")) == 6
    ticks = store.read("ticks")
    assert ticks.index.get_level_values("datetime").min() >= pd.Timestamp("2024-03-11")
    # one file per partition: the forex sessions that open on the previous month's last
    # evening were held back and written with that month
    man = store.manifest("bars_1m")
    assert all(len(files) == 1 for files in man.partitions.values())
    assert not man.garbage
    # the daily bars are the minute bars per session; crypto sessions are UTC days so the
    # store's own 1D resample must agree with them
    btc = [x for x in store.symbols("bars_1m") if x.endswith(".BA")][0]
    daily = store.read("bars_1d", symbols=[btc])
    resampled = store.resample("bars_1m", "1D", symbols=[btc])
    np.testing.assert_allclose(daily[["open", "high", "low", "close", "volume"]].to_numpy(),
                               resampled[["open", "high", "low", "close", "volume"]].to_numpy())
    # prices at each asset class's precision at most
    for sym in store.symbols("bars_1m"):
        dec = PRICE_DECIMALS[asset_class_of(sym)]
        c = store.read("bars_1m", symbols=[sym], columns=["close"])["close"].to_numpy()
        np.testing.assert_allclose(c * 10**dec, np.rint(c * 10**dec), atol=1e-3)
    # same seed, same market
    other = EmbeddedStore(tmp_path / "again", fsync=False)
    generate_market(store=other, n_symbols=6, start="2024-02-20", end="2024-03-12", tick_days=0, seed=2,
                    progress=False)
    pd.testing.assert_frame_equal(other.read("bars_1m"), store.read("bars_1m"))
