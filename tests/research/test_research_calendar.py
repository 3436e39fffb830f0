"""Calendar-aware evaluation: own-calendar forward returns, name floors, quantiles as qcut,
quantile returns named and computed as alphalens computes them (issue 20, items 1 and 8)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from pyplatform.research import evaluation as ev


@pytest.fixture(scope="module")
def mixed():
    """Six stocks on weekdays and six crypto pairs every day, on one wide grid."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=70, freq="D")  # 2024-01-01 is a Monday
    stocks = [f"S{i}.US" for i in range(6)]
    crypto = [f"C{i}USDT.BA" for i in range(6)]
    px = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(days), 12)), axis=0)),
                      index=days, columns=stocks + crypto)
    px.loc[px.index.dayofweek >= 5, stocks] = np.nan  # stocks do not trade at weekends
    return px, stocks, crypto


def test_friday_return_is_friday_to_monday(mixed):
    px, stocks, _ = mixed
    fwd = ev.forward_returns(px, (1, 5))
    fri, mon, next_fri = pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-08"), pd.Timestamp("2024-01-12")
    s = stocks[0]
    assert fwd.loc[(fri, s), "1p"] == pytest.approx(px.loc[mon, s] / px.loc[fri, s] - 1, rel=1e-13)
    # 5p is five of the stock's own sessions: Friday to the next Friday
    assert fwd.loc[(fri, s), "5p"] == pytest.approx(px.loc[next_fri, s] / px.loc[fri, s] - 1, rel=1e-13)
    # no stock row exists on a Saturday (nothing carried forward onto it)
    assert (pd.Timestamp("2024-01-06"), s) not in fwd.index
    # the grid convention (alphalens') reproduces the bug the issue found: Friday's 1p is 0
    grid = ev.forward_returns(px, (1,), calendar="grid")
    fridays = grid.index.get_level_values(0).dayofweek == 4
    is_stock = grid.index.get_level_values(1).isin(stocks)
    assert (grid["1p"][fridays & is_stock].dropna() == 0).all()
    assert (fwd["1p"][(fwd.index.get_level_values(0).dayofweek == 4)
                      & fwd.index.get_level_values(1).isin(stocks)].dropna() != 0).all()


def test_weekend_dates_fall_below_the_name_floor(mixed):
    px, stocks, crypto = mixed
    rng = np.random.default_rng(5)
    f = px.stack().rename("f")
    f.index.names = ["datetime", "symbol"]
    f = f + rng.normal(0, 1, len(f))
    res = ev.evaluate(f, px, horizons=(1,), min_names=7)
    days = res.ic.index
    assert (days.dayofweek < 5).all() and len(days) > 30  # weekends have 6 crypto names only
    assert res.window["min_names"] == 7 and res.window["n_dates"] == len(days)
    assert res.window["calendar"] == "own"
    res6 = ev.evaluate(f, px, horizons=(1,), min_names=6)
    assert (res6.ic.index.dayofweek >= 5).any()
    with pytest.raises(ValueError, match="at least 50 names"):
        ev.evaluate(f, px, horizons=(1,), min_names=50)


def test_quantize_equals_qcut_on_every_date():
    rng = np.random.default_rng(11)
    rows = []
    for d, n in enumerate(rng.integers(5, 60, size=200)):
        vals = rng.normal(size=n)
        if d % 17 == 0:
            vals = np.round(vals, 0)  # heavy ties: qcut drops duplicate edges here
        for j, v in enumerate(vals):
            rows.append((pd.Timestamp("2020-01-01") + pd.Timedelta(days=d), f"X{j}", v))
    f = pd.DataFrame(rows, columns=["datetime", "symbol", "v"]).set_index(["datetime", "symbol"])["v"]
    ours = ev.quantize(f, 5)
    oracle = f.groupby(level=0, group_keys=False).transform(
        lambda x: pd.qcut(x, 5, labels=False, duplicates="drop") + 1)
    np.testing.assert_array_equal(ours.to_numpy(), oracle.loc[ours.index].to_numpy())
    for q in (3, 10):
        o = f.groupby(level=0, group_keys=False).transform(
            lambda x, q=q: pd.qcut(x, q, labels=False, duplicates="drop") + 1)
        np.testing.assert_array_equal(ev.quantize(f, q).to_numpy(), o.loc[f.index].to_numpy())


def test_quantile_returns_average_per_date_like_alphalens():
    al_utils = pytest.importorskip("alphalens.utils")
    al_perf = pytest.importorskip("alphalens.performance")
    rng = np.random.default_rng(2)
    dates = pd.bdate_range("2022-01-03", periods=80, tz="UTC")
    syms = [f"S{i:02d}.US" for i in range(40)]
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, (80, 40)), axis=0)), index=dates, columns=syms)
    fut = prices.pct_change().shift(-1)
    f = (fut + rng.normal(0, 0.02, fut.shape)).stack(future_stack=True).dropna()
    # uneven names per date: a different share of the universe is missing on each date
    keep = rng.random(len(f)) < np.repeat(rng.uniform(0.3, 1.0, 80), 40)[: len(f)]
    f = f[keep]
    f.index.names = ["date", "asset"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        al = al_utils.get_clean_factor_and_forward_returns(f, prices, quantiles=5, periods=(1,), max_loss=1.0)
    theirs, _ = al_perf.mean_return_by_quantile(al, demeaned=True)
    f.index.names = ["datetime", "symbol"]
    data = ev.clean_factor(f, ev.forward_returns(prices, (1,)))
    ours = ev.quantile_returns(data, 5)
    np.testing.assert_allclose(ours["1p"].to_numpy(), theirs["1D"].to_numpy(), atol=1e-13)
    # pooled means weigh big dates more: a different number on uneven data, computed by hand
    pooled = ev.pooled_quantile_returns(data, 5)
    demeaned = data["1p"] - data["1p"].groupby(level=0).transform("mean")
    q = al["factor_quantile"].to_numpy()
    hand = pd.Series(demeaned.loc[al.index.rename(["datetime", "symbol"])].to_numpy()).groupby(q).mean()
    np.testing.assert_allclose(pooled["1p"].to_numpy(), hand.to_numpy(), atol=1e-13)
    assert np.abs(pooled["1p"].to_numpy() - ours["1p"].to_numpy()).max() > 1e-6
