"""OHLCV down-sampling against pandas resample, and the timeframe choice under the caps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from dashboard_helpers import minute_bars
from pyplatform.dashboard.data import to_ts_frame
from pyplatform.plots.downsample import (
    LADDER, aggregate_ohlcv, bucket_keys, choose_timeframe, estimate_count, timeframe,
)

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


@pytest.fixture(scope="module")
def bars():
    return to_ts_frame(minute_bars(["AAA.US"], days=30, seed=3), "AAA.US")


def _pandas(bars: pd.DataFrame, rule: str, **kw) -> pd.DataFrame:
    f = bars.set_index(pd.to_datetime(bars["ts"].to_numpy(np.int64)))
    out = f.resample(rule, label="left", closed="left", **kw).agg(AGG).dropna()
    return out


@pytest.mark.parametrize("tf, rule, kw", [
    ("5m", "5min", {"offset": "30min"}), ("1h", "1h", {"offset": "30min"}), ("4h", "4h", {"offset": "30min"}),
    ("1d", "1D", {}), ("1w", "W-MON", {}), ("1M", "MS", {}),
])
def test_aggregate_matches_pandas_resample(bars, tf, rule, kw):
    ours = aggregate_ohlcv(bars, tf)
    ref = _pandas(bars, rule, **kw)
    if tf == "4h":  # a 14:30 session open puts pandas' 4h grid (anchored at midnight + 30min) elsewhere
        ref = bars.assign(k=bucket_keys(bars["ts"].to_numpy(), tf)[0]).groupby("k").agg(AGG)
        ref.index = pd.to_datetime(ref.index.to_numpy())
    np.testing.assert_allclose(ours[["open", "high", "low", "close", "volume"]].to_numpy(), ref.to_numpy())
    np.testing.assert_array_equal(ours["ts"].to_numpy(), ref.index.to_numpy().astype("datetime64[ns]").astype(np.int64))


def test_intraday_buckets_start_at_the_session_open(bars):
    out = aggregate_ohlcv(bars, "1h")
    first = pd.Timestamp(int(out["ts"].iloc[0]))
    assert (first.hour, first.minute) == (14, 30)
    assert len(out) == 30 * 7  # 390 minutes -> 6 full hours and one half hour per session


def test_vwap_is_volume_weighted(bars):
    out = aggregate_ohlcv(bars, "1d")
    day = bars[bars["ts"] < int(out["ts"].iloc[1])]
    assert out["vwap"].iloc[0] == pytest.approx((day["vwap"] * day["volume"]).sum() / day["volume"].sum())


def test_bad_input_is_named(bars):
    with pytest.raises(ValueError, match="row 5 goes back in time"):
        aggregate_ohlcv(bars.iloc[[0, 1, 2, 3, 4, 0]].reset_index(drop=True), "1h")
    with pytest.raises(ValueError, match="missing column"):
        aggregate_ohlcv(bars.drop(columns=["low"]), "1h")
    with pytest.raises(ValueError, match="unknown timeframe '2h'"):
        timeframe("2h")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 20 * 365 * 86_400), min_size=1, max_size=300), st.sampled_from(["1d", "1w", "1M"]))
def test_calendar_buckets_match_pandas_groupers(seconds, tf):
    ts = np.sort(np.asarray(seconds, dtype=np.int64)) * 1_000_000_000 + 1_388_534_400_000_000_000  # from 2014
    rng = np.random.default_rng(len(seconds))
    px = rng.uniform(1, 2, len(ts))
    bars = pd.DataFrame({"ts": ts, "open": px, "high": px + 1, "low": px - 1, "close": px, "volume": rng.uniform(0, 5, len(ts))})
    ours = aggregate_ohlcv(bars, tf)
    dt = pd.to_datetime(ts)
    period = {"1d": "D", "1w": "W-SUN", "1M": "M"}[tf]  # W-SUN periods run Monday..Sunday
    ref = bars.groupby(dt.to_period(period)).agg(AGG)
    np.testing.assert_allclose(ours[["open", "high", "low", "close", "volume"]].to_numpy(), ref.to_numpy())
    starts = ref.index.to_timestamp(how="start").to_numpy().astype("datetime64[ns]").astype(np.int64)
    np.testing.assert_array_equal(ours["ts"].to_numpy(), starts)


def test_estimate_count_is_exact_on_regular_sessions(bars):
    daily = aggregate_ohlcv(bars, "1d")["ts"].to_numpy()
    for tf in LADDER:
        assert estimate_count(daily, tf, 390) == len(aggregate_ohlcv(bars, tf)), tf.name


def test_choose_timeframe_never_finer_than_asked_and_within_cap(bars):
    daily = aggregate_ohlcv(bars, "1d")["ts"].to_numpy()
    assert choose_timeframe("1m", daily, 390, cap=20_000).name == "1m"
    tf = choose_timeframe("1m", daily, 390, cap=3000)
    assert tf.name == "5m" and estimate_count(daily, tf, 390) <= 3000  # 30 x 78 = 2340; 1m would be 11700
    assert choose_timeframe("1h", daily, 390, cap=3000).name == "1h"
    assert choose_timeframe("1w", daily, 390, cap=3000).name == "1w"
    # the source-row budget sends wide windows to daily bars even when the cap would allow 1h
    assert choose_timeframe("1m", daily, 390, cap=3000, max_source_rows=1000).name == "1d"


def test_daily_candles_over_a_decade_stay_daily():
    """3,100 daily bars (more than the 3,000-candle intraday budget) are still drawn as days."""
    from pyplatform.dashboard.data import FrameBarSource, market_view

    days = pd.bdate_range("2012-01-02", periods=3100)
    idx = pd.MultiIndex.from_arrays([days, np.full(len(days), "AAA.US", dtype=object)], names=["datetime", "symbol"])
    close = 100 + np.arange(len(days)) * 0.01
    daily = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": np.ones(len(days))}, index=idx)
    minutes = daily.iloc[-2:].copy()
    v = market_view(FrameBarSource(minutes, daily), "AAA.US", "1d", cap=3000)
    assert v.shown.name == "1d" and len(v.bars) == 3100
    # an intraday request over the same decade is still capped
    v = market_view(FrameBarSource(minutes, daily), "AAA.US", "1h", cap=3000)
    assert len(v.bars) <= 3100 and v.shown.name != "1h"


def test_warmup_bars_precede_the_window():
    from pyplatform.dashboard.data import FrameBarSource, market_view, warmup_bars

    days = pd.bdate_range("2020-01-01", periods=200)
    idx = pd.MultiIndex.from_arrays([days, np.full(len(days), "AAA.US", dtype=object)], names=["datetime", "symbol"])
    close = 100 + np.arange(len(days), dtype=float)
    daily = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx)
    src = FrameBarSource(daily.iloc[-1:], daily)
    start = int(days[100].value)
    v = market_view(src, "AAA.US", "1d", start, int(days[150].value))
    w = warmup_bars(src, "AAA.US", v, 14)
    # exactly the 14 daily bars before the window (days 86..99, closes 186..199), in order
    assert w["close"].tolist() == [100.0 + i for i in range(86, 100)]
