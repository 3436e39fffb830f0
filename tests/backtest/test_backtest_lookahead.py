"""Look-ahead bias: a strategy that peeks at later rows is caught; a future-reading factor cannot be written."""

from __future__ import annotations

import numpy as np
import pytest

from pyplatform.backtest import BacktestConfig, LookAheadError, run_backtest
from pyplatform.backtest.signals import generate_signals
from pyplatform.backtest.run import bars_table
from pyplatform.data import generate_bars
from pyplatform.factors.errors import FactorError
from pyplatform.strategies import DualMACrossover, build


@pytest.fixture(scope="module")
def bars():
    return generate_bars(["AAPL.US", "EURUSD.GB"], "2024-01-02", "2024-01-03", freq="1min", seed=8)


class PeekingCrossover(DualMACrossover):
    """Trades on the *next* row's MA spread -- only possible by looking inside the batch."""

    KIND = "peek"

    def regime(self, f):
        d = np.roll(f["fast"] - f["slow"], -1)
        out = np.full(len(d), 2, dtype=np.int8)
        out[d > 0] = 1
        out[d < 0] = -1
        return out


class FutureFactor(DualMACrossover):
    KIND = "future"
    FACTORS = {"fast": "move(close, -1)", "slow": "mavg(close, {slow})"}


def test_peeking_strategy_is_refused(bars):
    with pytest.raises(LookAheadError, match="looks ahead"):
        run_backtest(PeekingCrossover(fast=3, slow=10), bars=bars, backtest=BacktestConfig(freq="1min"))


def test_peeking_strategy_would_have_profited_without_the_audit(bars):
    # the audit is what stands between this strategy and a too-good backtest
    cfg = BacktestConfig.frictionless(freq="1min", audit_timestamps=0)
    honest = run_backtest(DualMACrossover(fast=3, slow=10), bars=bars, backtest=cfg)
    peek = run_backtest(PeekingCrossover(fast=3, slow=10), bars=bars, backtest=cfg)
    assert len(peek.signals) and not peek.signals.equals(honest.signals)


def test_a_factor_reading_the_future_cannot_be_written(bars):
    with pytest.raises(FactorError, match="steps"):
        run_backtest(FutureFactor(fast=3, slow=10), bars=bars, backtest=BacktestConfig(freq="1min"))


@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_micro_batch_size_does_not_change_signals(bars, chunk):
    table = bars_table(bars)
    ref = generate_signals([build({"kind": "zscore", "params": {"window": 10, "entry": 1.5, "exit": 0.3}})],
                           table, 10**9)
    got = generate_signals([build({"kind": "zscore", "params": {"window": 10, "entry": 1.5, "exit": 0.3}})],
                           table, chunk)
    assert len(ref) > 5
    assert [(s.ts, s.symbol, int(s.direction)) for s in got] == [(s.ts, s.symbol, int(s.direction)) for s in ref]


def test_orders_never_precede_their_signal_bar_close(bars):
    r = run_backtest({"kind": "ma_cross", "params": {"fast": 3, "slow": 10}}, bars=bars,
                     backtest=BacktestConfig(freq="1min", latency_ms=60))
    top = r.orders[r.orders["parent_id"].isna()]
    sig_ts = top["client_order_id"].str.rsplit("-", n=1).str[1].astype(np.int64)
    assert len(top) and (top["ts"] == sig_ts + 60_000_000_000).all()
    first_fill = r.trades.groupby("client_order_id")["ts"].min()
    placed = r.orders.set_index("client_order_id")["ts"]
    assert (first_fill >= placed.reindex(first_fill.index) + 60_000_000).all()  # latency elapsed
