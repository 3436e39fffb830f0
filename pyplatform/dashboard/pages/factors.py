"""Factors page: pick a factor and a universe; values, rank IC, decay, quantiles, turnover, correlation.

A factor not evaluated yet runs as a background job (``FactorData.start``); the page polls it
and shows its stage and a progress bar instead of a bare spinner, then draws from the cache.
Other factors can be put side by side: their IC summaries in one table and their cumulative
rank IC on one chart, each evaluated (and cached) the same way.
"""

from __future__ import annotations

from dash import Input, Output, State, ctx, dcc, html, no_update

from pyplatform.dashboard.context import AppContext
from pyplatform.plots.factors import (
    correlation_figure, factor_values_figure, ic_comparison_figure, ic_decay_figure, ic_figure,
    quantile_returns_figure, turnover_figure,
)
from pyplatform.plots.theme import empty_figure

__all__ = ["layout", "register", "figures", "comparison"]

_GRAPHS = ["factor-values", "factor-ic", "factor-decay", "factor-quantiles", "factor-turnover", "factor-corr"]
#: Most factors side by side (besides the chosen one).
MAX_COMPARE = 5


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
    opts = [{"label": f"{n}: {fd.library[n]}", "value": n} for n in names]
    return html.Div(className="page", children=[
        html.Div(className="controls", children=[
            html.Div(className="control wide", children=[html.Label("factor"), dcc.Dropdown(
                id="factor-name", options=opts, value=names[0] if names else None, clearable=False)]),
            html.Div(className="control", children=[html.Label("universe"), dcc.Dropdown(
                id="factor-universe", value=unis[0] if unis else None, clearable=False,
                options=[{"label": "all (calendars mixed)" if u == "all" else u, "value": u} for u in unis])]),
            html.Div(className="control wide", children=[html.Label("side by side with"), dcc.Dropdown(
                id="factor-compare", options=opts, value=[], multi=True, placeholder="add factors to compare")]),
        ]),
        html.Div(id="factor-progress", className="progress"),
        html.Div(id="factor-status", className="status"),
        dcc.Interval(id="factor-poll", interval=250, disabled=True),
        html.Div(className="grid-2", children=[graph(g) for g in _GRAPHS]),
        html.Div(className="grid-main", style={"marginTop": "12px"}, children=[
            html.Div(className="card", children=dcc.Graph(id="factor-compare-ic", config={"displaylogo": False},
                                                          style={"height": "34vh", "minHeight": "260px"})),
            html.Div(className="card", children=[html.H3("side by side (mean rank IC / IR per horizon)"),
                                                 html.Div(id="factor-compare-table", className="scroll-x")]),
        ]),
    ])


def figures(actx: AppContext, name: str | None, universe: str | None, result=None):
    """The six figures and a status line for one (factor, universe) choice."""
    if not name or not universe:
        blank = empty_figure("pick a factor and a universe")
        return (blank,) * 6 + ("",)
    try:
        r = result if result is not None else actx.factors.evaluate(name, universe)
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


def comparison(results: dict) -> tuple:
    """Cumulative-IC figure and summary table of evaluated factors side by side.

    ``results``: name -> ``FactorResult`` (the chosen factor first).
    """
    if len(results) < 2:
        return (empty_figure("add factors under 'side by side with' to compare them"),
                html.Div("one factor chosen", className="status", id="factor-compare-summary"))
    horizons = list(next(iter(results.values())).evaluation.summary.index)
    h0 = horizons[0]
    fig = ic_comparison_figure({n: r.evaluation.ic[h0] for n, r in results.items() if h0 in r.evaluation.ic},
                               horizon=str(h0))
    head = [html.Th("factor")] + [html.Th(f"IC {h}") for h in horizons] + [html.Th(f"IR {h}") for h in horizons] \
        + [html.Th("dates")]
    rows = []
    for n, r in results.items():
        s = r.evaluation.summary
        rows.append(html.Tr([html.Td(n)] + [html.Td(f"{s.loc[h, 'ic_mean']:+.4f}") for h in horizons]
                            + [html.Td(f"{s.loc[h, 'ir']:+.3f}") for h in horizons]
                            + [html.Td(f"{int(s.loc[h0, 'n_dates'])}")]))
    table = html.Table(id="factor-compare-summary", className="simple compare",
                       children=[html.Thead(html.Tr(head)), html.Tbody(rows)])
    return fig, table


def _progress(jobs) -> html.Div:
    running = [j for j in jobs if not j.done]
    if not running:
        return html.Div()
    frac = sum(j.fraction for j in jobs) / len(jobs)
    stages = "; ".join(f"{j.name}: {j.stage}" for j in running)
    return html.Div(id="factor-progress-bar", children=[
        html.Div(className="meter", children=html.Div(style={"width": f"{100 * frac:.0f}%"})),
        html.Div(f"evaluating over {running[0].universe} — {100 * frac:.0f}% · {stages}", className="stage")])


def register(app, actx: AppContext) -> None:
    if actx.factors is None:
        return
    fd = actx.factors

    @app.callback(*[Output(g, "figure") for g in _GRAPHS], Output("factor-status", "children"),
                  Output("factor-progress", "children"), Output("factor-poll", "disabled"),
                  Output("factor-compare-ic", "figure"), Output("factor-compare-table", "children"),
                  Input("factor-name", "value"), Input("factor-universe", "value"), Input("factor-compare", "value"),
                  Input("factor-poll", "n_intervals"), State("factor-status", "children"))
    def _update(name, universe, compare, _n, shown):
        if not name or not universe:
            return figures(actx, name, universe) + (html.Div(), True) + comparison({})
        wanted = [name] + [c for c in (compare or []) if c != name][:MAX_COMPARE]
        jobs = [fd.start(n, universe) for n in wanted]
        main = jobs[0]
        if not main.done:
            # keep the previous charts up while the new factor evaluates; say what is happening
            return (no_update,) * 6 + (f"evaluating {name} over {universe}…", _progress(jobs), False,
                                       no_update, no_update)
        if main.error:
            blank = empty_figure(f"{name} on {universe}: {main.error}")
            return (blank,) * 6 + (f"could not evaluate {name} on {universe}: {main.error}", html.Div(), True) \
                + comparison({})
        pending = [j for j in jobs if not j.done]
        drawn = ctx.triggered_id == "factor-poll" and str(shown or "").startswith(f"{name} on {universe}:")
        # while only the compared factors are still running, the chosen one's charts stay as drawn
        main_out = (no_update,) * 7 if drawn else figures(actx, name, universe, result=main.result)
        if pending:
            return main_out + (_progress(jobs), False, no_update, no_update)
        done = {j.name: j.result for j in jobs if j.done and j.result is not None}
        return main_out + (html.Div(), True) + comparison(done)
