"""Saved backtest runs for the Backtests page, read through ``pyplatform.backtest``.

The backtest package owns the on-disk format (``data_dir/backtests/<run_id>/``); this adapter
only lists and loads, so the page reflects whatever runs exist when it is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyplatform.config import Settings

__all__ = ["RunView", "BacktestRuns", "open_runs"]


@dataclass(frozen=True)
class RunView:
    """What the page draws of one run."""

    run_id: str
    name: str
    symbol: str
    equity: pd.Series
    trades: pd.DataFrame  # ts (int64 ns), side (+1/-1), price
    metrics: dict


class BacktestRuns:
    """List and load saved runs under a settings' data directory."""

    def __init__(self, settings: Settings) -> None:
        from pyplatform.backtest import list_runs, load_run

        self.settings = settings
        self._list, self._load = list_runs, load_run

    def list_runs(self) -> pd.DataFrame:
        return self._list(self.settings)

    def load(self, run_id: str) -> RunView:
        r = self._load(run_id, self.settings)
        trades = r.trades
        if len(trades):
            ts = trades["ts"].to_numpy()
            ts = ts.astype("datetime64[ns]").astype(np.int64) if np.issubdtype(ts.dtype, np.datetime64) else ts.astype(np.int64)
            sym = r.symbol
            mask = (trades["symbol"] == sym).to_numpy()
            trades = pd.DataFrame({"ts": ts[mask], "side": trades["side"].to_numpy()[mask],
                                   "price": trades["price"].to_numpy(float)[mask]})
        else:
            trades = pd.DataFrame({"ts": np.array([], np.int64), "side": [], "price": []})
        metrics = {k: v for k, v in r.metrics.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        return RunView(r.run_id, r.name, r.symbol, r.equity, trades, metrics)


def open_runs(settings: Settings) -> BacktestRuns:
    """The saved-run store of ``settings`` (raises ImportError while the backtest package is absent)."""
    return BacktestRuns(settings)
