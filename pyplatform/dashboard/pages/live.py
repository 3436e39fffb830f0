"""Live page: quotes, signals, orders, positions, P&L and the risk state, polled from the buffer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, ctx, dcc, html, no_update

from pyplatform.dashboard.context import AppContext
from pyplatform.plots.theme import empty_figure, register_template

__all__ = ["layout", "register", "table", "risk_panel", "session_status"]

_MAX_ROWS = 30


def _num(x: float) -> str:
    """Readable number: thousands separators for large values, 4 significant digits for small."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.4g}"


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{v:,.6g}"
    if isinstance(v, (int, np.integer)) and abs(int(v)) > 10**15:  # ns timestamps
        return f"{pd.Timestamp(int(v)):%H:%M:%S}"
    return str(v)


def table(frame: pd.DataFrame, columns: list[str], empty: str, table_id: str) -> html.Component:
    """A compact HTML table of the newest rows (newest first), or a notice when empty."""
    if frame is None or frame.empty:
        return html.Div(empty, className="status", id=table_id)
    cols = [c for c in columns if c in frame.columns]
    rows = frame.tail(_MAX_ROWS).iloc[::-1][cols].to_numpy().tolist()
    return html.Table(id=table_id, className="simple", children=[
        html.Thead(html.Tr([html.Th(c) for c in cols])),
        html.Tbody([html.Tr([html.Td(_fmt(v)) for v in r]) for r in rows]),
    ])


def session_status(session: dict) -> html.Component:
    """One line on the FIX session (``FixBroker.status()``): state, logons, and the venue's
    own words when it is down -- a refused logon must be seen where the orders are."""
    up = bool(session.get("logged_on"))
    text = f"FIX {session.get('session', '?')} at {session.get('venue', '?')}: {session.get('state', '?')}"
    text += f" · {session.get('logons', 0)} logon(s)"
    if not up and session.get("down_reason"):
        text += f" · {session['down_reason']}"
    elif session.get("last_problem"):
        text += f" · last: {session['last_problem']}"
    return html.Div(text, id="fix-session", className="status kill-off" if up else "status kill-on")


def risk_panel(state: dict) -> html.Component:
    """Kill-switch state and how much of each limit is used."""
    if not state:
        return html.Div("no risk state received yet", className="status", id="risk-panel")
    kill = bool(state.get("kill_switch"))
    items = [html.Div(["kill switch: ", html.Span("ENGAGED" if kill else "off",
                                                  className="kill-on" if kill else "kill-off", id="kill-switch")])]
    if state.get("fix_session"):
        items.append(session_status(state["fix_session"]))
    # other plain facts the risk side reports (mode, reason, loss-limit flag, refusals)
    for key, value in state.items():
        if key not in ("kill_switch", "limits", "fix_session") and value not in ("", None):
            items.append(html.Div(f"{key.replace('_', ' ')}: {value}", className="status"))
    for name, lim in (state.get("limits") or {}).items():
        used, limit = float(lim.get("used", 0.0)), float(lim.get("limit", 0.0))
        frac = used / limit if limit else 0.0
        items.append(html.Div([
            html.Div(f"{name}: {_num(used)} / {_num(limit)} ({frac:.0%})", className="status"),
            html.Div(className="meter high" if frac >= 0.8 else "meter",
                     children=html.Div(style={"width": f"{min(frac, 1.0) * 100:.0f}%"})),
        ]))
    return html.Div(items, id="risk-panel")


def _pnl_figure(pnl: pd.Series):
    if pnl.empty:
        return empty_figure("no P&L yet")
    fig = go.Figure(go.Scatter(x=pnl.index, y=pnl.to_numpy(), mode="lines", name="P&L", fill="tozeroy"))
    fig.update_layout(template=register_template(), title="P&L")
    return fig


def layout(actx: AppContext) -> html.Div:
    card = lambda title, body: html.Div(className="card", children=[html.H3(title), body])  # noqa: E731
    return html.Div(className="page", children=[
        html.Div(id="live-conn-detail", className="status"),
        html.Div(className="grid-3", children=[
            card("quotes", html.Div(id="live-quotes")),
            card("signals", html.Div(id="live-signals")),
            card("risk", html.Div(id="live-risk")),
        ]),
        html.Div(className="grid-2", style={"marginTop": "12px"}, children=[
            card("orders", html.Div(id="live-orders")),
            card("positions", html.Div(id="live-positions")),
        ]),
        html.Div(className="card", style={"marginTop": "12px"},
                 children=dcc.Graph(id="live-pnl", style={"height": "30vh", "minHeight": "220px"})),
        dcc.Store(id="live-page-version"),
    ])


def register(app, actx: AppContext) -> None:
    buf = actx.live

    @app.callback(
        Output("live-quotes", "children"), Output("live-signals", "children"), Output("live-risk", "children"),
        Output("live-orders", "children"), Output("live-positions", "children"), Output("live-pnl", "figure"),
        Output("live-conn-detail", "children"), Output("live-page-version", "data"),
        Input("live-tick", "n_intervals"), State("live-page-version", "data"),
    )
    def _refresh(_n, seen):
        if ctx.triggered_id == "live-tick" and seen == buf.version:
            return (no_update,) * 8
        c = buf.connection
        detail = f"feed {c.state}" + (f" since {pd.Timestamp(c.since_ns):%Y-%m-%d %H:%M:%S} UTC" if c.since_ns else "")
        detail += f" · {c.reconnects} reconnect(s)" + (f" · {c.detail}" if c.detail else "")
        return (
            table(buf.quotes(), ["symbol", "last", "bid", "ask", "volume", "ts"], "no quotes yet", "quotes-table"),
            table(buf.signals(), ["ts", "symbol", "strategy", "direction", "strength"], "no signals yet", "signals-table"),
            risk_panel(buf.risk()),
            table(buf.orders(), ["order_id", "symbol", "side", "qty", "price", "filled", "status"], "no orders yet",
                  "orders-table"),
            table(buf.positions(), ["symbol", "qty", "avg_price", "market_value", "unrealized_pnl"], "no positions",
                  "positions-table"),
            _pnl_figure(buf.pnl()), detail, buf.version,
        )
