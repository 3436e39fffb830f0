"""Numbers right by construction (issue 20 items 2-4): periods per year from the calendar,
all-in sizing at the fill price across overnight gaps, one definition of a trade, the minimum
fee per order, and a gross exposure limit -- each against a hand or independent computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pyplatform.backtest import BacktestConfig, FeeSchedule, SlippageConfig, run_backtest
from pyplatform.backtest.annualisation import periods_per_year, periods_per_year_of_data
from pyplatform.backtest.vectorized import dual_ma_positions, sweep_dual_ma
from pyplatform.data import generate_bars
from pyplatform.risk import AccountLimits, RiskConfig

MINUTE, DAY = 60_000_000_000, 86_400_000_000_000
MA = {"kind": "ma_cross", "params": {"fast": 5, "slow": 20}}


# ---------------------------------------------------------------------------------- item 2
@pytest.mark.parametrize("symbols, bar, want", [
    (["AAPL.US"], DAY, 252), (["AAPL.US"], MINUTE, 252 * 390),
    (["EURUSD.GB"], DAY, 260), (["EURUSD.GB"], MINUTE, 260 * 1440),
    (["BTCUSDT.BA"], DAY, 365), (["BTCUSDT.BA"], MINUTE, 525_600),
    (["AAPL.US", "BTCUSDT.BA"], MINUTE, 525_600), (["AAPL.US", "EURUSD.GB"], DAY, 260),
    (["AAPL.US"], 5 * MINUTE, 252 * 78),
])
def test_periods_per_year_from_the_calendar(symbols, bar, want):
    assert periods_per_year(symbols, bar) == want


def test_periods_per_year_of_data_counts_bars_per_elapsed_year():
    ts = np.arange(0, 10 * DAY, DAY)  # ten daily bars, 10 days elapsed
    assert periods_per_year_of_data(ts, DAY) == pytest.approx(365.25)
    with pytest.raises(ValueError, match="two distinct"):
        periods_per_year_of_data(np.array([5]), DAY)


@pytest.fixture(scope="module")
def crypto_minutes():
    return generate_bars(["BTCUSDT.BA"], "2024-01-02", "2024-01-05", freq="1min", seed=5)


def test_crypto_run_is_annualised_on_its_own_calendar(crypto_minutes):
    r = run_backtest(MA, bars=crypto_minutes, backtest=BacktestConfig.frictionless(freq="1min", audit_timestamps=0))
    ret = r.returns.to_numpy()
    n = len(ret)
    eq = np.prod(1 + ret)
    assert r.metrics["periods_per_year"] == 525_600
    # hand formulas with 525,600 minutes a year (a 24/7 market), not 252 x 390
    assert r.metrics["annual_return"] == pytest.approx(eq ** (525_600 / n) - 1, rel=1e-9)
    assert r.metrics["sharpe"] == pytest.approx(ret.mean() / ret.std(ddof=1) * math.sqrt(525_600), rel=1e-9)
    fixed = run_backtest(MA, bars=crypto_minutes, backtest=BacktestConfig.frictionless(
        freq="1min", audit_timestamps=0, periods_per_year=252 * 390))
    assert fixed.metrics["sharpe"] == pytest.approx(r.metrics["sharpe"] * math.sqrt(252 * 390 / 525_600), rel=1e-9)


def test_mixed_run_takes_the_densest_calendar_and_compounds_per_calendar_year():
    bars = generate_bars(["AAPL.US", "BTCUSDT.BA"], "2024-01-01", "2024-03-01", freq="1D", seed=2)
    r = run_backtest(MA, bars=bars, backtest=BacktestConfig.frictionless(freq="1d", audit_timestamps=0))
    assert r.metrics["periods_per_year"] == 365
    eq = r.equity
    days = (eq.index[-1] - eq.index[0]).days + 1  # the curve has a row every calendar day (crypto)
    assert len(eq) == days
    total = eq.iloc[-1] / 1_000_000
    assert r.metrics["annual_return"] == pytest.approx(total ** (365 / days) - 1, rel=1e-9)


def test_sweep_annualises_each_symbol_on_its_calendar():
    bars = generate_bars(["AAPL.US", "BTCUSDT.BA"], "2023-01-01", "2024-01-01", freq="1D", seed=1)
    res = sweep_dual_ma(bars[["open", "close"]], [5], [20], freq="1d")
    fixed = sweep_dual_ma(bars[["open", "close"]], [5], [20], periods_per_year=1.0)
    assert res.loc[("AAPL.US", 5, 20), "sharpe"] == pytest.approx(fixed.loc[("AAPL.US", 5, 20), "sharpe"] * math.sqrt(252))
    assert res.loc[("BTCUSDT.BA", 5, 20), "sharpe"] == pytest.approx(
        fixed.loc[("BTCUSDT.BA", 5, 20), "sharpe"] * math.sqrt(365))
    inferred = sweep_dual_ma(bars[["open", "close"]], [5], [20])  # the bar width read off the stamps
    pd.testing.assert_frame_equal(inferred, res)


# ---------------------------------------------------------------------------------- item 3
def hand_bars(closes_by_day, symbol="AAPL.US", gap=0.0):
    """1-minute bars from 14:30 UTC, one list of closes per session; open = previous close
    + 0.05, and the first open of a later session ``gap`` above the last close."""
    rows = []
    last = None
    for d, closes in enumerate(closes_by_day):
        t0 = pd.Timestamp("2024-01-02 14:30") + pd.Timedelta(days=d)
        for i, c in enumerate(closes):
            if i:
                o = round(closes[i - 1] + 0.05, 2)
            else:
                o = round((last if last is not None else c) + (gap if last is not None else 0.05), 2)
            rows.append((t0 + pd.Timedelta(minutes=i), symbol, o, max(o, c) + 0.1, min(o, c) - 0.1, c, 1e6))
        last = closes[-1]
    df = pd.DataFrame(rows, columns=["datetime", "symbol", "open", "high", "low", "close", "volume"])
    return df.set_index(["datetime", "symbol"])


def test_all_in_buys_the_whole_equity_at_the_gap_open():
    # golden cross (fast 2 / slow 3) on the session's last bar, close 11.00; the next session
    # opens 1.00 higher at 12.00. Hand computation: 1,000,000 / 12.00 = 83,333.33333333 shares
    # (rounded down to 1e-8), cash left 0.00000004 x 12; equity at the last close 12.50.
    b = hand_bars([[10, 9.9, 9.8, 9.7, 9.6, 9.5, 9.4, 9.3, 9.2, 11.0], [12.5, 12.5, 12.5]], gap=1.0)
    r = run_backtest({"kind": "ma_cross", "params": {"fast": 2, "slow": 3}}, bars=b,
                     backtest=BacktestConfig.frictionless(freq="1min"))
    f = r.trades.iloc[0]
    assert f["price"] == 12.0 and f["ts"] == pd.Timestamp("2024-01-03 14:30").value
    assert f["quantity"] == pytest.approx(83_333.33333333, abs=1e-9)
    cash = 1_000_000 - 83_333.33333333 * 12.0
    assert cash >= 0  # never more than the equity (sizing at the 11.00 close would spend 1,090,909)
    assert r.equity.iloc[-1] == pytest.approx(cash + 83_333.33333333 * 12.5, rel=1e-12)
    assert r.metrics["total_return"] == pytest.approx(12.5 / 12.0 - 1, abs=1e-9)


def _next_open_portfolio(o, c, pos, capital=1_000_000.0):
    """Independent next-open, fully invested, fractional-share portfolio (vectorbt's
    ``from_signals`` with ``price=open`` of the next bar, ``size=inf``): equity per bar close."""
    cash, shares = capital, 0.0
    eq = np.empty(len(c))
    for t in range(len(c)):
        want = pos[t - 1] if t else 0  # decided at the previous close, traded at this open
        if want and not shares:
            shares, cash = cash / o[t], 0.0
        elif not want and shares:
            cash, shares = shares * o[t], 0.0
        eq[t] = cash + shares * c[t]
    return eq


@pytest.mark.parametrize("seed", [7, 8])
def test_frictionless_equals_next_open_portfolio_across_overnight_gaps(seed):
    b = generate_bars(["MSFT.US"], "2024-01-02", "2024-01-20", freq="1min", seed=seed)
    r = run_backtest(MA, bars=b, backtest=BacktestConfig.frictionless(freq="1min", audit_timestamps=0))
    o, c = b["open"].to_numpy(), b["close"].to_numpy()
    # the strategy's own decisions (the live factor engine's float means; on a decimal tie of
    # the two averages they can differ from the exact vectorised crossings, which is a
    # question for the factor engine, not for sizing): held from the signal bar on
    ts = b.index.get_level_values("datetime").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    sig = pd.Series(np.clip(r.signals["direction"].to_numpy(), 0, 1),
                    index=np.searchsorted(ts, r.signals["ts"].to_numpy()))
    pos = sig[~sig.index.duplicated(keep="last")].reindex(range(len(c))).ffill().fillna(0).to_numpy()
    want = _next_open_portfolio(o, c, pos)
    got = r.equity.to_numpy()
    assert len(got) == len(want)
    # the run trades across gaps: some orders decided on a session's last bar filled next morning
    waited = r.trades["ts"].to_numpy() - r.orders["ts"].to_numpy()[:len(r.trades)]
    assert (waited > 3_600_000_000_000).any()
    np.testing.assert_allclose(got, want, rtol=1e-8)  # to rounding of quantities to 1e-8


def test_one_definition_of_a_trade_shared_with_the_sweep():
    # entries at bars 5 and 11 (the second still open at the end), one exit at bar 8:
    # two trades, one closed
    c = [1.00, 0.99, 0.98, 0.98, 0.98, 1.01, 1.02, 0.95, 0.90, 0.89, 0.91, 0.99, 1.05, 1.06]
    b = hand_bars([c])
    strat = {"kind": "ma_cross", "params": {"fast": 2, "slow": 3}}
    r = run_backtest(strat, bars=b, backtest=BacktestConfig.frictionless(freq="1min"))
    sw = sweep_dual_ma(b, [2], [3], freq="1min")
    assert r.metrics["n_trades"] == 2 == sw.loc[("AAPL.US", 2, 3), "trades"]
    assert r.metrics["n_closed_trades"] == 1 == len(r.round_trips)
    assert r.metrics["n_open_trades"] == 1


# ---------------------------------------------------------------------------------- item 4
def test_minimum_fee_is_charged_once_per_order_not_per_fill():
    b = generate_bars(["AAPL.US"], "2024-01-02", "2024-01-04", freq="1min", seed=3)
    fees = {"stock": FeeSchedule(per_unit=0.005, minimum=1.0)}
    cfg = BacktestConfig(freq="1min", participation=0.02, vwap_slicing=False, latency_ms=50, fees=fees,
                         slippage=SlippageConfig(kind="none"), audit_timestamps=0)
    r = run_backtest(MA, bars=b, backtest=cfg)
    f = r.trades
    per_order = f.groupby("client_order_id").agg(qty=("quantity", "sum"), fee=("fee", "sum"), n=("fee", "size"))
    assert (per_order["n"] > 1).any()  # orders that took several fills
    # hand rule per order: max($1, $0.005 x shares filled)
    np.testing.assert_allclose(per_order["fee"], np.maximum(1.0, 0.005 * per_order["qty"]), rtol=1e-12)
    assert (f["fee"] >= 0).all()
    assert r.metrics["fees"] == pytest.approx(per_order["fee"].sum())


def _three_same(closes):
    return pd.concat([hand_bars([closes], s) for s in ("AAA.US", "BBB.US", "CCC.US")]).sort_index()


def test_gross_limit_sizes_the_third_position_into_what_is_left():
    # the same prices for three stocks: all three golden-cross at bar 5 and buy at bar 6's
    # open, 1.06 (= 1.01 + 0.05). Risk sizing: 2% risk at a 5% stop = 40% of equity each,
    # in 100-share lots: floor(400,000 / 1.06 / 100) x 100 = 377,300 shares for the first two
    # (799,876 of gross); the third gets what is left of 1.0 x equity: floor(200,124 / 1.06
    # / 100) x 100 = 188,700.
    c = [1.00, 0.99, 0.98, 0.98, 0.98, 1.01, 1.02, 1.03, 1.04]
    bars = _three_same(c)
    base = dict(freq="1min", latency_ms=0.0, slippage=SlippageConfig(kind="none"), fees={}, participation=None,
                vwap_slicing=False, audit_timestamps=0,
                risk=RiskConfig(default=AccountLimits(concentration=0.45, min_turnover_rate=0.0, price_band=0.5)))
    r = run_backtest(MA | {"params": {"fast": 2, "slow": 3}}, bars=bars, backtest=BacktestConfig(**base))
    q = r.trades.set_index("symbol")["quantity"]
    assert (r.trades["price"] == 1.06).all()
    assert q.to_dict() == {"AAA.US": 377_300, "BBB.US": 377_300, "CCC.US": 188_700}
    gross_at_entry = (q * 1.06).sum()
    assert gross_at_entry <= 1_000_000
    # without the limit the third takes its full 40% (the test can fail)
    off = run_backtest(MA | {"params": {"fast": 2, "slow": 3}}, bars=bars,
                       backtest=BacktestConfig(**base, max_gross=None))
    assert off.trades.set_index("symbol")["quantity"]["CCC.US"] == 377_300


def test_default_limits_keep_average_gross_exposure_at_most_one():
    bars = generate_bars(8, "2022-01-01", "2024-01-01", freq="1D", seed=9)
    z = {"kind": "zscore", "params": {"window": 10, "entry": 1.0, "exit": 0.2}}
    r = run_backtest(z, bars=bars, backtest=BacktestConfig(freq="1d", audit_timestamps=0))
    exposure = r.equity_curve["gross"] / r.equity_curve["equity"]
    assert r.metrics["exposure"] <= 1.0
    assert exposure.max() <= 1.5  # entries are capped at 1.0x; later price moves drift it
    off = run_backtest(z, bars=bars, backtest=BacktestConfig(freq="1d", audit_timestamps=0, max_gross=None))
    assert off.metrics["exposure"] > 1.0  # without it the strategy levers up (the 2.3x)
    assert (off.equity_curve["gross"] / off.equity_curve["equity"]).max() > exposure.max()


# ---------------------------------------------------------------------------------- progress
def test_progress_counts_both_phases_to_the_announced_total(crypto_minutes):
    done, totals = [], []
    r = run_backtest(MA, bars=crypto_minutes, backtest=BacktestConfig(freq="1min", audit_timestamps=0, chunk_rows=500),
                     progress=done.append, on_start=totals.append)
    assert totals == [2 * len(crypto_minutes)]
    assert sum(done) == totals[0] and all(d > 0 for d in done)
    assert len(done) > 2 * (len(crypto_minutes) // 500)  # the execution phase reports as it goes too
    assert len(r.trades)


def test_reports_about_finished_orders_do_not_break_the_venue():
    # 20 s latency with VWAP children: cancels of superseded children reach the venue after
    # the child has filled; their reject used to re-enter the venue's live table and crash it
    bars = generate_bars(5, "2024-01-02", "2024-01-05", freq="1min", seed=0)
    r = run_backtest({"kind": "ma_cross", "params": {"fast": 20, "slow": 100}}, bars=bars,
                     backtest=BacktestConfig(freq="1min", audit_timestamps=0, latency_ms=20_000))
    filled = r.trades.groupby("client_order_id")["quantity"].sum()
    ordered = r.orders.set_index("client_order_id")["quantity"]
    assert len(filled) > 50
    assert (filled <= ordered.reindex(filled.index) + 1e-9).all()


def test_periods_per_year_setting(crypto_minutes):
    r = run_backtest(MA, bars=crypto_minutes, backtest=BacktestConfig.frictionless(
        freq="1min", audit_timestamps=0, periods_per_year="data"))
    n = len(r.equity)  # 3 days of 24/7 minutes, every one present
    assert r.metrics["periods_per_year"] == pytest.approx(n / (3 / 365.25))
    with pytest.raises(ValueError, match="periods_per_year"):
        BacktestConfig(periods_per_year=-1.0)
