"""Backtest results: frames, metrics, a Plotly report, and saved runs listed by id.

A run is saved under ``data_dir/backtests/<run_id>/``: one Parquet file per frame and
``config.json`` / ``metrics.json``. :func:`list_runs` and :func:`load_run` read them back
(the Dash Backtests page and the CLI use these).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["BacktestResult", "save_run", "list_runs", "load_run", "runs_dir"]

_FRAMES = ("equity_curve", "trades", "round_trips", "positions", "orders", "signals")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class BacktestResult:
    """Everything a run produced.

    Attributes
    ----------
    equity_curve : DataFrame
        Per bar close (index ``datetime``): equity, cash, market_value, gross, traded.
    trades : DataFrame
        Fills: ts, datetime, symbol, side (+1/-1), quantity, price, fee, client_order_id.
    round_trips : DataFrame
        Closed trades with pnl (after fees) and return.
    positions : DataFrame
        Position per symbol after each fill.
    orders, signals : DataFrame
        Orders the node routed (with final status) and the strategies' signals.
    metrics : dict
        :func:`pyplatform.backtest.metrics.compute_metrics` plus fees and counts.
    config : dict
        Strategies, symbols, range and the realism settings, as JSON-able data.
    """

    run_id: str
    equity_curve: pd.DataFrame
    trades: pd.DataFrame
    round_trips: pd.DataFrame
    positions: pd.DataFrame
    orders: pd.DataFrame
    signals: pd.DataFrame
    metrics: dict[str, Any]
    config: dict[str, Any]
    bars: Any = field(default=None, repr=False)  # the replayed bars (not saved)

    # ------------------------------------------------------------------ views
    @property
    def equity(self) -> pd.Series:
        return self.equity_curve["equity"]

    @property
    def returns(self) -> pd.Series:
        eq = self.equity
        r = eq.pct_change()
        if len(r):
            r.iloc[0] = eq.iloc[0] / float(self.config["backtest"]["capital"]) - 1.0
        return r.rename("returns")

    @property
    def name(self) -> str:
        return ",".join(s.get("name") or s["kind"] for s in self.config.get("strategies", []))

    @property
    def symbol(self) -> str:
        """The most traded symbol (the one the report's trade chart shows)."""
        if not len(self.trades):
            syms = self.config.get("symbols") or []
            return syms[0] if syms else ""
        return str(self.trades["symbol"].value_counts().index[0])

    # ------------------------------------------------------------------ report
    def figures(self, symbol: str | None = None, bars: pd.DataFrame | None = None) -> dict:
        """The four report charts as separate figures (for Dash): equity, drawdown, monthly, trades."""
        from pyplatform.plots.backtest import drawdown_figure, equity_figure, monthly_returns_figure, trades_figure

        name = self.name or self.run_id
        eq = self.equity
        if len(eq) > 5000:
            # a browser chart of 10^5+ minute points is slow; the day's last equity is plenty to read
            eq = eq.resample("1D").last().dropna()
        curves = {name: eq}
        sym = symbol or self.symbol
        figs = {"equity": equity_figure(curves), "drawdown": drawdown_figure(curves),
                "monthly": monthly_returns_figure(self.equity, name=name)}
        px = bars if bars is not None else self._symbol_bars(sym)
        if px is not None and len(px):
            tf = "1d" if self.config["backtest"]["freq"] == "1d" else "1m"
            tr = self.trades[self.trades["symbol"] == sym]
            figs["trades"] = trades_figure(px, tr, tf, symbol=sym)
        return figs

    def _symbol_bars(self, sym: str) -> pd.DataFrame | None:
        if self.bars is None or not sym:
            return None
        import pyarrow.compute as pc

        t = self.bars.filter(pc.equal(self.bars.column("symbol"), sym))
        return t.to_pandas().tail(3000).reset_index(drop=True)

    def report(self, symbol: str | None = None, bars: pd.DataFrame | None = None):
        """One Plotly figure: equity, drawdown, monthly returns heat-map, trades on price."""
        from plotly.subplots import make_subplots

        figs = self.figures(symbol, bars)
        keys = [k for k in ("equity", "drawdown", "monthly", "trades") if k in figs]
        fig = make_subplots(rows=len(keys), cols=1, subplot_titles=keys, vertical_spacing=0.06)
        for row, k in enumerate(keys, start=1):
            for tr in figs[k].data:
                if k == "trades" and getattr(tr, "type", "") == "bar":
                    continue  # the volume pane of the candlestick chart
                fig.add_trace(tr, row=row, col=1)
        fig.update_layout(template=figs["equity"].layout.template, height=320 * len(keys),
                          title=f"backtest {self.run_id} {self.name}", showlegend=False)
        for row in range(1, len(keys) + 1):
            fig.update_xaxes(rangeslider_visible=False, row=row, col=1)
        return fig

    def metrics_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"value": pd.Series(self.metrics, dtype=object)})

    def _repr_html_(self) -> str:
        head = f"<h4>backtest {self.run_id} &middot; {self.name}</h4>"
        return head + self.metrics_frame().to_html() + self.report().to_html(include_plotlyjs="cdn", full_html=False)

    def __repr__(self) -> str:
        m = self.metrics
        return (f"BacktestResult({self.run_id}: {self.name}, total_return={m.get('total_return', float('nan')):.4f}, "
                f"sharpe={m.get('sharpe', float('nan')):.3f}, fills={len(self.trades)})")


def runs_dir(settings) -> Path:
    return Path(settings.path("backtests"))


def new_run_id(clock_ns: int, name: str) -> str:
    stamp = pd.Timestamp(clock_ns, unit="ns").strftime("%Y%m%dT%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", name)[:40] or "run"
    return f"{stamp}-{slug}-{uuid.uuid4().hex[:6]}"


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def save_run(result: BacktestResult, settings) -> Path:
    """Write the run under ``data_dir/backtests/<run_id>/``; returns that directory."""
    d = runs_dir(settings) / result.run_id
    d.mkdir(parents=True, exist_ok=False)
    for name in _FRAMES:
        frame = getattr(result, name)
        frame.to_parquet(d / f"{name}.parquet", index=name == "equity_curve")
    (d / "config.json").write_text(json.dumps(result.config, indent=2, sort_keys=True, default=str))
    (d / "metrics.json").write_text(json.dumps({k: _jsonable(v) for k, v in result.metrics.items()},
                                               indent=2, sort_keys=True))
    return d


def list_runs(settings) -> pd.DataFrame:
    """Saved runs, newest first: run_id, name, created, freq, symbols, start, end and headline metrics."""
    rows = []
    base = runs_dir(settings)
    for d in sorted(base.iterdir()) if base.exists() else []:
        try:
            cfg = json.loads((d / "config.json").read_text())
            met = json.loads((d / "metrics.json").read_text())
        except (OSError, ValueError):
            continue  # a run being written or a stray folder
        rows.append({"run_id": d.name,
                     "name": ",".join(s.get("name") or s["kind"] for s in cfg.get("strategies", [])),
                     "created": cfg.get("created"), "freq": cfg["backtest"]["freq"],
                     "symbols": len(cfg.get("symbols") or []), "start": cfg.get("start"), "end": cfg.get("end"),
                     "total_return": met.get("total_return"), "sharpe": met.get("sharpe"),
                     "max_drawdown": met.get("max_drawdown"), "n_trades": met.get("n_trades")})
    cols = ["run_id", "name", "created", "freq", "symbols", "start", "end", "total_return", "sharpe",
            "max_drawdown", "n_trades"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["created", "run_id"], ascending=False, kind="stable").reset_index(drop=True)


def load_run(run_id: str, settings) -> BacktestResult:
    """A saved run by id.

    Raises
    ------
    KeyError
        Naming the id and the ids that exist.
    """
    d = runs_dir(settings) / run_id
    if not _RUN_ID.match(run_id) or not (d / "config.json").exists():
        known = list_runs(settings)["run_id"].tolist()
        raise KeyError(f"no backtest run {run_id!r} under {runs_dir(settings)} (runs: {known[:10]})")
    frames = {name: pd.read_parquet(d / f"{name}.parquet") for name in _FRAMES}
    met = json.loads((d / "metrics.json").read_text())
    met = {k: (float("nan") if v is None else float(v) if v in ("inf", "-inf") else v) for k, v in met.items()}
    return BacktestResult(run_id, metrics=met, config=json.loads((d / "config.json").read_text()), **frames)
