"""Drafted strategies end in a backtest (issue 20, item 5): the rule kind, the seed's own
sentence and rewordings, breakouts on the previous bar, risk per trade, unknown symbols."""

import numpy as np
import pandas as pd
import pytest

import pyplatform as pp
from pyplatform.research.drafting import draft_strategy
from pyplatform.strategies import build
from pyplatform.strategies.rule import rule_class

SEED_CFG = {"entry_long": "cross(mavg(close, 5), mavg(close, 20)) == 1",
            "exit_long": "cross(mavg(close, 5), mavg(close, 20)) == -1"}

SEED_SENTENCES = [
    # the seed's own phrasing (condition first, "use ... for each trade", "and set ...")
    "When the 5-day moving average of EURUSD crosses above the 20-day moving average, buy; when it crosses "
    "below, sell; use 2% position for each trade, and set stop-loss at 100 points.",
    "buy when the 5-day moving average of EURUSD crosses above the 20-day moving average, sell on the reverse "
    "cross, use 2% position for each trade, and set stop-loss at 100 points",
    "Buy EURUSD when the 5-day MA crosses above the 20-day MA. Sell on the reverse cross. Use a 2% position per "
    "trade and set a stop-loss of 100 points.",
    "If EURUSD's 5-day moving average crosses above its 20-day moving average then buy, when it crosses back "
    "below sell, 2% of equity per trade, stop loss at 100 points",
    "buy when the 5-day moving average of EURUSD crosses above the 20-day moving average, sell on the reverse "
    "cross, 2% position per trade, stop-loss at 100 points",
]


@pytest.mark.parametrize("text", SEED_SENTENCES)
def test_seed_sentence_and_rewordings(text):
    d = draft_strategy(text)
    assert d.ok, d.unparsed
    cfg = d.to_config()
    assert cfg == {"kind": "rule", "name": "draft", "rules": SEED_CFG,
                   "params": {"position_pct": 0.02, "stop_loss_points": 100.0}, "symbols": ["EURUSD.GB"]}


def test_breakout_refers_to_the_previous_bar():
    d = draft_strategy("buy AAPL when the close rises above the 20-day high, sell when the close falls below "
                       "the 10-day low")
    assert d.entry_long == "close > move(mmax(high, 20), 1)"
    assert d.exit_long == "close < move(mmin(low, 10), 1)"


def test_risk_per_trade_is_not_a_position_size():
    d = draft_strategy("buy AAPL when the close crosses above the 50-day moving average, risk 1% per trade, "
                       "stop loss 5%")
    assert d.ok and d.risk_pct == 0.01 and d.position_pct is None and d.stop_loss_pct == 0.05
    assert not draft_strategy("buy AAPL when the close crosses above the 50-day moving average, risk 1% per "
                              "trade").ok  # risking 1% means nothing without a stop


def test_unknown_symbols_are_refused_with_the_nearest():
    known = ["AAPL.US", "EURUSD.GB", "BTCUSDT.BA"]
    d = draft_strategy("buy AAPLE when the close crosses above the 20-day moving average", known_symbols=known)
    assert not d.ok and any("AAPLE.US" in u and "AAPL.US" in u for u in d.unparsed)
    d = draft_strategy("buy EURUSD when the close crosses above the 20-day moving average", known_symbols=known)
    assert d.ok and d.symbols == ("EURUSD.GB",)


def _oracle(rows: pd.DataFrame, params: dict) -> list[tuple[int, str, int]]:
    """A per-row Python reading of the documented semantics (signals as (ts, symbol, side))."""
    out, state = [], {}
    step = {"US": 0.01, "GB": 1e-5, "BA": 1e-8}
    for r in rows.itertuples(index=False):
        side, entry, best = state.get(r.symbol, (0, np.nan, np.nan))
        new = side
        el, es = bool(np.nan_to_num(r.el)), bool(np.nan_to_num(r.es))
        if el or es:
            new, entry, best = (1 if el else -1), r.close, r.close
        elif side:
            best = max(best, r.close) if side == 1 else min(best, r.close)
            gain = (r.close - entry) * side
            p = {k: params.get(k, 0.0) for k in ("stop_loss_pct", "stop_loss_points", "take_profit_pct",
                                                  "trailing_stop_pct")}
            hit = any([
                side == 1 and bool(np.nan_to_num(r.xl)), side == -1 and bool(np.nan_to_num(r.xs)),
                p["stop_loss_pct"] > 0 and gain <= -p["stop_loss_pct"] * entry,
                p["stop_loss_points"] > 0 and gain <= -p["stop_loss_points"] * step[r.symbol[-2:]],
                p["take_profit_pct"] > 0 and gain >= p["take_profit_pct"] * entry,
                p["trailing_stop_pct"] > 0 and (best - r.close) * side >= p["trailing_stop_pct"] * abs(best),
            ])
            if hit:
                new = 0
        if new != side:
            out.append((r.ts, r.symbol, new))
        state[r.symbol] = (new, entry, best)
    return out


@pytest.mark.parametrize("params", [{}, {"stop_loss_pct": 0.02, "take_profit_pct": 0.03},
                                    {"trailing_stop_pct": 0.015}, {"stop_loss_points": 150.0}])
def test_rule_state_machine_matches_a_row_by_row_oracle(params):
    rng = np.random.default_rng(4)
    n, syms = 600, np.array(["A.US", "B.US", "C.GB"])
    sym = rng.choice(syms, n)
    ts = np.arange(n, dtype=np.int64) * 1_000
    close = np.where(sym == "C.GB", 1.1, 100.0) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    def flags(p):
        v = (rng.random(n) < p).astype(float)
        v[rng.random(n) < 0.05] = np.nan  # warm-up NULLs are "false"
        return v
    el, xl, es, xs = flags(0.05), flags(0.08), flags(0.04), flags(0.08)
    rows = pd.DataFrame({"ts": ts, "symbol": sym, "close": close, "el": el, "xl": xl, "es": es, "xs": xs})
    cls = rule_class({"entry_long": "close", "exit_long": "close", "entry_short": "close", "exit_short": "close"})
    expected = _oracle(rows, params)
    assert len(expected) > 40
    for chunk in (n, 97, 1):
        strat = cls(name="r", **params)
        batch = {"ts": ts, "symbol": sym, "r_px": close, "r_entry_long": el, "r_exit_long": xl,
                 "r_entry_short": es, "r_exit_short": xs}
        got = []
        for i in range(0, n, chunk):
            got += strat.on_batch({k: v[i:i + chunk] for k, v in batch.items()})
        assert [(s.ts, s.symbol, int(s.direction)) for s in got] == expected, chunk


def test_config_builds_and_refuses_bad_rules():
    s = build({"kind": "rule", "rules": {"entry_long": "close > mavg(close, 3)"}, "params": {"position_pct": 0.1}})
    assert s.factors() == {"rule_entry_long": "close > mavg(close, 3)", "rule_px": "close"}
    with pytest.raises(ValueError, match="does not parse"):
        build({"kind": "rule", "rules": {"entry_long": "close >"}})
    with pytest.raises(ValueError, match="unknown rule"):
        build({"kind": "rule", "rules": {"entry_long": "close", "enter": "close"}})
    with pytest.raises(ValueError, match="takes no rules"):
        build({"kind": "ma_cross", "rules": {"entry_long": "close"}})


def test_drafted_seed_backtests_with_its_sizing(market_settings):
    s = market_settings
    fx = [x for x in pp.universe("all", settings=s) if x.endswith(".GB")][0]
    text = SEED_SENTENCES[0].replace("EURUSD", fx.split(".")[0])
    d = pp.draft_strategy(text, settings=s)
    assert d.ok, d.unparsed
    res = pp.run_backtest(d.to_config(), settings=s)
    assert res.metrics["n_signals"] > 0 and res.metrics["n_orders"] > 0
    entries = res.orders[res.orders["reason"].str.contains("enter long")]
    assert len(entries)
    # "2% position per trade": each entry is worth at most 2% of the capital, and within a
    # (micro) lot of it
    value = entries["quantity"] * entries["price"]
    assert (value <= 0.02 * 1_000_000 * 1.0001).all() and (value >= 0.02 * 1_000_000 - 1000 * entries["price"]).all()


def test_breakout_draft_fires_on_history(market_settings):
    s = market_settings
    stocks = pp.universe("stocks", settings=s)
    d = pp.draft_strategy("buy when the close rises above the 20-day high, sell when the close falls below "
                          "the 10-day low", settings=s)
    assert d.ok, d.unparsed
    bars = pp.bars(stocks, freq="1d", settings=s)
    f = pp.factor(d.entry_long, symbols=stocks, settings=s).iloc[:, 0]
    prior_high = bars["high"].groupby(level="symbol").transform(lambda h: h.rolling(20).max().shift(1))
    ref = (bars["close"] > prior_high).reindex(f.index)
    fired = f.to_numpy() == 1
    assert fired.sum() > 0 and (fired == ref.to_numpy()).all()
    # the window that includes the current bar can never be beaten by its own close
    inside = pp.factor("close > mmax(high, 20)", symbols=stocks, settings=s).iloc[:, 0]
    assert (inside.to_numpy() == 1).sum() == 0
