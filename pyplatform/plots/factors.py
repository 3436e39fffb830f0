"""Factor research charts: values, rank IC, IC decay, quantile returns, turnover, correlation.

Inputs are the frames :mod:`pyplatform.research.evaluation` returns (a ``FactorEvaluation``'s
fields), so the notebook and the Dash factor page draw identical figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pyplatform.plots.theme import ACCENT, DOWN, MUTED, PALETTE, UP, empty_figure, register_template

__all__ = ["factor_values_figure", "ic_figure", "ic_decay_figure", "quantile_returns_figure", "ic_comparison_figure",
           "turnover_figure", "correlation_figure"]


def _layout(fig: go.Figure, title: str, height: int | None) -> go.Figure:
    fig.update_layout(template=register_template(), title=title)
    if height:
        fig.update_layout(height=height)
    return fig


def factor_values_figure(values: pd.Series, *, name: str = "factor", highlight: list[str] | None = None,
                         height: int | None = None) -> go.Figure:
    """Cross-sectional median and 10-90% band of a factor over time, plus highlighted symbols.

    Parameters
    ----------
    values : Series
        Factor values indexed by ``(datetime, symbol)``.
    highlight : list of str, optional
        Symbols drawn as their own lines (at most a handful keeps it readable).
    """
    if values is None or values.dropna().empty:
        return empty_figure(f"no values for {name}", height)
    wide = values.unstack("symbol").sort_index()
    q = wide.quantile([0.1, 0.5, 0.9], axis=1).T
    x = q.index
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=q[0.9], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=q[0.1], mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor="rgba(66,165,245,0.18)", name="10-90% of universe"))
    fig.add_trace(go.Scatter(x=x, y=q[0.5], mode="lines", name="median", line=dict(color="#42a5f5", width=1.5)))
    for i, sym in enumerate(highlight or []):
        if sym in wide.columns:
            fig.add_trace(go.Scatter(x=x, y=wide[sym], mode="lines", name=sym,
                                     line=dict(width=1, color=PALETTE[(i + 1) % len(PALETTE)])))
    return _layout(fig, f"{name}: values across the universe", height)


def ic_figure(ic: pd.DataFrame, *, horizon: str | None = None, window: int = 21, name: str = "factor",
              height: int | None = None) -> go.Figure:
    """Daily rank IC (bars) with its rolling mean (line) for one horizon.

    Parameters
    ----------
    ic : DataFrame
        Dates x horizons, as ``rank_ic`` returns.
    horizon : str, optional
        Column to draw; the first one by default.
    window : int
        Rolling-mean length in periods.
    """
    if ic is None or ic.empty:
        return empty_figure(f"no IC for {name}", height)
    h = horizon or ic.columns[0]
    s = ic[h]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=s.index, y=s.to_numpy(), name=f"rank IC ({h})",
                         marker=dict(color=np.where(s.to_numpy() >= 0, UP, DOWN), line=dict(width=0))))
    fig.add_trace(go.Scatter(x=s.index, y=s.rolling(window, min_periods=max(1, window // 2)).mean(),
                             mode="lines", name=f"{window}-period mean", line=dict(color=ACCENT, width=1.5)))
    fig.add_hline(y=float(s.mean()), line=dict(color=MUTED, dash="dot", width=1),
                  annotation_text=f"mean {s.mean():+.4f}", annotation_position="top left")
    fig.update_layout(bargap=0)
    return _layout(fig, f"{name}: rank IC", height)


def ic_decay_figure(decay: pd.Series, *, name: str = "factor", height: int | None = None) -> go.Figure:
    """Mean rank IC against the forward-return horizon."""
    if decay is None or decay.dropna().empty:
        return empty_figure(f"no IC decay for {name}", height)
    fig = go.Figure(go.Scatter(x=[str(h) for h in decay.index], y=decay.to_numpy(), mode="lines+markers",
                               name="mean rank IC", line=dict(color=ACCENT)))
    fig.add_hline(y=0, line=dict(color=MUTED, width=1))
    fig.update_xaxes(title_text="horizon", type="category")
    return _layout(fig, f"{name}: IC decay", height)


def quantile_returns_figure(qr: pd.DataFrame, *, name: str = "factor", height: int | None = None) -> go.Figure:
    """Mean (demeaned) forward return per factor quantile, one bar group per horizon, in bp."""
    if qr is None or qr.empty:
        return empty_figure(f"no quantile returns for {name}", height)
    fig = go.Figure()
    for i, h in enumerate(qr.columns):
        fig.add_trace(go.Bar(x=[f"Q{int(q)}" for q in qr.index], y=qr[h].to_numpy() * 1e4, name=str(h),
                             marker=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_layout(barmode="group", yaxis_title="mean return (bp)")
    return _layout(fig, f"{name}: returns by quantile", height)


def turnover_figure(turnover: pd.DataFrame, *, name: str = "factor", height: int | None = None) -> go.Figure:
    """Turnover of the top and bottom quantiles over time."""
    if turnover is None or turnover.dropna(how="all").empty:
        return empty_figure(f"no turnover for {name}", height)
    fig = go.Figure()
    cols = [turnover.columns[0], turnover.columns[-1]] if len(turnover.columns) > 1 else list(turnover.columns)
    for col, color in zip(cols, (DOWN, UP)):
        fig.add_trace(go.Scatter(x=turnover.index, y=turnover[col], mode="lines", name=f"Q{col}",
                                 line=dict(color=color, width=1.2)))
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, f"{name}: quantile turnover", height)


def correlation_figure(corr: pd.DataFrame, *, height: int | None = None) -> go.Figure:
    """Heatmap of mean cross-sectional rank correlation between factors."""
    if corr is None or corr.empty:
        return empty_figure("no factors to correlate", height)
    z = corr.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=list(corr.columns), y=list(corr.index), zmin=-1, zmax=1,
                               colorscale="RdBu", reversescale=True, text=np.round(z, 2),
                               texttemplate="%{text}", hovertemplate="%{y} / %{x}: %{z:.3f}<extra></extra>"))
    # factor names are long: let the axes take the margin their labels need (they were cut off)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True, tickangle=-30)
    fig = _layout(fig, "rank correlation between factors", height)
    fig.update_layout(margin=dict(l=10))  # automargin grows it from here to fit the labels
    return fig


def ic_comparison_figure(ics: dict[str, pd.Series], *, horizon: str = "", height: int | None = None) -> go.Figure:
    """Cumulative rank IC of several factors on one chart (factors side by side).

    Parameters
    ----------
    ics : dict of name to Series
        Each factor's daily rank IC for one horizon (a column of ``FactorEvaluation.ic``).
        A factor with a steadily positive IC climbs; one that is noise wanders around zero.
    horizon : str
        Named in the title.
    """
    ics = {k: v.dropna() for k, v in (ics or {}).items() if v is not None and len(v.dropna())}
    if not ics:
        return empty_figure("pick factors to compare", height)
    fig = go.Figure()
    for i, (name, s) in enumerate(ics.items()):
        fig.add_trace(go.Scatter(x=s.index, y=s.cumsum().to_numpy(), mode="lines", name=name,
                                 line=dict(width=1.5, color=PALETTE[i % len(PALETTE)])))
    fig.add_hline(y=0, line=dict(color=MUTED, width=1))
    fig.update_layout(yaxis_title="cumulative rank IC",
                      legend=dict(orientation="h", x=0, y=-0.15, yanchor="top"))
    return _layout(fig, f"factors side by side: cumulative rank IC{f' ({horizon})' if horizon else ''}", height)
