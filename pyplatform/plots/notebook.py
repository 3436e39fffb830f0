"""Notebook entry points that draw exactly what the Dash pages draw.

``factor_figures`` turns a ``FactorEvaluation`` into the Factors page's figures. The Market
page's K-line for a notebook is ``pp.chart`` (in ``pyplatform.api``): it needs the app's own
chart function, and plots, which the app imports, must not import the app back.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

__all__ = ["factor_figures"]


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
