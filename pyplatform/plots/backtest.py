"""Backtest charts: equity (one or several runs), drawdown, monthly returns, trades on price.

The small computations the charts need (drawdown, monthly returns) are pure functions here
so that tests can check them against pandas/empyrical and notebooks can reuse them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pyplatform.plots.price_charts import candlestick_figure
from pyplatform.plots.theme import DOWN, PALETTE, UP, empty_figure, register_template

__all__ = ["drawdown", "monthly_returns", "equity_figure", "drawdown_figure", "monthly_returns_figure",
           "trades_figure"]


def drawdown(equity: pd.Series) -> pd.Series:
    """Fractional distance below the running peak (0 at a new high, negative below it)."""
    peak = equity.cummax()
    return equity / peak - 1.0


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month as a year x month (1..12) table.

    The first month is measured from the first equity point (the curve carries no capital
    from before it); later months compound from the previous month end, as empyrical does.
    """
    if equity.empty:
        return pd.DataFrame()
    month_end = equity.resample("ME").last()
    first = equity.iloc[0]
    rets = month_end.pct_change()
    rets.iloc[0] = month_end.iloc[0] / first - 1.0
    table = pd.DataFrame({"year": rets.index.year, "month": rets.index.month, "ret": rets.to_numpy()})
    return table.pivot(index="year", columns="month", values="ret")


def _layout(fig: go.Figure, title: str, height: int | None) -> go.Figure:
    fig.update_layout(template=register_template(), title=title)
    if height:
        fig.update_layout(height=height)
    return fig


def equity_figure(curves: Mapping[str, pd.Series], *, normalise: bool = True, height: int | None = None) -> go.Figure:
    """Equity curves of one or more runs; ``normalise`` rebases each to 1.0 to compare runs."""
    curves = {k: v for k, v in curves.items() if v is not None and len(v)}
    if not curves:
        return empty_figure("no equity curve", height)
    fig = go.Figure()
    for i, (name, eq) in enumerate(curves.items()):
        y = eq / eq.iloc[0] if normalise else eq
        fig.add_trace(go.Scatter(x=eq.index, y=y, mode="lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=1.5)))
    return _layout(fig, "equity" + (" (rebased to 1)" if normalise else ""), height)


def drawdown_figure(curves: Mapping[str, pd.Series], *, height: int | None = None) -> go.Figure:
    """Drawdown of one or more equity curves."""
    curves = {k: v for k, v in curves.items() if v is not None and len(v)}
    if not curves:
        return empty_figure("no equity curve", height)
    fig = go.Figure()
    for i, (name, eq) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=eq.index, y=drawdown(eq), mode="lines", name=name, fill="tozeroy",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=1)))
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "drawdown", height)


def monthly_returns_figure(equity: pd.Series, *, name: str = "", height: int | None = None) -> go.Figure:
    """Heatmap of compounded monthly returns (years down, months across)."""
    table = monthly_returns(equity) if equity is not None else pd.DataFrame()
    if table.empty:
        return empty_figure("no monthly returns", height)
    table = table.reindex(columns=range(1, 13))
    z = table.to_numpy(dtype=float)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    text = np.where(np.isfinite(z), np.char.mod("%.1f%%", np.nan_to_num(z) * 100), "")
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.01
    fig = go.Figure(go.Heatmap(z=z, x=months, y=[str(y) for y in table.index], zmid=0, zmin=-lim, zmax=lim,
                               colorscale=[[0, DOWN], [0.5, "#151b2b"], [1, UP]], text=text,
                               texttemplate="%{text}", hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>"))
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, f"monthly returns {name}".strip(), height)


def trades_figure(bars: pd.DataFrame, trades: pd.DataFrame, tf: str = "1d", *, symbol: str = "",
                  height: int | None = None) -> go.Figure:
    """Trades marked on the price chart (buys ▲ green below, sells ▼ red above).

    Parameters
    ----------
    bars : DataFrame
        ``ts`` (int64 ns) and OHLCV, as for :func:`candlestick_figure`.
    trades : DataFrame
        ``ts`` (int64 ns), ``side`` (+1 buy / -1 sell), ``price``. Each trade is placed on the
        bar whose window contains it.
    """
    fig = candlestick_figure(bars, tf, symbol=symbol, title=f"{symbol} trades", height=height)
    if trades is None or len(trades) == 0 or len(bars) == 0:
        return fig
    bar_ts = bars["ts"].to_numpy(np.int64)
    idx = np.searchsorted(bar_ts, trades["ts"].to_numpy(np.int64), side="right") - 1
    keep = idx >= 0
    labels = np.asarray(fig.data[0].x)
    side = trades["side"].to_numpy()[keep]
    price = trades["price"].to_numpy(float)[keep]
    x = labels[idx[keep]]
    for mask, name, sym, color in ((side > 0, "buy", "triangle-up", UP), (side < 0, "sell", "triangle-down", DOWN)):
        if mask.any():
            fig.add_trace(go.Scatter(x=x[mask], y=price[mask], mode="markers", name=name, xaxis="x", yaxis="y",
                                     marker=dict(symbol=sym, size=10, color=color, line=dict(width=1, color="#fff"))))
    return fig
