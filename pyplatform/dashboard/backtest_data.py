"""Saved backtest runs for the Backtests page, read through ``pyplatform.backtest``.

The backtest package owns the on-disk format (``data_dir/backtests/<run_id>/``); this adapter
only lists and loads, so the page reflects whatever runs exist when it is opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pyplatform.config import Settings

__all__ = ["RunView", "BacktestRuns", "open_runs", "run_label"]


@dataclass(frozen=True)
class RunView:
    """What the page draws of one run.

    ``trades`` holds every symbol's fills (``ts`` int64 ns, ``symbol``, ``side``, ``price``);
    ``symbol`` is the most traded one (the page's default), ``symbols`` all the run's names.
    """

    run_id: str
    name: str
    symbol: str
    equity: pd.Series
    trades: pd.DataFrame
    metrics: dict
    symbols: tuple[str, ...] = ()

    def trades_of(self, symbol: str) -> pd.DataFrame:
        """Fills of one symbol (``ts``, ``side``, ``price``) for the trades chart."""
        t = self.trades
        return t.loc[t["symbol"] == symbol, ["ts", "side", "price"]].reset_index(drop=True)


def run_label(row) -> str:
    """How a run is listed: name, strategy kinds, the run's date range, when it was made, its id.

    A run id alone (``20261204T181502-ma_cross``) does not tell two sweeps of the same
    strategy apart; the dates, the symbols count and the headline Sharpe do.
    """
    def day(x) -> str:
        try:
            return f"{pd.Timestamp(x):%Y-%m-%d}"
        except (TypeError, ValueError):
            return "?"

    kinds = getattr(row, "kinds", "") or ""
    what = row.name if not kinds or kinds == row.name else f"{row.name} ({kinds})"
    sharpe = getattr(row, "sharpe", None)
    sh = f" · Sharpe {float(sharpe):+.2f}" if isinstance(sharpe, (int, float)) and np.isfinite(sharpe) else ""
    made = day(row.created) + (f" {pd.Timestamp(row.created):%H:%M}" if day(row.created) != "?" else "")
    return (f"{what} · {day(row.start)} → {day(row.end)} · {int(row.symbols)} symbols · {row.freq}{sh} · "
            f"run {made} · {row.run_id}")


class BacktestRuns:
    """List and load saved runs under a settings' data directory."""

    def __init__(self, settings: Settings) -> None:
        from pyplatform.backtest import list_runs, load_run

        self.settings = settings
        self._list, self._load = list_runs, load_run

    def list_runs(self) -> pd.DataFrame:
        """Saved runs, newest first, with ``kinds`` (the strategies' kinds) and ``label``."""
        from pyplatform.backtest.results import runs_dir

        out = self._list(self.settings).copy()
        kinds = []
        for rid in out["run_id"]:
            try:
                cfg = json.loads((runs_dir(self.settings) / rid / "config.json").read_text())
                kinds.append(",".join(sorted({s.get("kind", "") for s in cfg.get("strategies", [])})))
            except (OSError, ValueError):
                kinds.append("")
        out["kinds"] = kinds
        out["label"] = [run_label(r) for r in out.itertuples()]
        return out

    def load(self, run_id: str) -> RunView:
        r = self._load(run_id, self.settings)
        trades = r.trades
        if len(trades):
            ts = trades["ts"].to_numpy()
            ts = ts.astype("datetime64[ns]").astype(np.int64) if np.issubdtype(ts.dtype, np.datetime64) else ts.astype(np.int64)
            trades = pd.DataFrame({"ts": ts, "symbol": trades["symbol"].astype(str).to_numpy(),
                                   "side": trades["side"].to_numpy(), "price": trades["price"].to_numpy(float)})
        else:
            trades = pd.DataFrame({"ts": np.array([], np.int64), "symbol": np.array([], object), "side": [],
                                   "price": []})
        metrics = {k: v for k, v in r.metrics.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        # most traded first, then the run's other symbols (a name with no fills can still be looked at)
        traded = list(trades["symbol"].value_counts().index) if len(trades) else []
        syms = tuple(dict.fromkeys(traded + [str(s) for s in (r.config.get("symbols") or [])]))
        return RunView(r.run_id, r.name, r.symbol, r.equity, trades, metrics, syms)


def open_runs(settings: Settings) -> BacktestRuns:
    """The saved-run store of ``settings`` (raises ImportError while the backtest package is absent)."""
    return BacktestRuns(settings)
