"""The app shell: top bar with navigation and the live-connection badge, and the page slot."""

from __future__ import annotations

from dash import dcc, html

__all__ = ["PAGES", "shell", "badge"]

#: path -> (nav label, page module name)
PAGES: dict[str, tuple[str, str]] = {
    "/": ("Market", "market"),
    "/factors": ("Factors", "factors"),
    "/backtests": ("Backtests", "backtests"),
    "/live": ("Live", "live"),
}


def badge(state: str) -> tuple[str, str]:
    """Text and CSS class of the live-connection badge."""
    text = {"connected": "● live", "reconnecting": "◌ reconnecting…", "connecting": "◌ connecting…",
            "disconnected": "✕ live feed lost", "offline": "○ no live feed"}.get(state, state)
    return text, f"badge {state}"


def shell(poll_ms: int) -> html.Div:
    return html.Div(className="app", children=[
        # refresh=False: the Market page writes its state into the query string after each
        # draw (a shareable link); with a refreshing Location every write would reload the page
        dcc.Location(id="url", refresh=False),
        html.Header(className="topbar", children=[
            html.Span("pyplatform", className="brand"),
            html.Nav(id="nav", className="nav",
                     children=[dcc.Link(label, href=path, id=f"nav-{mod}") for path, (label, mod) in PAGES.items()]),
            html.Span(id="live-badge", className="badge offline", children="○ no live feed"),
        ]),
        html.Main(id="page"),
        dcc.Interval(id="live-tick", interval=poll_ms),
    ])
