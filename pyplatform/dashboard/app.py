"""``create_app(settings)``: the multi-page Dash research app.

Pages are plain modules with ``layout(ctx)`` and ``register(app, ctx)``; routing is one
callback on ``dcc.Location`` so several independent apps can be built in one process (tests,
the demo) without Dash's global page registry. Sources that another package provides (the
history store, the factor library, saved backtests) are looked up here; when one is missing
its page says so instead of drawing made-up data.
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash, Input, Output, State, html, no_update

from pyplatform.clock import Clock, LiveClock
from pyplatform.config import Settings, get_settings
from pyplatform.dashboard.context import AppContext
from pyplatform.dashboard.layout import PAGES, badge, shell
from pyplatform.dashboard.live_buffer import LiveBuffer
from pyplatform.dashboard.pages import backtests, factors, live, market
from pyplatform.plots.theme import register_template

__all__ = ["create_app", "default_sources"]

_MODULES = {"market": market, "factors": factors, "backtests": backtests, "live": live}


def _store_sources(settings: Settings, unavailable: dict[str, str]):
    """Bar source and factor data from the configured history store, where they exist."""
    try:
        from pyplatform.backends import open_store
    except ImportError as exc:
        msg = f"history store not available yet ({exc})"
        unavailable.update(market=msg, factors=msg)
        return None, None
    from pyplatform.dashboard.data import StoreBarSource

    store = open_store(settings)
    bars = StoreBarSource(store)
    symbols = bars.symbols()
    if not symbols:
        unavailable["market"] = (f"no bars in the history store under {Path(settings.data_dir).resolve()}: "
                                 "generate a market with `pyplatform data generate` first")
        unavailable["factors"] = unavailable["market"]
        return None, None
    from pyplatform.dashboard.indicators import library, library_error

    err = library_error()
    if err:
        unavailable["factors"] = err
        return bars, None
    from pyplatform.dashboard.factor_data import FactorData

    # one calendar per universe by default: stocks first (the default), then each other asset
    # class; "all" mixes 24/7 crypto with stock sessions and so comes last, named as such
    from pyplatform.research.universe import resolve_universe

    universes: dict[str, list[str]] = {}
    for label, spec in (("stocks", "stocks"), ("forex", "forex"), ("crypto", "crypto"), ("indices", "indices")):
        try:
            members = resolve_universe(spec, symbols)
        except ValueError:
            continue
        if len(members) >= 2:
            universes[label] = members
    try:
        inst = store.instruments()
        for sector, group in inst[inst["symbol"].isin(symbols)].groupby("sector"):
            if sector and len(group) >= 5:  # quantiles need a cross-section
                universes[f"sector: {sector}"] = sorted(group["symbol"])
    except Exception:  # noqa: BLE001 - sectors are optional; "all" always works
        pass
    universes["all"] = symbols
    fd = FactorData(lambda syms: store.read("bars_1d", symbols=syms), universes, library())
    return bars, fd


def _backtest_runs(settings: Settings, unavailable: dict[str, str]):
    try:
        from pyplatform.dashboard.backtest_data import open_runs
    except ImportError as exc:
        unavailable["backtests"] = f"saved backtest runs not available yet ({exc})"
        return None
    try:
        return open_runs(settings)
    except Exception as exc:  # noqa: BLE001 - shown on the page
        unavailable["backtests"] = f"saved backtest runs not available yet ({exc})"
        return None


def default_sources(settings: Settings) -> dict:
    """The sources ``create_app`` uses when none are passed (store, factors, backtests)."""
    unavailable: dict[str, str] = {}
    bars, fd = _store_sources(settings, unavailable)
    runs = _backtest_runs(settings, unavailable)
    return {"bars": bars, "factors": fd, "backtests": runs, "unavailable": unavailable}


_UNSET = object()


def create_app(settings: Settings | None = None, *, bars=_UNSET, factors=_UNSET, backtests=_UNSET,
               live: LiveBuffer | None = None, poll_ms: int = 1000, cap: int = 3000,
               clock: Clock | None = None) -> Dash:
    """Build the research app.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`pyplatform.config.get_settings`.
    bars, factors, backtests : optional
        Sources overriding the ones found from ``settings`` (a ``BarSource``, a ``FactorData``,
        a backtest run store); pass ``None`` to disable a page explicitly.
    live : LiveBuffer, optional
        The buffer the live feed writes into; a new empty one by default (``app.pyplatform.live``).
    poll_ms : int
        How often the browser polls for live changes.
    cap : int
        Most candles sent to the browser per chart.
    clock : Clock, optional
        What the pages read as "now"; this builder (an edge) picks :class:`LiveClock` when none is given.

    Returns
    -------
    dash.Dash
        With ``app.pyplatform`` holding the :class:`AppContext`.
    """
    settings = settings or get_settings()
    register_template()
    need_default = any(x is _UNSET for x in (bars, factors, backtests))
    found = default_sources(settings) if need_default else {"unavailable": {}}
    unavailable = dict(found["unavailable"])
    pick = lambda given, key: found.get(key) if given is _UNSET else given  # noqa: E731
    actx = AppContext(settings=settings, bars=pick(bars, "bars"), live=live or LiveBuffer(), clock=clock or LiveClock(),
                      factors=pick(factors, "factors"), backtests=pick(backtests, "backtests"), cap=cap, poll_ms=poll_ms,
                      unavailable=unavailable)
    for page, src in (("market", actx.bars), ("factors", actx.factors), ("backtests", actx.backtests)):
        if src is None:
            actx.unavailable.setdefault(page, f"{page}: no data source configured")
    app = Dash(__name__, title="pyplatform research", suppress_callback_exceptions=True,
               assets_folder=str(Path(__file__).with_name("assets")),
               meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}])
    app.layout = shell(poll_ms)

    @app.callback(Output("page", "children"), *[Output(f"nav-{m}", "className") for _, m in PAGES.values()],
                  Input("url", "pathname"), State("url", "search"))
    def _route(path, search):
        label, mod = PAGES.get(path or "/", (None, None))
        classes = ["active" if m == mod else "" for _, m in PAGES.values()]
        if mod is None:
            return html.Div(className="page", children=html.Div(f"no page at {path}", className="notice")), *classes
        if mod == "market":  # its state (symbol, timeframe, window, overlays) comes from the URL
            return _MODULES[mod].layout(actx, query=search), *classes
        return _MODULES[mod].layout(actx), *classes

    @app.callback(Output("live-badge", "children"), Output("live-badge", "className"),
                  Input("live-tick", "n_intervals"), State("live-badge", "className"))
    def _badge(_n, current):
        text, cls = badge(actx.live.connection.state)
        return (no_update, no_update) if cls == current else (text, cls)

    for mod in _MODULES.values():
        mod.register(app, actx)
    app.pyplatform = actx
    return app
