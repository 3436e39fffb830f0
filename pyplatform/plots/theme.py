"""The platform's Plotly look: one dark template shared by Dash pages and notebooks.

Registering a named template (rather than styling each figure) keeps every plot function
free of colour code and lets a notebook user switch with ``pio.templates.default``.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["TEMPLATE", "UP", "DOWN", "ACCENT", "MUTED", "PALETTE", "register_template", "empty_figure"]

TEMPLATE = "pyplatform_dark"
#: Candle colours. Green up / red down is the Western convention; kept as constants so a
#: user who wants the Asian convention changes them in one place.
UP = "#26a69a"
DOWN = "#ef5350"
ACCENT = "#f5c542"
MUTED = "#8a94a6"
PALETTE = ["#42a5f5", "#f5c542", "#ab47bc", "#66bb6a", "#ff7043", "#26c6da", "#ec407a", "#9ccc65"]

_BG = "#0f1420"
_PANEL = "#151b2b"
_GRID = "#232b3e"
_TEXT = "#d6dbe6"


def register_template() -> str:
    """Register the dark template with Plotly (idempotent) and return its name."""
    if TEMPLATE not in pio.templates:
        # Built from scratch rather than on top of "plotly_dark": a template is deep-copied into
        # every figure, and plotly_dark's defaults for every trace type made that copy the
        # largest cost of a chart callback.
        axis = dict(gridcolor=_GRID, zerolinecolor=_GRID, linecolor=_GRID, tickcolor=_GRID)
        t = go.layout.Template(layout=dict(
            paper_bgcolor=_BG, plot_bgcolor=_PANEL, colorway=PALETTE,
            font=dict(color=_TEXT, size=12, family="Inter, Segoe UI, Helvetica, Arial, sans-serif"),
            margin=dict(l=48, r=16, t=36, b=32),
            legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0, bgcolor="rgba(0,0,0,0)"),
            hovermode="x unified", hoverlabel=dict(bgcolor=_PANEL, bordercolor=_GRID, font=dict(color=_TEXT)),
            title=dict(x=0.01, xanchor="left", font=dict(size=14)),
            xaxis=axis, yaxis=axis,
            colorscale=dict(sequential="Viridis", diverging="RdBu"),
        ))
        pio.templates[TEMPLATE] = t
    return TEMPLATE


def empty_figure(message: str, height: int | None = None) -> go.Figure:
    """A blank themed figure carrying a centred message (e.g. "no data for this range")."""
    fig = go.Figure(layout=dict(template=register_template()))
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color=MUTED))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    if height:
        fig.update_layout(height=height)
    return fig
