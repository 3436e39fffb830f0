"""Backtests page: saved runs, equity and drawdown (compared), monthly returns, trades, metrics.

Runs are listed by what they are (strategy, kinds, date range, symbols, Sharpe, when run) with
the id last; the trades chart shows the symbol picked in its selector -- by default the most
traded one of the first ticked run -- so a 25-symbol run's trades can be read symbol by symbol.
"""

from __future__ import annotations

import numpy as np
from dash import Input, Output, State, ctx, dcc, html, no_update

from pyplatform.dashboard.context import AppContext
from pyplatform.plots.backtest import drawdown_figure, equity_figure, monthly_returns_figure, trades_figure
from pyplatform.plots.theme import empty_figure

__all__ = ["layout", "register", "figures", "metrics_table"]


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:,.4f}" if np.isfinite(v) else "–"
    return str(v)


def metrics_table(runs: dict[str, dict]) -> html.Component:
    """Metrics of the selected runs side by side (one column per run)."""
    if not runs:
        return html.Div("select a run", className="status", id="bt-metrics")
    keys = []
    for m in runs.values():
        keys += [k for k in m if k not in keys]
    return html.Table(id="bt-metrics", className="simple", children=[
        html.Thead(html.Tr([html.Th("metric")] + [html.Th(r) for r in runs])),
        html.Tbody([html.Tr([html.Td(k)] + [html.Td(_fmt(m.get(k, ""))) for m in runs.values()]) for k in keys]),
    ])


def layout(actx: AppContext) -> html.Div:
    runs = actx.backtests
    if runs is None:
        return html.Div(className="page", children=html.Div(
            actx.unavailable.get("backtests", "backtest results are not available"), className="notice",
            id="backtests-unavailable"))
    listing = runs.list_runs()
    options = [{"label": " " + r.label, "value": r.run_id} for r in listing.itertuples()]
    graph = lambda gid, h="32vh": html.Div(className="card", children=dcc.Graph(  # noqa: E731
        id=gid, config={"displaylogo": False}, style={"height": h, "minHeight": "240px"}))
    return html.Div(className="page", children=[
        html.Div(className="grid-main", children=[
            html.Div(className="card", children=[
                html.H3(f"saved runs ({len(options)}) — tick several to compare"),
                dcc.Checklist(id="bt-runs", options=options, value=[options[0]["value"]] if options else [],
                              className="runs-list", labelStyle={"display": "block"}),
            ]),
            html.Div(className="card", children=[html.H3("metrics"), html.Div(id="bt-metrics-box")]),
        ]),
        html.Div(className="controls", style={"marginTop": "12px"}, children=[
            html.Div(className="control wide", children=[html.Label("trades of symbol (first ticked run)"),
                                                         dcc.Dropdown(id="bt-symbol", clearable=False)])]),
        html.Div(className="grid-2", style={"marginTop": "12px"},
                 children=[graph("bt-equity"), graph("bt-drawdown"), graph("bt-monthly"), graph("bt-trades")]),
    ])


def figures(actx: AppContext, selected: list[str], symbol: str | None = None):
    """Equity, drawdown, monthly returns, trades figures and the metrics table for the selection.

    ``symbol`` picks whose trades are drawn (the first run's most traded symbol by default).
    """
    if not selected:
        blank = empty_figure("select a run")
        return blank, blank, blank, blank, metrics_table({})
    loaded = {rid: actx.backtests.load(rid) for rid in selected}
    curves = {rid: r.equity for rid, r in loaded.items()}
    first_id, first = next(iter(loaded.items()))
    sym = symbol if symbol in first.symbols else first.symbol
    trades = empty_figure("no trades / no price history for this run")
    if actx.bars is not None and sym:
        view_bars = actx.bars.daily(sym)
        if len(first.equity):
            lo = int(first.equity.index[0].value)
            hi = int(first.equity.index[-1].value)
            view_bars = view_bars[(view_bars["ts"] >= lo) & (view_bars["ts"] <= hi)]
        if len(view_bars):
            trades = trades_figure(view_bars.tail(3000), first.trades_of(sym), "1d", symbol=sym)
    return (equity_figure(curves), drawdown_figure(curves), monthly_returns_figure(first.equity, name=first_id),
            trades, metrics_table({rid: r.metrics for rid, r in loaded.items()}))


def register(app, actx: AppContext) -> None:
    if actx.backtests is None:
        return

    @app.callback(Output("bt-symbol", "options"), Output("bt-symbol", "value"), Input("bt-runs", "value"),
                  State("bt-symbol", "value"))
    def _symbols(selected, current):
        if not selected:
            return [], None
        run = actx.backtests.load(selected[0])
        n = run.trades["symbol"].value_counts()
        opts = [{"label": f"{s} ({int(n.get(s, 0))} fills)", "value": s} for s in run.symbols]
        return opts, current if current in run.symbols else run.symbol

    @app.callback(Output("bt-equity", "figure"), Output("bt-drawdown", "figure"), Output("bt-monthly", "figure"),
                  Output("bt-trades", "figure"), Output("bt-metrics-box", "children"), Input("bt-runs", "value"),
                  Input("bt-symbol", "value"))
    def _update(selected, symbol):
        if ctx.triggered_id == "bt-runs" and symbol is not None:
            # the symbol selector answers the run change next; draw once, with its choice
            run = actx.backtests.load(selected[0]) if selected else None
            if run is not None and symbol not in run.symbols:
                return (no_update,) * 5
        return figures(actx, selected or [], symbol)
