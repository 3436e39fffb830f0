"""Market page: K-line with volume and indicators, intraday chart and order-book depth.

The K-line's x axis is a category axis (no gaps for nights, weekends, holidays), so a zoom
reports bar *indices*; the page keeps the shown bars' start times in a ``dcc.Store`` and maps
indices back to a time window, which the server re-aggregates at a finer timeframe.

The page's state (symbol, timeframe, window, overlays, panels, compared symbols, log axis,
expression) is written into the URL's query string after each draw and read back when the
page is opened, so a link reproduces the chart. A watchlist lives in the browser's local
storage; ``assets/shortcuts.js`` adds keyboard shortcuts and ``assets/crosshair.js`` the
price label of the crosshair.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlencode

import numpy as np
import pandas as pd
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from pyplatform.dashboard.context import AppContext
from pyplatform.dashboard.data import MarketView, market_view, warmup_bars
from pyplatform.dashboard.indicators import indicator_values, library, library_error, lookback_of, on_price_scale
from pyplatform.dashboard.live_buffer import merge_live_bars
from pyplatform.plots.downsample import DAY_NS, LADDER, MINUTE_NS, timeframe
from pyplatform.plots.price_charts import candlestick_figure, depth_figure, intraday_figure
from pyplatform.plots.theme import empty_figure

__all__ = ["layout", "register", "window_from_relayout", "build_chart", "expression_error", "view_csv", "LIVE_DAYS",
           "parse_query", "state_query", "compare_lines", "watchlist_rows"]

#: Trading days shown in live mode (the chart follows the newest bars).
LIVE_DAYS = 3
#: Most symbols compared with the chart's own (each is one more line on the price axis).
MAX_COMPARE = 5


def _ns_text(ns: int | None) -> str | None:
    if ns is None:
        return None
    t = pd.Timestamp(int(ns))
    return f"{t:%Y-%m-%d}" if t == t.normalize() else f"{t:%Y-%m-%dT%H:%M}"


def _text_ns(text: str | None) -> int | None:
    """A date or ISO minute from the URL as ns, None when absent or not a date (never eval'd)."""
    if not text or len(text) > 32:
        return None
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return None
    if t is pd.NaT or t.tzinfo is not None:
        return None
    return int(t.value)


def parse_query(search: str | None, symbols: list[str], library_names) -> dict:
    """The chart state a URL's query string asks for, keeping only what is valid here.

    Unknown symbols, timeframes, factor names and malformed dates are dropped (a shared link
    from another data directory still opens); the expression is only ever parsed, never run
    as code.
    """
    q = parse_qs((search or "").lstrip("?"), keep_blank_values=False, max_num_fields=20)
    one = lambda k: (q.get(k) or [None])[0]  # noqa: E731
    many = lambda k: [x for v in q.get(k, []) for x in v.split(",") if x]  # noqa: E731
    names = {t.name for t in LADDER}
    lib = set(library_names)
    out: dict = {}
    if one("symbol") in symbols:
        out["symbol"] = one("symbol")
    if one("tf") in names:
        out["tf"] = one("tf")
    start, end = _text_ns(one("start")), _text_ns(one("end"))
    if start is not None and end is not None and end > start:
        out["start"], out["end"] = start, end
    for key in ("overlays", "panels"):
        got = [n for n in many(key) if n in lib]
        if got:
            out[key] = got
    cmp_ = [s for s in many("compare") if s in symbols][:MAX_COMPARE]
    if cmp_:
        out["compare"] = cmp_
    if one("log") == "1":
        out["log"] = True
    expr = one("expr")
    if expr and len(expr) <= 500:
        out["expr"] = expr
    return out


def state_query(view: dict | None, tf: str | None, overlays, panels, compare, log_value, expr) -> str:
    """The query string (``?symbol=...&tf=...``) that reproduces the drawn chart."""
    if not view or not view.get("symbol"):
        return ""
    q: dict = {"symbol": view["symbol"], "tf": tf or view.get("tf") or "1d"}
    if view.get("start") is not None and view.get("end") is not None:
        q["start"], q["end"] = _ns_text(view["start"]), _ns_text(view["end"])
    for key, vals in (("overlays", overlays), ("panels", panels), ("compare", compare)):
        if vals:
            q[key] = ",".join(vals)
    if "log" in (log_value or []):
        q["log"] = "1"
    if expr and expr.strip():
        q["expr"] = expr.strip()
    return "?" + urlencode(q)


def compare_lines(actx: AppContext, symbol: str, bars: pd.DataFrame, shown, others) -> tuple[dict, list]:
    """Other symbols' closes on this chart's candles, rebased to its first candle's close.

    Each other symbol is read at the same timeframe over the same window and aligned on the
    candle start times (its last close at or before each candle: calendars differ), then
    scaled by ``close[symbol][first] / close[other][first]``, so the lines start where the
    candles start and show relative performance on the price axis.

    Returns
    -------
    (dict, list)
        ``{"OTHER (rebased)": values}`` and notes for what could not be drawn.
    """
    lines, notes = {}, []
    if not len(bars):
        return lines, notes
    ts = bars["ts"].to_numpy(np.int64)
    main = bars["close"].to_numpy(float)
    lo, hi = int(ts[0]), int(ts[-1]) + shown.nominal_ns
    for other in [o for o in others or [] if o != symbol][:MAX_COMPARE]:
        try:
            ov = market_view(actx.bars, other, shown, lo, hi, cap=max(4 * len(ts), actx.cap), daily_cap=max(4 * len(ts), 10_000))
        except ValueError as exc:
            notes.append(f"{other}: {exc}")
            continue
        ob = ov.bars
        if not len(ob):
            notes.append(f"{other}: no bars in this window")
            continue
        ots = ob["ts"].to_numpy(np.int64)
        oc = ob["close"].to_numpy(float)
        idx = np.searchsorted(ots, ts, side="right") - 1
        vals = np.where(idx >= 0, oc[np.clip(idx, 0, None)], np.nan)
        ok = np.flatnonzero(np.isfinite(vals) & np.isfinite(main))
        if not len(ok):
            notes.append(f"{other}: no bars before this window's candles")
            continue
        j = ok[0]
        lines[f"{other} (rebased)"] = vals * (main[j] / vals[j])
    return lines, notes


def watchlist_rows(actx: AppContext, symbols: list[str] | None) -> list[tuple[str, float | None, float | None]]:
    """(symbol, last close, change since the previous close) of each known watchlist symbol."""
    known = set(actx.bars.symbols()) if actx.bars is not None else set()
    out = []
    for s in symbols or []:
        if s not in known:
            continue  # a watchlist from another data directory: skip what is not here
        d = actx.bars.daily(s)
        last = float(d["close"].iloc[-1]) if len(d) else None
        chg = float(d["close"].iloc[-1] / d["close"].iloc[-2] - 1.0) if len(d) >= 2 else None
        out.append((s, last, chg))
    return out


def _watch_buttons(rows, current: str | None):
    if not rows:
        return [html.Div("empty — press ☆ watch (or w) to add the shown symbol", className="status")]
    out = []
    for sym, last, chg in rows:
        cls = "watch-item" + (" current" if sym == current else "")
        chg_cls = "up" if (chg or 0) >= 0 else "down"
        out.append(html.Button(id={"type": "watch-item", "symbol": sym}, className=cls, n_clicks=0, children=[
            html.Span(sym, className="watch-sym"),
            html.Span("–" if last is None else f"{last:,.6g}", className="watch-last"),
            html.Span("" if chg is None else f"{chg:+.2%}", className=f"watch-chg {chg_cls}")]))
    return out


def layout(actx: AppContext, query: str | None = None) -> html.Div:
    """The Market page; ``query`` is the URL's query string (see :func:`parse_query`)."""
    if actx.bars is None:
        return html.Div(className="page", children=html.Div(actx.unavailable.get("market", "no history store"),
                                                           className="notice", id="market-unavailable"))
    symbols = actx.bars.symbols()
    lib = library()
    lib_note = library_error()
    opts = [{"label": f"{k}: {v}", "value": k} for k, v in lib.items()]
    st = parse_query(query, symbols, lib)
    symbol = st.get("symbol", symbols[0] if symbols else None)
    # a window from the URL seeds the view store: the first draw uses it like a kept zoom
    view0 = {"symbol": symbol, "start": st["start"], "end": st["end"], "ts": []} if "start" in st else None
    return html.Div(className="page", children=[
        html.Div(className="controls", children=[
            html.Div(className="control", children=[html.Label("symbol"), dcc.Dropdown(
                id="market-symbol", options=symbols, value=symbol, clearable=False)]),
            html.Div(className="control", children=[html.Label("timeframe"), dcc.Dropdown(
                id="market-tf", options=[{"label": t.label, "value": t.name} for t in LADDER],
                value=st.get("tf", "1d"), clearable=False)]),
            html.Div(className="control wide", children=[html.Label("overlays (factor library)"), dcc.Dropdown(
                id="market-overlays", options=opts, value=st.get("overlays", []), multi=True,
                placeholder=lib_note or "add an overlay")]),
            html.Div(className="control wide", children=[html.Label("indicator panels"), dcc.Dropdown(
                id="market-panels", options=opts, value=st.get("panels", []), multi=True,
                placeholder=lib_note or "add a panel")]),
            html.Div(className="control wide", children=[html.Label("compare (rebased to the first candle)"),
                                                         dcc.Dropdown(id="market-compare", options=symbols,
                                                                      value=st.get("compare", []), multi=True,
                                                                      placeholder="add symbols to compare")]),
            html.Div(className="control", children=[html.Label("mode"), dcc.Checklist(
                id="market-live", options=[{"label": " live", "value": "live"}], value=[])]),
            html.Div(className="control", children=[html.Label("price axis"), dcc.Checklist(
                id="market-log", options=[{"label": " log", "value": "log"}], value=["log"] if st.get("log") else [])]),
            html.Div(className="control wide", children=[
                html.Label("try an expression (Enter; / focuses)"),
                dcc.Input(id="market-expr", type="text", debounce=True, value=st.get("expr", ""), className="expr-input",
                          placeholder="e.g. ema(close, 12) - ema(close, 26)"),
                html.Div(id="market-expr-error", className="expr-error")]),
            html.Div(className="control", children=[html.Label("export"), html.Button(
                "CSV", id="market-csv", className="button"), dcc.Download(id="market-download")]),
        ]),
        html.Div(className="grid-main", children=[
            html.Div(className="card", children=[
                dcc.Loading(dcc.Graph(id="market-chart", config={"displaylogo": False, "scrollZoom": True},
                                      style={"height": "62vh", "minHeight": "380px"}), type="dot"),
                html.Div(id="market-status", className="status"),
            ]),
            html.Div(children=[
                html.Div(className="card watchlist", id="watchlist-card", children=[
                    html.Div(className="watch-head", children=[
                        html.H3("watchlist"),
                        html.Button("☆ watch", id="watch-add", className="button small", title="add the shown symbol (w)"),
                        html.Button("✕ remove", id="watch-remove", className="button small",
                                    title="remove the shown symbol")]),
                    html.Div(id="watchlist", className="watch-items")]),
                html.Div(className="card", style={"marginTop": "12px"}, children=[dcc.Graph(id="market-intraday", config={"displayModeBar": False},
                                                               style={"height": "34vh", "minHeight": "240px"})]),
                html.Div(className="card", style={"marginTop": "12px"}, children=[
                    dcc.Graph(id="market-depth", config={"displayModeBar": False},
                              style={"height": "26vh", "minHeight": "200px"})]),
            ]),
        ]),
        dcc.Store(id="market-view", data=view0),
        # the watchlist survives reloads and new tabs (browser local storage, per app origin)
        dcc.Store(id="watchlist-store", storage_type="local"),
        html.Div(id="market-shortcuts", className="status", children=(
            "keys: / expression · l log axis · w watch · r reset zoom · j / k next / previous in the watchlist")),
        # polls only in live mode: an always-on timer would race (and cancel) slow chart requests
        dcc.Interval(id="market-poll", interval=actx.poll_ms, disabled=True),
        dcc.Store(id="market-side-version"),
        dcc.Store(id="market-live-version"),
    ])


def window_from_relayout(relayout: dict | None, view: dict | None):
    """Turn a K-line relayout event into a new window.

    Returns
    -------
    ``(start_ns, end_ns)`` for a zoom/pan, ``"reset"`` for autorange (double-click), or
    ``None`` for events that do not move the x axis (resizes, y-only zooms).
    """
    if not relayout or not view or not view.get("ts"):
        return None
    lo = hi = None
    for key, value in relayout.items():
        if not key.startswith("xaxis"):
            continue
        axis, _, prop = key.partition(".")
        if prop == "autorange" and value:
            return "reset"
        if prop == "range" and isinstance(value, (list, tuple)) and len(value) == 2:
            lo, hi = value
        elif prop == "range[0]":
            lo = value
        elif prop == "range[1]":
            hi = value
    if lo is None or hi is None:
        return None
    ts = view["ts"]
    n = len(ts)
    try:
        i0 = max(0, math.ceil(float(lo)))
        i1 = min(n - 1, math.floor(float(hi)))
    except (TypeError, ValueError):
        return None  # a date-string range would mean a different axis type; ignore it
    if i1 < i0:
        return None
    if i0 == 0 and i1 == n - 1:
        return None  # nothing outside the current window was cut off
    start = int(ts[i0])
    end = int(ts[i1 + 1]) if i1 + 1 < n else int(view.get("end") or ts[i1] + timeframe(view["shown"]).nominal_ns)
    return start, end


def _live_window(actx: AppContext, symbol: str) -> tuple[int | None, int | None]:
    daily = actx.bars.daily(symbol)
    live = actx.live.bars(symbol)
    hist_end = int(daily["ts"].iloc[-1]) + DAY_NS if len(daily) else None
    live_end = int(live["ts"].iloc[-1]) + MINUTE_NS if len(live) else None
    end = max(x for x in (hist_end, live_end) if x is not None) if (hist_end or live_end) else None
    if len(daily) >= LIVE_DAYS:
        start = int(daily["ts"].iloc[-LIVE_DAYS])
    elif len(daily):
        start = int(daily["ts"].iloc[0])
    else:
        start = int(live["ts"].iloc[0]) if len(live) else None
    return start, end


def expression_error(text: str | None) -> str:
    """Why ``text`` is not a valid factor expression over bars ("" when it is or is empty)."""
    if not text or not text.strip():
        return ""
    try:
        from pyplatform.factors import parse

        parse(text, columns={"open", "high", "low", "close", "volume", "vwap", "trades"})
    except Exception as exc:  # noqa: BLE001 - the parser's message (position and caret) is the point
        return str(exc)
    return ""


def view_csv(actx: AppContext, view: dict | None) -> tuple[str, str] | None:
    """(filename, CSV text) of the candles the chart shows (same window and timeframe)."""
    if not view or not view.get("symbol"):
        return None
    sym = view["symbol"]
    mv = market_view(actx.bars, sym, view.get("shown") or view.get("tf") or "1d", view.get("start"), view.get("end"),
                     cap=max(actx.cap, len(view.get("ts") or [])))
    out = mv.bars.copy()
    out.insert(0, "datetime", pd.to_datetime(out.pop("ts").to_numpy(np.int64)))
    out.insert(1, "symbol", sym)
    return f"{sym}_{mv.shown.name}.csv", out.to_csv(index=False)


def build_chart(actx: AppContext, symbol: str, tf: str, overlays: list[str], panels: list[str],
                start: int | None, end: int | None, live: bool, log_scale: bool = False,
                expression: str | None = None, compare: list[str] | None = None):
    """Figure, status text and view store for one K-line request (the callback's pure core).

    ``compare``: other symbols drawn as lines rebased to this symbol's first candle (see
    :func:`compare_lines`).
    """
    if not symbol:
        return empty_figure("pick a symbol"), "", None
    hist_end = None
    daily = actx.bars.daily(symbol)
    if len(daily):
        hist_end = int(daily["ts"].iloc[-1]) + DAY_NS
    if end is not None and hist_end is not None:
        end_hist = min(end, hist_end)
    else:
        end_hist = end
    if start is not None and end_hist is not None and end_hist <= start:
        # window entirely after history (live-only): history contributes nothing
        view = MarketView(symbol, timeframe(tf), timeframe(tf), start, end, actx.bars.minutes(symbol, 0, 0))
    else:
        view = market_view(actx.bars, symbol, tf, start, end_hist, cap=actx.cap)
        if len(view.bars) == 0 and start is not None and len(daily):
            # a window kept from another symbol that this one has no bars in: show its history
            start = end = None
            view = market_view(actx.bars, symbol, tf, None, None, cap=actx.cap)
    bars = view.bars
    status = view.note
    if live:
        live_bars = actx.live.bars(symbol)
        if len(live_bars):
            before = len(bars)
            bars = merge_live_bars(bars, live_bars, view.shown)
            status += f" · live: {len(bars) - before:+d} candles, last {pd.Timestamp(int(live_bars['ts'].iloc[-1])):%H:%M}"
        else:
            status += " · live: waiting for ticks"
    lib = library()
    failed: list[str] = []
    # indicators are computed on earlier candles too, so they start warmed up at the left edge
    need = max([lookback_of(lib[n]) for n in (overlays or []) + (panels or []) if n in lib] or [0])
    warm = warmup_bars(actx.bars, symbol, view, need) if need else bars.iloc[:0]
    calc = pd.concat([warm, bars], ignore_index=True) if len(warm) else bars

    def _values(names):
        out = {}
        for n in names or []:
            if n not in lib:
                failed.append(f"{n}: not in the factor library")
                continue
            try:
                out[n] = indicator_values(calc, symbol, lib[n])[len(warm):]
            except Exception as exc:  # noqa: BLE001 - e.g. a tick factor needing bid/ask on bars
                failed.append(f"{n}: {exc}")
        return out

    over, pans = _values(overlays), _values(panels)
    expr = (expression or "").strip()
    if expr:
        err = expression_error(expr)
        if err:
            failed.append(f"expression: {err.splitlines()[0]}")
        else:
            try:
                lb = lookback_of(expr)
                w = warmup_bars(actx.bars, symbol, view, lb) if lb > need else warm
                c = pd.concat([w, bars], ignore_index=True) if len(w) else bars
                over[expr] = indicator_values(c, symbol, expr)[len(w):]
            except Exception as exc:  # noqa: BLE001 - shown inline, never a broken page
                failed.append(f"expression: {exc}")
    # an oscillator chosen as an overlay would squash the candles: give it its own axis
    moved = [n for n, v in over.items() if not on_price_scale(v, bars)]
    for n in moved:
        pans[n] = over.pop(n)
    if moved:
        status += " · on their own axis (not price-scaled): " + ", ".join(moved)
    if compare:
        lines, notes = compare_lines(actx, symbol, bars, view.shown, compare)
        over.update(lines)
        failed += notes
        if lines:
            status += " · compared (rebased to the first candle): " + ", ".join(k.split(" ")[0] for k in lines)
    if failed:
        status += " · not drawn: " + "; ".join(failed)
    fig = candlestick_figure(bars, view.shown, symbol=symbol, overlays=over, panels=pans)
    if log_scale and len(bars):
        fig.layout.yaxis.type = "log"
    store = {"symbol": symbol, "tf": tf, "shown": view.shown.name, "start": start, "end": end,
             "ts": bars["ts"].astype(np.int64).tolist() if len(bars) else [],
             "live": live, "live_version": actx.live.version, "n": len(bars)}
    return fig, status, store


def _intraday(actx: AppContext, symbol: str):
    daily = actx.bars.daily(symbol)
    live = actx.live.bars(symbol)
    if len(live):
        day0 = int(live["ts"].iloc[-1]) // DAY_NS * DAY_NS
        bars = live[live["ts"] >= day0]
        hist_today = actx.bars.minutes(symbol, day0, day0 + DAY_NS)
        if len(hist_today):
            bars = pd.concat([hist_today[hist_today["ts"] < int(bars["ts"].iloc[0])], bars], ignore_index=True)
    elif len(daily):
        day0 = int(daily["ts"].iloc[-1]) // DAY_NS * DAY_NS
        bars = actx.bars.minutes(symbol, day0, day0 + DAY_NS)
    else:
        return empty_figure(f"no bars for {symbol}")
    prev = daily[daily["ts"] < day0]
    prev_close = float(prev["close"].iloc[-1]) if len(prev) else None
    return intraday_figure(bars, prev_close, symbol=symbol)


def register(app, actx: AppContext) -> None:
    if actx.bars is None:
        return

    @app.callback(
        Output("market-chart", "figure"), Output("market-status", "children"), Output("market-view", "data"),
        Input("market-symbol", "value"), Input("market-tf", "value"), Input("market-overlays", "value"),
        Input("market-panels", "value"), Input("market-chart", "relayoutData"), Input("market-live", "value"),
        Input("market-live-version", "data"), Input("market-log", "value"), Input("market-expr", "value"),
        Input("market-compare", "value"), State("market-view", "data"),
    )
    def _chart(symbol, tf, overlays, panels, relayout, live_value, _n, log_value, expr, compare, view):
        trig = ctx.triggered_id
        live = "live" in (live_value or [])
        start = end = None
        same_symbol = bool(view) and view.get("symbol") == symbol
        if view:
            # the window is kept across symbol changes: comparing two names over the same
            # dates is what a zoom is for
            start, end = view.get("start"), view.get("end")
        if trig == "market-chart":
            win = window_from_relayout(relayout, view)
            if win is None:
                return no_update, no_update, no_update
            start, end = (None, None) if win == "reset" else win
        elif trig == "market-live-version":
            if not live or (view and view.get("live") and view.get("live_version") == actx.live.version):
                return no_update, no_update, no_update
            start, end = _live_window(actx, symbol)
        elif trig == "market-live" and live:
            start, end = _live_window(actx, symbol)
        if live and trig not in ("market-chart",) and symbol:
            start, end = _live_window(actx, symbol)
        del same_symbol
        return build_chart(actx, symbol, tf or "1d", overlays or [], panels or [], start, end, live,
                           log_scale="log" in (log_value or []), expression=expr, compare=compare or [])

    @app.callback(Output("url", "search"), Input("market-view", "data"), State("market-tf", "value"),
                  State("market-overlays", "value"), State("market-panels", "value"),
                  State("market-compare", "value"), State("market-log", "value"), State("market-expr", "value"),
                  State("url", "search"), prevent_initial_call=True)
    def _url(view, tf, overlays, panels, compare, log_value, expr, current):
        # written after each draw, so the link always reproduces what is on the screen
        q = state_query(view, tf, overlays, panels, compare, log_value, expr)
        return no_update if not q or q == current else q

    @app.callback(Output("watchlist-store", "data"), Input("watch-add", "n_clicks"), Input("watch-remove", "n_clicks"),
                  State("watchlist-store", "data"), State("market-symbol", "value"), prevent_initial_call=True)
    def _watch(_add, _remove, stored, symbol):
        items = [s for s in (stored or []) if isinstance(s, str)]
        if not symbol:
            return no_update
        if ctx.triggered_id == "watch-add" and symbol not in items:
            return items + [symbol]
        if ctx.triggered_id == "watch-remove" and symbol in items:
            return [s for s in items if s != symbol]
        return no_update

    @app.callback(Output("watchlist", "children"), Input("watchlist-store", "data"), Input("market-symbol", "value"))
    def _watch_render(stored, symbol):
        return _watch_buttons(watchlist_rows(actx, [s for s in (stored or []) if isinstance(s, str)]), symbol)

    @app.callback(Output("market-symbol", "value"), Input({"type": "watch-item", "symbol": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def _watch_pick(clicks):
        trig = ctx.triggered_id
        # re-rendering the list creates buttons with n_clicks 0: only a real click switches
        if not trig or not any(c for c in (clicks or []) if c):
            return no_update
        hit = [t for t in ctx.triggered if t.get("value")]
        return trig["symbol"] if hit else no_update

    @app.callback(Output("market-expr-error", "children"), Input("market-expr", "value"))
    def _expr_error(text):
        return expression_error(text)

    @app.callback(Output("market-download", "data"), Input("market-csv", "n_clicks"), State("market-view", "data"),
                  prevent_initial_call=True)
    def _csv(_n, view):
        got = view_csv(actx, view)
        if got is None:
            return no_update
        name, text = got
        return dict(content=text, filename=name, type="text/csv")

    @app.callback(Output("market-poll", "disabled"), Input("market-live", "value"))
    def _poll(live_value):
        return "live" not in (live_value or [])

    @app.callback(Output("market-live-version", "data"), Input("market-poll", "n_intervals"),
                  State("market-live-version", "data"), State("market-view", "data"), prevent_initial_call=True)
    def _version(_n, emitted, view):
        # Back-pressure: a new request to Dash supersedes (drops) a pending one for the same
        # outputs, so while the chart is still drawing the last emitted version, emit nothing;
        # the timer alone would starve a redraw slower than the poll period.
        now = actx.clock.now_ns()
        current = actx.live.version
        if emitted and emitted["v"] == current:
            return no_update
        drawn = (view or {}).get("live_version", -1)
        if emitted and drawn < emitted["v"] and now - emitted["at"] < 5_000_000_000:
            return no_update
        return {"v": current, "at": now}

    @app.callback(
        Output("market-intraday", "figure"), Output("market-depth", "figure"), Output("market-side-version", "data"),
        Input("market-symbol", "value"), Input("market-live-version", "data"), State("market-side-version", "data"),
    )
    def _side(symbol, _n, seen):
        if not symbol:
            return empty_figure("pick a symbol"), empty_figure("pick a symbol"), None
        key = [symbol, actx.live.version]
        if ctx.triggered_id == "market-live-version" and seen == key:
            return no_update, no_update, no_update
        bids, asks = actx.live.depth(symbol)
        return _intraday(actx, symbol), depth_figure(bids, asks, symbol=symbol), key
