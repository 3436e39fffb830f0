"""Factor evaluation agrees with alphalens-reloaded on the same inputs."""

import warnings

import numpy as np
import pandas as pd
import pytest

from pyplatform.research import evaluation as ev

al_utils = pytest.importorskip("alphalens.utils")
al_perf = pytest.importorskip("alphalens.performance")


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2021-01-04", periods=120, tz="UTC")
    syms = [f"S{i:02d}.US" for i in range(30)]
    rets = rng.normal(0, 0.02, (len(dates), len(syms)))
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rets, axis=0)), index=dates, columns=syms)
    # a factor with real predictive power: tomorrow's return plus noise
    fut = prices.pct_change().shift(-1)
    f = (fut + rng.normal(0, 0.02, fut.shape)).stack(future_stack=True).dropna()
    f.index.names = ["date", "asset"]
    return prices, f


@pytest.fixture(scope="module")
def alphalens_data(market):
    prices, f = market
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return al_utils.get_clean_factor_and_forward_returns(
            f, prices, quantiles=5, periods=(1, 5), max_loss=1.0)


def test_forward_returns_match(market, alphalens_data):
    prices, f = market
    ours = ev.forward_returns(prices, (1, 5))
    theirs = alphalens_data[["1D", "5D"]]
    joined = theirs.join(ours.rename_axis(["date", "asset"]), how="inner")
    assert len(joined) == len(theirs)
    np.testing.assert_allclose(joined["1D"], joined["1p"], rtol=1e-12)
    np.testing.assert_allclose(joined["5D"], joined["5p"], rtol=1e-12)


def test_rank_ic_matches_alphalens(market, alphalens_data):
    prices, f = market
    data = ev.clean_factor(f, ev.forward_returns(prices, (1, 5)))
    ours = ev.rank_ic(data)
    theirs = al_perf.factor_information_coefficient(alphalens_data)
    theirs.index = theirs.index.rename("datetime")
    a = ours.loc[theirs.index]
    np.testing.assert_allclose(a["1p"], theirs["1D"], atol=1e-10)
    np.testing.assert_allclose(a["5p"], theirs["5D"], atol=1e-10)
    # the factor was built to predict 1-period returns
    assert ours["1p"].mean() > 0.3


def test_quantile_returns_match_alphalens(market, alphalens_data):
    prices, f = market
    data = ev.clean_factor(f, ev.forward_returns(prices, (1, 5)))
    ours = ev.quantile_returns(data, 5)
    theirs, _ = al_perf.mean_return_by_quantile(alphalens_data, demeaned=True)
    np.testing.assert_allclose(ours["1p"].to_numpy(), theirs["1D"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(ours["5p"].to_numpy(), theirs["5D"].to_numpy(), atol=1e-12)
    q = ev.quantize(data["factor"], 5)
    theirs_q = alphalens_data["factor_quantile"]
    theirs_q.index = theirs_q.index.rename(["datetime", "symbol"])
    assert (q.loc[theirs_q.index].to_numpy() == theirs_q.to_numpy()).all()


def test_turnover_and_autocorr_match_alphalens(market, alphalens_data):
    prices, f = market
    data = ev.clean_factor(f, ev.forward_returns(prices, (1, 5)))
    ours = ev.quantile_turnover(data["factor"], 5)
    for k in (1, 5):
        theirs = al_perf.quantile_turnover(alphalens_data["factor_quantile"], k, period=1)
        a = ours[k].to_numpy()
        np.testing.assert_allclose(a[1:], theirs.to_numpy()[1:], atol=1e-12)
    ac = ev.rank_autocorrelation(data["factor"])
    theirs_ac = al_perf.factor_rank_autocorrelation(alphalens_data, period=1)
    np.testing.assert_allclose(ac.to_numpy()[1:], theirs_ac.to_numpy()[1:], atol=1e-10)


def test_evaluate_report_and_errors(market):
    prices, f = market
    f2 = f.copy()
    f2.index.names = ["datetime", "symbol"]
    res = ev.evaluate(f2, prices, horizons=(1, 5), name="oracle")
    assert res.summary.loc["1p", "t_stat"] > 5
    assert res.spread["1p"] > 0
    assert "Rank IC" in res._repr_html_()
    d = res.to_dict()
    assert d["name"] == "oracle" and d["coverage"] > 0.9
    with pytest.raises(TypeError):
        ev.evaluate(pd.Series([1.0, 2.0]), prices)
    with pytest.raises(ValueError, match="horizons"):
        ev.forward_returns(prices, (0,))


def test_factor_correlation_symmetric(market):
    prices, f = market
    f.index.names = ["datetime", "symbol"]
    m = ev.factor_correlation({"a": f, "b": -f, "c": f * 2})
    assert m.loc["a", "b"] == pytest.approx(-1.0)
    assert m.loc["a", "c"] == pytest.approx(1.0)
    assert (m.to_numpy() == m.to_numpy().T).all()
