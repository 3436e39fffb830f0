"""Notebook entry points that draw exactly what the Dash pages draw.

``chart`` is the Market page's K-line (same down-sampling, same figure function) for a
notebook cell; ``factor_figures`` turns a ``FactorEvaluation`` into the Factors page's figures.
The notebook API (``pyplatform.api``) can expose them as verbs.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

__all__ = ["chart", "factor_figures"]


def _ns(t) -> int | None:
    return None if t is None else int(pd.Timestamp(t).value)


def chart(symbol: str, timeframe: str = "1d", start=None, end=None, overlays=(), panels=(), *,
          settings=None, cap: int = 3000) -> go.Figure:
    """K-line of ``symbol`` from the history store, at most ``cap`` candles.

    Parameters
    ----------
    symbol : str
    timeframe : str
        ``1m 5m 15m 30m 1h 4h 1d 1w 1M``; a coarser one is used when the window would
        exceed ``cap`` candles (the title says which).
    start, end : date-like, optional
        Window (``start <= ts < end``); the whole history by default.
    overlays, panels : sequence of str
        Factor-library names drawn on the price / in lower panels.
    settings : Settings, optional
    """
    from pyplatform.config import get_settings
    from pyplatform.dashboard.context import AppContext
    from pyplatform.dashboard.data import StoreBarSource
    from pyplatform.dashboard.live import LiveBuffer
    from pyplatform.dashboard.pages.market import build_chart
    from pyplatform.backends import open_store

    settings = settings or get_settings()
    actx = AppContext(settings=settings, bars=StoreBarSource(open_store(settings)), live=LiveBuffer(), cap=cap)
    fig, status, _ = build_chart(actx, symbol, timeframe, list(overlays), list(panels), _ns(start), _ns(end), False)
    fig.update_layout(title=dict(text=status))
    return fig


def factor_figures(evaluation, values: pd.Series | None = None,
                   correlation: pd.DataFrame | None = None) -> dict[str, go.Figure]:
    """The Factors page's figures for a :class:`pyplatform.research.evaluation.FactorEvaluation`."""
    from pyplatform.plots.factors import (
        correlation_figure, factor_values_figure, ic_decay_figure, ic_figure, quantile_returns_figure,
        turnover_figure,
    )

    name = evaluation.name
    figs = {"ic": ic_figure(evaluation.ic, name=name), "decay": ic_decay_figure(evaluation.decay, name=name),
            "quantiles": quantile_returns_figure(evaluation.quantile_returns, name=name),
            "turnover": turnover_figure(evaluation.turnover, name=name)}
    if values is not None:
        figs["values"] = factor_values_figure(values, name=name)
    if correlation is not None:
        figs["correlation"] = correlation_figure(correlation)
    return figs
