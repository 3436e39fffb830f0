"""Factors page: pick a factor and a universe; values, rank IC, decay, quantiles, turnover, correlation."""

from __future__ import annotations

from dash import Input, Output, dcc, html

from pyplatform.dashboard.context import AppContext
from pyplatform.plots.factors import (
    correlation_figure, factor_values_figure, ic_decay_figure, ic_figure, quantile_returns_figure,
    turnover_figure,
)
from pyplatform.plots.theme import empty_figure

__all__ = ["layout", "register", "figures"]

_GRAPHS = ["factor-values", "factor-ic", "factor-decay", "factor-quantiles", "factor-turnover", "factor-corr"]


def layout(actx: AppContext) -> html.Div:
    fd = actx.factors
    if fd is None:
        return html.Div(className="page", children=html.Div(
            actx.unavailable.get("factors", "factor research is not available"), className="notice",
            id="factors-unavailable"))
    names = list(fd.library)
    unis = list(fd.universes)
    graph = lambda gid: html.Div(className="card", children=dcc.Graph(  # noqa: E731
        id=gid, config={"displaylogo": False}, style={"height": "34vh", "minHeight": "260px"}))
    return html.Div(className="page", children=[
        html.Div(className="controls", children=[
            html.Div(className="control wide", children=[html.Label("factor"), dcc.Dropdown(
                id="factor-name", options=[{"label": f"{n}: {fd.library[n]}", "value": n} for n in names],
                value=names[0] if names else None, clearable=False)]),
            html.Div(className="control", children=[html.Label("universe"), dcc.Dropdown(
                id="factor-universe", value=unis[0] if unis else None, clearable=False,
                options=[{"label": "all (calendars mixed)" if u == "all" else u, "value": u} for u in unis])]),
        ]),
        html.Div(id="factor-status", className="status"),
        dcc.Loading(type="dot", children=html.Div(className="grid-2", children=[graph(g) for g in _GRAPHS])),
    ])


def figures(actx: AppContext, name: str | None, universe: str | None):
    """The six figures and a status line for one (factor, universe) choice."""
    if not name or not universe:
        blank = empty_figure("pick a factor and a universe")
        return (blank,) * 6 + ("",)
    try:
        r = actx.factors.evaluate(name, universe)
    except Exception as exc:  # noqa: BLE001 - shown to the user, named
        blank = empty_figure(f"{name} on {universe}: {exc}")
        return (blank,) * 6 + (f"could not evaluate {name} on {universe}: {exc}",)
    ev = r.evaluation
    first = ev.summary.iloc[0]
    status = (f"{name} on {universe}: mean rank IC ({ev.summary.index[0]}) {first['ic_mean']:+.4f}, "
              f"IR {first['ir']:+.3f}, {int(first['n_dates'])} dates")
    syms = list(r.values.index.get_level_values("symbol").unique()[:2])
    return (
        factor_values_figure(r.values, name=name, highlight=syms),
        ic_figure(ev.ic, name=name),
        ic_decay_figure(ev.decay, name=name),
        quantile_returns_figure(ev.quantile_returns, name=name),
        turnover_figure(ev.turnover, name=name),
        correlation_figure(r.correlation),
        status,
    )


def register(app, actx: AppContext) -> None:
    if actx.factors is None:
        return

    @app.callback(*[Output(g, "figure") for g in _GRAPHS], Output("factor-status", "children"),
                  Input("factor-name", "value"), Input("factor-universe", "value"))
    def _update(name, universe):
        return figures(actx, name, universe)
