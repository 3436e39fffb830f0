"""The notebook API verbs and the publishing lifecycle, on a generated market."""

import numpy as np
import pandas as pd
import pytest

import pyplatform as pp
from pyplatform.clock import LiveClock
from pyplatform.factors import FactorEngine
from pyplatform.registry import FactorRegistry
from pyplatform.registry.watcher import RegistryWatcher
from pyplatform.research.publishing import PublishError


def test_bars_and_resample(market_settings):
    s = market_settings
    d = pp.bars(start="2024-02-01", end="2024-03-01", freq="1d", settings=s)
    assert d.index.names == ["datetime", "symbol"] and len(d) > 0
    m = pp.bars(start="2024-02-05", end="2024-02-06", freq="1min", settings=s)
    h = pp.bars(start="2024-02-05", end="2024-02-06", freq="1h", settings=s)
    # hourly bars re-aggregate minutes: volume conserved, high is the max, per symbol
    sym = h.index.get_level_values("symbol")[0]
    mm, hh = m.xs(sym, level="symbol"), h.xs(sym, level="symbol")
    assert hh["volume"].sum() == pytest.approx(mm["volume"].sum())
    assert hh["high"].max() == pytest.approx(mm["high"].max())
    t = pp.ticks(settings=s)
    assert {"price", "volume"} <= set(t.columns)


def test_factor_matches_pandas(market_settings):
    s = market_settings
    f = pp.factor("close / move(close, 5) - 1", start="2024-03-01", settings=s)
    px = pp.bars(freq="1d", settings=s)["close"]
    # move(close, 5) is per symbol: five of that symbol's own rows back
    ref = (px / px.groupby(level="symbol").shift(5) - 1).rename("ref")
    j = f.join(ref, how="inner").dropna()
    assert len(j) > 50
    np.testing.assert_allclose(j["factor"], j["ref"], rtol=1e-12)
    # warmed up: no NULL at the first requested date even though the look-back predates it
    first = f.index.get_level_values(0).min()
    assert f.xs(first, level="datetime")["factor"].notna().all()


def test_library_and_named_factor(market_settings):
    lib = pp.library()
    assert len(lib) >= 25 and "expression" in lib.columns
    name = lib.index[0]
    out = pp.factor(name, settings=market_settings)
    assert out.columns.tolist() == [name]


def test_evaluate_verb(market_settings):
    ev = pp.evaluate("close / move(close, 5) - 1", horizons=(1, 5), settings=market_settings)
    assert set(ev.summary.index) == {"1p", "5p"}
    assert "Rank IC" in ev._repr_html_()


def test_publish_lifecycle_with_running_engine(market_settings):
    s = market_settings
    reg = FactorRegistry.from_settings(s)
    engine = FactorEngine(factors={"base": "mavg(close, 3)"})
    watcher = RegistryWatcher(reg, engine)
    assert watcher.poll() == []

    v1 = pp.publish("mom5", "close/move(close,5)-1", author="ana", description="momentum", settings=s)
    assert v1.version == 1 and v1.expression == "close / move(close, 5) - 1"  # canonical text
    assert v1.validation["mismatches"] == 0 and v1.validation["compared"] > 0
    assert "1p" in v1.evaluation["ic"]
    # the running engine picks it up without a restart
    assert watcher.poll() == [("add", "mom5")]
    assert "mom5" in engine.factors
    batch = {"ts": np.array([1, 2], dtype=np.int64), "symbol": np.array(["X.US", "X.US"]),
             "close": np.array([1.0, 2.0])}
    assert "mom5" in engine.feed(batch).column_names

    v2 = pp.publish("mom5", "close / move(close, 10) - 1", author="ana", settings=s)
    assert v2.version == 2 and reg.get("mom5", 1).expression.endswith("5) - 1")
    assert watcher.poll() == [("remove", "mom5"), ("add", "mom5")]
    assert engine.factors["mom5"].endswith("10) - 1")

    pp.retire("mom5", "decayed", settings=s)
    assert watcher.poll() == [("remove", "mom5")]
    assert "mom5" not in engine.factors and len(reg.versions("mom5")) == 2
    assert bool(pp.published(settings=s).loc["mom5", "retired"])


@pytest.mark.parametrize("expr,msg", [
    ("mavg(close, ", "does not parse"),
    ("nosuchfn(close, 3)", "does not parse"),
    ("mavg(close, 0)", "does not parse"),
    ("mavg(bogus_column, 5)", "columns"),
    ("mavg(close, 100000)", "no values"),
])
def test_broken_factor_changes_nothing(market_settings, expr, msg):
    s = market_settings
    reg = FactorRegistry.from_settings(s)
    g = reg.generation()
    with pytest.raises(PublishError, match=msg):
        pp.publish("broken", expr, author="ana", settings=s)
    assert reg.generation() == g and reg.names() == []


def test_bad_name_rejected_before_work(market_settings):
    with pytest.raises(PublishError, match="invalid factor name"):
        pp.publish("not a name", "close", author="x", settings=market_settings)


def test_sweep_verb(market_settings):
    res = pp.sweep([3, 5], [10, 20], freq="1d", settings=market_settings)
    assert len(res) == 8 * 4
    assert {"total_return", "sharpe", "max_drawdown"} <= set(res.columns)


def test_draft_verb():
    d = pp.draft_strategy("buy AAPL when the close crosses above the 20-day moving average")
    from pyplatform.factors import parse

    assert d.ok and str(parse(d.entry_long))


def test_backtest_verb_survives_subpackage_import(market_settings):
    import pyplatform.backtest
    import pyplatform.backtest.vectorized  # noqa: F401  binds pyplatform.backtest to the package

    # the verb is pp.run_backtest; pp.backtest is the package, a plain module
    assert pp.backtest is pyplatform.backtest and not callable(pp.backtest)
    res = pp.run_backtest({"kind": "ma_cross", "params": {"fast": 3, "slow": 10}}, symbols=None,
                          settings=market_settings, freq="1d")
    assert len(res.equity) > 10 and "sharpe" in res.metrics


def test_watcher_adopts_factor_restored_from_checkpoint(tmp_path):
    """After a restart the engine's snapshot already runs the published factor: the watcher
    must take it over (so a later retire removes it), not fail with 'already exists'."""
    reg = FactorRegistry(tmp_path, LiveClock())
    reg.add_version("m3", "mavg(close, 3)", author="x")
    engine = FactorEngine(factors={"m3": "mavg(close, 3)"})  # as restored from a snapshot
    w = RegistryWatcher(reg, engine)
    assert w.poll() == [("adopt", "m3")] and not w.errors
    reg.retire("m3")
    assert w.poll() == [("remove", "m3")] and "m3" not in engine.factors
