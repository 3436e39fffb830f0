"""The notebook API: a handful of verbs that return DataFrames indexed by (datetime, symbol).

No global state to initialise: each verb reads configuration from the environment
(``PYPLATFORM_*``) and accepts ``data_dir=`` / ``settings=`` to override it per call.

The verbs are thin: the work is done in :mod:`pyplatform.research.session` and the packages
under it, and no package imports this module (``tests/structure`` checks it).
"""

from __future__ import annotations

import getpass
import logging
from typing import Iterable

import pandas as pd

from pyplatform.config import Settings
from pyplatform.research import session
from pyplatform.store.frames import symbol_list as _symbols

__all__ = [
    "history", "bars", "ticks", "library", "factor", "evaluate", "publish", "retire", "published",
    "draft_strategy", "subscribe", "run_backtest", "sweep", "compute_factor", "chart", "factor_figures",
    "universe", "save_universe", "Timedelta", "Timestamp",
]

#: Re-exported so notebook code says ``pp.Timedelta`` rather than reaching into ``pp.api.pd``.
Timedelta = pd.Timedelta
Timestamp = pd.Timestamp

log = logging.getLogger(__name__)


def history(table: str = "bars_1m", symbols=None, start=None, end=None, columns=None, *,
            settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """Rows of a history table (``ticks``, ``bars_1m``, ``bars_1d``, ``factors``).

    Returns
    -------
    DataFrame indexed by (datetime, symbol).

    Raises
    ------
    UnknownSymbolError
        For symbols the table does not hold (with the nearest known ones).
    ValueError
        For start >= end or a range with no rows (with the range the table covers).
    """
    s = session.settings_for(settings, data_dir)
    return session.read_checked(session.open_store(s), table, symbols, start, end, columns=columns)


def bars(symbols=None, start=None, end=None, freq: str = "1min", *, settings: Settings | None = None,
         data_dir=None) -> pd.DataFrame:
    """OHLCV bars at any frequency: stored 1-minute and daily bars, others resampled from minutes.

    Parameters
    ----------
    symbols : str or list of str, optional
        ``CODE.REGION`` symbols; all when omitted.
    start, end : date-like, optional
        ``start <= t < end``.
    freq : str
        ``"1min"``, ``"5min"``, ``"1h"``, ``"1d"``, ``"1w"``, ... (pandas-style widths).

    Raises
    ------
    UnknownSymbolError
        For symbols the store does not hold (the message lists the nearest known ones, e.g.
        ``EURUSD.GB`` for ``EURUSD``).
    ValueError
        For a bad ``freq``, start >= end, or a range with no rows.
    """
    return session.bars(symbols, start, end, freq, settings=session.settings_for(settings, data_dir))


def ticks(symbols=None, start=None, end=None, *, settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """Stored ticks, indexed by (datetime, symbol)."""
    return history("ticks", symbols, start, end, settings=settings, data_dir=data_dir)


def library() -> pd.DataFrame:
    """The built-in factor library as a table (name, expression, description, tags, lookback)."""
    from pyplatform.factors import load_library, parse

    rows = [{"name": f.name, "expression": f.expression, "description": f.description,
             "tags": ", ".join(f.tags), "lookback": parse(f.expression).lookback} for f in load_library()]
    return pd.DataFrame(rows).set_index("name")


def compute_factor(expression, frame: pd.DataFrame, name: str = "factor") -> pd.Series:
    """Evaluate an expression (text, or parsed by ``pyplatform.factors.parse``) over a
    (datetime, symbol) frame with the batch runtime."""
    from pyplatform.factors import parse

    expr = parse(expression, columns=set(frame.columns)) if isinstance(expression, str) else expression
    return session.compute(expr, frame, name)


def factor(expr_or_name: str, symbols=None, start=None, end=None, freq: str = "1d", *,
           settings: Settings | None = None, data_dir=None, bars_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute a factor over history from an expression, a library name or a published name.

    The look-back is honoured in rows, at any ``freq``: the factor is warmed up on the
    ``lookback`` bars before ``start`` of each symbol, so the first returned rows are not
    NULL merely because history was cut at ``start``.
    """
    s = session.settings_for(settings, data_dir)
    name, expr = session.resolve(expr_or_name, s)
    return session.factor(expr, symbols, start, end, freq, settings=s, name=name, frame=bars_frame).to_frame()


def evaluate(expr_or_name, symbols=None, start=None, end=None, horizons=(1, 5, 10), quantiles: int = 5,
             freq: str = "1d", *, universe="stocks", min_names: int | None = None,
             settings: Settings | None = None, data_dir=None):
    """Evaluate a factor (expression, name, or a Series) against forward returns of close prices.

    Parameters
    ----------
    symbols : list of str, optional
        Explicit symbols; when given they are the universe.
    universe : str or list of str
        Which symbols are compared on a date when ``symbols`` is not given: an asset class
        (``"stocks"``, the default, ``"forex"``, ``"crypto"``, ``"indices"``), a region suffix
        (``".US"``), a saved list (``pp.save_universe``), or ``"all"`` (calendars mixed on
        purpose). Stocks are the default so weekends of 24/7 crypto never enter a stock IC.
    horizons : sequence of int
        Forward periods in each symbol's own trading sessions (5 = five trading days).
    min_names : int, optional
        Dates with fewer names are left out (default 5, or fewer if the universe is smaller).

    Returns
    -------
    FactorEvaluation
        Rank IC and t-stat, decay, quantile returns (per-date averaged as alphalens, and
        pooled), spread, turnover, coverage, and the ``window`` the metrics cover.
    """
    from pyplatform.research.evaluation import MIN_NAMES
    from pyplatform.research.evaluation import evaluate as _evaluate
    from pyplatform.research.universe import resolve_universe

    s = session.settings_for(settings, data_dir)
    if symbols is None:
        table = session.FREQ_TABLE.get(freq, "bars_1m")
        symbols = resolve_universe(universe, session.open_store(s).symbols(table), settings=s)
    syms = _symbols(symbols)
    px = bars(syms, start, end, freq=freq, settings=s)
    if isinstance(expr_or_name, pd.Series):
        f, name = expr_or_name, expr_or_name.name or "factor"
    elif isinstance(expr_or_name, pd.DataFrame):
        f = expr_or_name.iloc[:, 0]
        name = f.name
    else:
        name, expr = session.resolve(expr_or_name, s)
        f = session.compute(expr, px, name)
    prices = px["close"].unstack("symbol")
    if min_names is None:
        min_names = max(2, min(MIN_NAMES, prices.shape[1]))
    return _evaluate(f, prices, horizons=horizons, quantiles=quantiles, name=str(name), min_names=min_names)


def universe(name="stocks", *, settings: Settings | None = None, data_dir=None) -> list[str]:
    """The symbols of a universe (asset class, region suffix, ``"all"`` or a saved list)."""
    from pyplatform.research.universe import resolve_universe

    s = session.settings_for(settings, data_dir)
    return resolve_universe(name, session.open_store(s).symbols("bars_1d"), settings=s)


def save_universe(name: str, symbols, *, settings: Settings | None = None, data_dir=None) -> list[str]:
    """Save a named watchlist/universe for ``pp.evaluate(universe=name)`` and the app."""
    from pyplatform.research.universe import check_symbols
    from pyplatform.research.universe import save_universe as _save

    s = session.settings_for(settings, data_dir)
    syms = _symbols(symbols) or []
    check_symbols(syms, session.open_store(s).symbols("bars_1d"), "bars_1d")
    return _save(name, syms, settings=s)


def publish(name: str, expression: str, *, author: str | None = None, description: str | None = None,
            tags: Iterable[str] | None = None, symbols=None, recent_days: int = 60, freq: str = "1d",
            settings: Settings | None = None, data_dir=None, tolerance: float = 1e-9):
    """Validate a factor and publish it as a new immutable version in the registry.

    Validation: the expression parses; the stream runtime fed row by row in micro-batches
    equals the batch runtime on recent history (to ``tolerance``); an evaluation summary is
    attached, computed on the whole daily history (stocks, or ``symbols``) with its window
    recorded. ``description``/``tags`` left out keep the previous version's. Built-in library
    names are reserved. Any failure raises ``PublishError`` and changes nothing.
    """
    from pyplatform.research.publishing import publish_factor

    s = session.settings_for(settings, data_dir)
    return publish_factor(name, expression, author=author or getpass.getuser(), description=description,
                          tags=None if tags is None else tuple(tags), symbols=_symbols(symbols), recent_days=recent_days, freq=freq,
                          settings=s, tolerance=tolerance)


def retire(name: str, reason: str = "", *, settings: Settings | None = None, data_dir=None) -> None:
    """Stop a published factor live; its versions and history are kept."""
    settings = session.settings_for(settings, data_dir)
    session.registry(settings).retire(name, reason)
    from pyplatform.audit import audit  # recorded (docs/audit.md); a failure is logged, not fatal

    audit("factor.retire", f"user:{getpass.getuser()}", name, "ok", {"reason": reason},
          settings=settings)


def published(*, settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """All published factors: latest version, author, status, and the 1-period rank IC with
    the window it was measured on (``ic_window``: first and last date, number of dates)."""
    reg = session.registry(session.settings_for(settings, data_dir))
    rows = []
    cols = ["version", "expression", "description", "tags", "author", "retired", "ic_mean_1p", "ic_window"]
    for n in reg.names():
        v = reg.versions(n)[-1]
        w = v.evaluation.get("window") or {}
        window = (f"{str(w.get('start'))[:10]} to {str(w.get('end'))[:10]} ({w.get('n_dates')} dates, "
                  f"{w.get('scope', '?')})") if w.get("start") else "unknown (published before windows were recorded)"
        rows.append({"name": n, "version": v.version, "expression": v.expression, "description": v.description,
                     "tags": ", ".join(v.tags), "author": v.author, "retired": reg.is_retired(n),
                     "ic_mean_1p": v.evaluation.get("ic", {}).get("1p", {}).get("ic_mean"), "ic_window": window})
    return pd.DataFrame(rows).set_index("name") if rows else pd.DataFrame(columns=cols)


def draft_strategy(text: str, *, settings: Settings | None = None, data_dir=None, check_symbols: bool = True):
    """Draft a strategy configuration from a plain-English rule (offline; nothing guessed).

    With ``check_symbols`` (and a store that holds daily bars) a symbol the store does not
    know is reported in ``draft.unparsed`` with the nearest known ones, never invented.
    ``pp.run_backtest(draft.to_config())`` runs the reviewed draft.
    """
    from pyplatform.research.drafting import draft_strategy as _draft

    known = None
    if check_symbols:
        s = session.settings_for(settings, data_dir)
        try:
            known = session.open_store(s).symbols("bars_1d") or None
        except Exception:  # noqa: BLE001 - no store yet: drafting still works offline
            known = None
    return _draft(text, known_symbols=known)


def subscribe(topics, symbols="*", *, url: str | None = None, token: str | None = None,
              callback=None, settings: Settings | None = None, **client_kw):
    """Live rows from the signal service, e.g. ``pp.subscribe("factors:mom_10", ["AAPL.US"])``.

    Parameters
    ----------
    topics : str or list of str
        ``quotes``, ``bars``, ``factors:<name>`` (``factors:*``), ``signals:<strategy>``.
    url : str, optional
        Default ``ws://{signal_host}:{signal_port}`` from the configuration.
    token : str, optional
        Default ``PYPLATFORM_TOKEN`` from the environment (never put a token in code).
    callback : callable, optional
        Called with each message besides being collected.

    Returns
    -------
    LiveView
        Collects rows in the background (``.frame()``, ``.latest()``, ``.display()``, ``.stop()``);
        the client reconnects and resumes by sequence number, so there are no gaps or repeats.
    """
    import os

    from pyplatform.client import subscribe as _subscribe
    from pyplatform.research.live_view import LiveView

    s = session.settings_for(settings)
    url = url or f"ws://{s.signal_host}:{s.signal_port}"
    token = token or os.environ.get("PYPLATFORM_TOKEN")
    if not token:
        raise ValueError("no token: pass token= or set PYPLATFORM_TOKEN (issue one with `pyplatform tokens issue`)")
    view = LiveView()

    def _cb(msg):
        view(msg)
        if callback is not None:
            callback(msg)

    topics = [topics] if isinstance(topics, str) else list(topics)
    syms = symbols if symbols == "*" else _symbols(symbols)
    view.subscription = _subscribe(url, token, topics, syms, _cb, **client_kw)
    return view


def run_backtest(config, symbols=None, start=None, end=None, *, settings: Settings | None = None, data_dir=None,
                 **kwargs):
    """Event-driven backtest of a strategy configuration over history.

    ``pp.run_backtest(config, ...)`` checks its input first (unknown keywords, a bad range and
    unknown symbols are refused before any work) and runs
    :func:`pyplatform.backtest.run_backtest`; ``pp.backtest`` is the ``pyplatform.backtest``
    package. Keywords: any ``BacktestConfig`` field, ``bars``, ``backtest``, ``save``, ``progress``.

    Returns
    -------
    BacktestResult
    """
    return session.run_backtest(config, symbols, start, end, settings=session.settings_for(settings, data_dir),
                                **kwargs)


def sweep(fast_windows, slow_windows, symbols=None, start=None, end=None, freq: str = "1d", *,
          settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """Vectorised dual moving-average sweep over a parameter grid (see ``pyplatform.backtest.vectorized``)."""
    from pyplatform.backtest.vectorized import sweep_dual_ma

    s = session.settings_for(settings, data_dir)
    b = bars(symbols, start, end, freq=freq, settings=s)
    return sweep_dual_ma(b, fast_windows, slow_windows)  # each symbol annualised on its own calendar


def chart(symbol: str, timeframe: str = "1d", start=None, end=None, overlays=(), panels=(), *,
          settings: Settings | None = None, data_dir=None, cap: int = 3000):
    """The Market page's K-line for ``symbol`` (Plotly figure; at most ``cap`` candles).

    Parameters
    ----------
    symbol : str
    timeframe : str
        ``1m 5m 15m 30m 1h 4h 1d 1w 1M``; a coarser one is used when the window would
        exceed ``cap`` candles (the title says which).
    start, end : date-like, optional
        Window (``start <= ts < end``); the whole history by default.
    overlays, panels : sequence of str
        Factor-library names or expressions drawn on the price / in lower panels.
    """
    # The Dash page's own context and chart function, so the notebook draws exactly what the
    # Market page draws; it lives here, at the top, because plots must not import the app.
    from pyplatform.dashboard.context import AppContext
    from pyplatform.dashboard.data import StoreBarSource
    from pyplatform.dashboard.live_buffer import LiveBuffer
    from pyplatform.clock import LiveClock
    from pyplatform.dashboard.pages.market import build_chart

    s = session.settings_for(settings, data_dir)
    actx = AppContext(settings=s, bars=StoreBarSource(session.open_store(s)), live=LiveBuffer(), clock=LiveClock(), cap=cap)
    lo = None if start is None else int(pd.Timestamp(start).value)
    hi = None if end is None else int(pd.Timestamp(end).value)
    fig, status, _ = build_chart(actx, symbol, timeframe, list(overlays), list(panels), lo, hi, False)
    fig.update_layout(title=dict(text=status))
    return fig


def factor_figures(evaluation, values=None, correlation=None) -> dict:
    """The Factors page's figures (IC, decay, quantile returns, turnover...) for an evaluation."""
    from pyplatform.plots.notebook import factor_figures as _ff

    return _ff(evaluation, values, correlation)
