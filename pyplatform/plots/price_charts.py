"""Market charts: K-line with volume and indicator panels, intraday time-sharing, depth.

Plot functions take plain frames and return Plotly figures, so a notebook and the Dash app
draw the same picture from the same call; they never read the store themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pyplatform.plots.downsample import Timeframe, timeframe
from pyplatform.plots.theme import ACCENT, DOWN, MUTED, PALETTE, UP, empty_figure, register_template

__all__ = ["bar_labels", "candlestick_figure", "intraday_figure", "depth_figure"]


def bar_labels(ts: np.ndarray, tf: Timeframe | str) -> np.ndarray:
    """Category-axis labels for bar start times, as precise as the timeframe needs.

    The K-line uses a category axis: consecutive bars sit side by side, so nights, weekends
    and holidays leave no gaps whatever the asset's calendar.
    """
    tf = timeframe(tf) if isinstance(tf, str) else tf
    unit = "m" if tf.intraday else ("M" if tf.name == "1M" else "D")
    text = np.datetime_as_string(np.asarray(ts, dtype=np.int64).astype("datetime64[ns]").astype(f"datetime64[{unit}]"))
    return np.char.replace(text, "T", " ")


def candlestick_figure(bars: pd.DataFrame, tf: Timeframe | str = "1d", *, symbol: str = "",
                       overlays: Mapping[str, pd.Series | np.ndarray] | None = None,
                       panels: Mapping[str, pd.Series | np.ndarray] | None = None,
                       title: str | None = None, height: int | None = None) -> go.Figure:
    """K-line (candlestick) chart with a volume panel and optional indicator panels.

    Parameters
    ----------
    bars : DataFrame
        Columns ``ts`` (int64 ns bar start), ``open``, ``high``, ``low``, ``close``, ``volume``.
    tf : Timeframe or str
        The bars' timeframe (sets label precision).
    symbol : str
        Shown in the title.
    overlays : mapping of name to values aligned with ``bars``
        Lines drawn on the price panel (moving averages, bands).
    panels : mapping of name to values aligned with ``bars``
        One lower panel each (RSI, MACD, ...).
    title, height : optional

    Returns
    -------
    plotly.graph_objects.Figure
        ``xaxis`` is a category axis whose categories are :func:`bar_labels` of ``bars.ts``.
    """
    template = register_template()
    tf = timeframe(tf) if isinstance(tf, str) else tf
    if bars is None or len(bars) == 0:
        return empty_figure(f"no bars for {symbol or 'this symbol'} in this range", height)
    overlays = dict(overlays or {})
    panels = dict(panels or {})
    n_rows = 2 + len(panels)
    heights = [0.62, 0.14] + [0.24 / len(panels)] * len(panels) if panels else [0.78, 0.22]
    # The layout is written out as one dict (domains computed here) instead of make_subplots +
    # update_xaxes: Plotly's per-update dispatch made those calls most of the callback's time.
    gap = 0.015
    usable = 1.0 - gap * (n_rows - 1)
    layout: dict = dict(template=template, title=dict(text=title or f"{symbol} · {tf.label} bars"),
                        hovermode="x unified", dragmode="zoom", bargap=0.1, showlegend=bool(overlays or panels))
    top = 1.0
    # crosshair: a vertical spike through every panel at the hovered candle, a horizontal one
    # at the cursor's height; the unified hover box is headed by the candle's time, and the
    # app's assets/crosshair.js adds the price (and time) labels on the axes
    axis_x = dict(type="category", nticks=8, rangeslider=dict(visible=False), showspikes=True,
                  spikemode="across", spikesnap="hovered data", spikethickness=1, spikecolor=MUTED, spikedash="dot")
    axis_y = dict(showspikes=True, spikemode="across", spikesnap="cursor", spikethickness=1, spikecolor=MUTED,
                  spikedash="dot")
    layout["spikedistance"] = -1  # spikes wherever the cursor is, not only near a point
    for i in range(n_rows):
        k = "" if i == 0 else str(i + 1)
        bottom = max(0.0, top - heights[i] * usable)
        layout[f"yaxis{k}"] = dict(axis_y, domain=[bottom, top], anchor=f"x{k}")
        layout[f"xaxis{k}"] = dict(axis_x, anchor=f"y{k}", showticklabels=i == n_rows - 1,
                                   **({"matches": "x"} if i else {}))
        top = bottom - gap
    layout["yaxis2"]["title"] = dict(text="volume", font=dict(size=10))
    x = bar_labels(bars["ts"].to_numpy(), tf)
    o, c = bars["open"].to_numpy(float), bars["close"].to_numpy(float)
    data: list = [go.Candlestick(
        x=x, open=o, high=bars["high"].to_numpy(float), low=bars["low"].to_numpy(float), close=c,
        name=symbol or "price", increasing=dict(line=dict(color=UP), fillcolor=UP),
        decreasing=dict(line=dict(color=DOWN), fillcolor=DOWN), showlegend=False, xaxis="x", yaxis="y")]
    for i, (name, values) in enumerate(overlays.items()):
        data.append(go.Scatter(x=x, y=np.asarray(values, dtype=float), mode="lines", name=name, xaxis="x", yaxis="y",
                               line=dict(width=1.3, color=PALETTE[i % len(PALETTE)])))
    # two single-colour volume traces instead of one with a per-bar colour array: Plotly
    # validates every element of a colour array
    vol = bars["volume"].to_numpy(float)
    up = c >= o
    for mask, color in ((up, UP), (~up, DOWN)):
        data.append(go.Bar(x=x[mask], y=vol[mask], marker=dict(color=color, line=dict(width=0)), name="volume",
                           showlegend=False, opacity=0.8, xaxis="x2", yaxis="y2"))
    for i, (name, values) in enumerate(panels.items()):
        k = str(i + 3)
        data.append(go.Scatter(x=x, y=np.asarray(values, dtype=float), mode="lines", name=name,
                               xaxis=f"x{k}", yaxis=f"y{k}",
                               line=dict(width=1.2, color=PALETTE[(i + len(overlays)) % len(PALETTE)])))
        layout[f"yaxis{k}"]["title"] = dict(text=name, font=dict(size=10))
    if height:
        layout["height"] = height
    return go.Figure(data=data, layout=layout)


def intraday_figure(bars: pd.DataFrame, prev_close: float | None, *, symbol: str = "",
                    height: int | None = None) -> go.Figure:
    """Time-sharing chart of one day: price against the previous close, average price, volume.

    Parameters
    ----------
    bars : DataFrame
        The day's one-minute bars (``ts``, ``close``, ``volume``; ``vwap`` optional).
    prev_close : float or None
        Previous session's close (the reference line); ``None`` draws no reference.

    Notes
    -----
    The average-price line is the cumulative volume-weighted price of the day
    (``cumsum(price * volume) / cumsum(volume)``), using each bar's ``vwap`` when present.
    """
    template = register_template()
    if bars is None or len(bars) == 0:
        return empty_figure(f"no intraday bars for {symbol or 'this symbol'}", height)
    ts = pd.to_datetime(bars["ts"].to_numpy(np.int64))
    close = bars["close"].to_numpy(float)
    vol = bars["volume"].to_numpy(float)
    px = bars["vwap"].to_numpy(float) if "vwap" in bars.columns else close
    px = np.where(np.isfinite(px), px, close)
    cum_v = np.cumsum(vol)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(cum_v > 0, np.cumsum(px * vol) / cum_v, close)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=[0.75, 0.25])
    # markers while the day has only a few bars (a line needs two points to be seen)
    fig.add_trace(go.Scatter(x=ts, y=close, mode="lines" if len(close) > 5 else "lines+markers", name="price",
                             line=dict(color="#42a5f5", width=1.4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=ts, y=avg, mode="lines", name="average price", line=dict(color=ACCENT, width=1.2)),
                  row=1, col=1)
    title = f"{symbol} intraday"
    if prev_close is not None and np.isfinite(prev_close):
        fig.add_hline(y=prev_close, line=dict(color=MUTED, dash="dash", width=1), row=1, col=1,
                      annotation_text=f"prev close {prev_close:g}", annotation_position="bottom right")
        change = close[-1] / prev_close - 1.0
        title += f" · {close[-1]:g} ({change:+.2%})"
        colors = np.where(close >= prev_close, UP, DOWN)
    else:
        colors = np.full(len(close), MUTED)
    fig.add_trace(go.Bar(x=ts, y=vol, marker=dict(color=colors, line=dict(width=0)), name="volume",
                         showlegend=False), row=2, col=1)
    fig.update_layout(template=template, title=title, bargap=0,
                      legend=dict(x=1.0, xanchor="right", y=1.0, yanchor="bottom"))
    if height:
        fig.update_layout(height=height)
    return fig


def depth_figure(bids: pd.DataFrame, asks: pd.DataFrame, *, symbol: str = "",
                 height: int | None = None) -> go.Figure:
    """Order-book depth: cumulative size on each side of the book against price.

    Parameters
    ----------
    bids, asks : DataFrame
        Columns ``price`` and ``volume``, one row per level (any order).
    """
    template = register_template()
    if (bids is None or len(bids) == 0) and (asks is None or len(asks) == 0):
        return empty_figure(f"no depth quotes for {symbol or 'this symbol'} yet", height)
    fig = go.Figure()
    for side, frame, asc, color in (("bids", bids, False, UP), ("asks", asks, True, DOWN)):
        if frame is None or len(frame) == 0:
            continue
        f = frame.sort_values("price", ascending=asc)
        cum = np.cumsum(f["volume"].to_numpy(float))
        fig.add_trace(go.Scatter(x=f["price"].to_numpy(float), y=cum, mode="lines", name=side,
                                 line=dict(color=color, shape="hv", width=1.5), fill="tozeroy"))
    fig.update_layout(template=template, title=f"{symbol} order-book depth", hovermode="x",
                      xaxis_title="price", yaxis_title="cumulative size")
    if height:
        fig.update_layout(height=height)
    return fig
