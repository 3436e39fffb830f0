"""Issue 20 items 1, 6, 7: universes, loud errors, publishing keeps its metadata."""

import numpy as np
import pandas as pd
import pytest

import pyplatform as pp
from pyplatform.research.publishing import PublishError
from pyplatform.research.universe import UnknownSymbolError


def _stocks(s):
    return [x for x in pp.universe("all", settings=s) if x.endswith(".US")]


def test_unknown_symbols_are_refused_with_the_nearest(market_settings):
    s = market_settings
    with pytest.raises(UnknownSymbolError, match="'NOPE.US'"):
        pp.bars(["NOPE.US"], freq="1d", settings=s)
    fx = [x for x in pp.universe("all", settings=s) if x.endswith(".GB")][0]
    code = fx.split(".")[0]
    with pytest.raises(UnknownSymbolError, match=rf"did you mean {fx}"):
        pp.bars([code], freq="1d", settings=s)
    with pytest.raises(UnknownSymbolError):
        pp.history("bars_1m", ["NOPE.US"], settings=s)


def test_bad_ranges_and_freqs_are_errors(market_settings):
    s = market_settings
    with pytest.raises(ValueError, match="is not before end"):
        pp.bars(start="2024-03-01", end="2024-02-01", freq="1d", settings=s)
    with pytest.raises(ValueError, match="no bars_1d rows .* covers 2024-01"):
        pp.bars(start="1990-01-01", end="1990-02-01", freq="1d", settings=s)
    with pytest.raises(ValueError, match="freq='7x' is not a bar width; use .*1min"):
        pp.bars(freq="7x", settings=s)
    with pytest.raises(ValueError, match="not a date"):
        pp.bars(start="yesterday-ish", freq="1d", settings=s)


def test_wrong_backtest_keyword_lists_the_valid_ones(market_settings):
    with pytest.raises(TypeError, match=r"unknown keyword\(s\) \['latency'\]; valid: .*latency_ms"):
        pp.run_backtest({"kind": "ma_cross"}, latency=5, settings=market_settings)


def test_evaluate_defaults_to_stocks_and_says_its_window(market_settings):
    s = market_settings
    stocks = _stocks(s)
    assert pp.universe("stocks", settings=s) == stocks and len(stocks) >= 5
    ev = pp.evaluate("close / move(close, 5) - 1", horizons=(1, 5), settings=s)
    days = ev.ic.index
    assert (days.dayofweek < 5).all()  # no crypto weekends in a stock evaluation
    bars = pp.bars(stocks, freq="1d", settings=s)
    assert ev.window["n_dates"] == len(days) <= bars.index.get_level_values(0).nunique()
    # a saved universe is a universe too; unknown names list the choices
    pp.save_universe("mine", stocks[:5], settings=s)
    assert pp.universe("mine", settings=s) == sorted(stocks[:5])
    with pytest.raises(ValueError, match="unknown universe 'nope'.*mine"):
        pp.evaluate("close", universe="nope", settings=s)
    with pytest.raises(UnknownSymbolError):
        pp.save_universe("bad", ["NOPE.US"], settings=s)


def test_evaluate_matches_a_hand_computed_own_calendar_ic(market_settings):
    """1p rank IC on one date, from the stocks' own next session, computed with pandas."""
    s = market_settings
    stocks = _stocks(s)
    ev = pp.evaluate("close / move(close, 5) - 1", horizons=(1,), settings=s)
    px = pp.bars(stocks, freq="1d", settings=s)["close"].unstack("symbol")
    fac = px / px.shift(5) - 1
    fwd = px.shift(-1) / px - 1
    day = ev.ic.index[len(ev.ic) // 2]
    hand = fac.loc[day].rank().corr(fwd.loc[day].rank())
    assert ev.ic.loc[day, "1p"] == pytest.approx(hand, abs=1e-12)


def test_republish_keeps_metadata_and_library_names_are_reserved(market_settings):
    s = market_settings
    v1 = pp.publish("mom5", "close / move(close, 5) - 1", author="ana", description="five-day momentum",
                    tags=["momentum", "daily"], settings=s)
    v2 = pp.publish("mom5", "close / move(close, 6) - 1", author="ana", settings=s)
    assert (v2.description, v2.tags) == (v1.description, v1.tags) == ("five-day momentum", ("momentum", "daily"))
    v3 = pp.publish("mom5", "close / move(close, 6) - 1", author="ana", description="six days", settings=s)
    assert v3.description == "six days" and v3.tags == ("momentum", "daily")
    lib = pp.library().index[0]
    with pytest.raises(PublishError, match="built-in library factor name"):
        pp.publish(lib, "close", author="ana", settings=s)
    # the summary says which window its IC covers: the whole daily stock history
    table = pp.published(settings=s)
    w = v3.evaluation["window"]
    assert w["scope"] == "full history" and w["universe"] == "stocks"
    ref = pp.evaluate("close / move(close, 6) - 1", horizons=(1, 5), settings=s)
    assert v3.evaluation["ic"]["1p"]["ic_mean"] == pytest.approx(ref.summary.loc["1p", "ic_mean"], abs=1e-12)
    assert table.loc["mom5", "ic_window"].startswith(str(w["start"])[:10])
    assert f"{w['n_dates']} dates" in table.loc["mom5", "ic_window"]
    assert table.loc["mom5", "description"] == "six days"


def test_timedelta_is_on_the_package():
    assert pp.Timedelta("1D") == pd.Timedelta("1D") and pp.Timestamp("2024-01-01").year == 2024
    assert np.isfinite(1.0)
