"""The notebook API: a handful of verbs that return DataFrames indexed by (datetime, symbol).

No global state to initialise: each verb reads configuration from the environment
(``PYPLATFORM_*``) and accepts ``data_dir=`` / ``settings=`` to override it per call.
"""

from __future__ import annotations

import getpass
import logging
from typing import Iterable

import numpy as np
import pandas as pd

from pyplatform.config import Settings, get_settings
from pyplatform.store.frames import symbol_list as _symbols

__all__ = [
    "history", "bars", "ticks", "library", "factor", "evaluate", "publish", "retire", "published",
    "draft_strategy", "subscribe", "backtest", "sweep", "chart", "factor_figures",
    "universe", "save_universe", "Timedelta", "Timestamp",
]

#: Re-exported so notebook code says ``pp.Timedelta`` rather than reaching into ``pp.api.pd``.
Timedelta = pd.Timedelta
Timestamp = pd.Timestamp

log = logging.getLogger(__name__)

_FREQ_TABLE = {"1min": "bars_1m", "1m": "bars_1m", "1d": "bars_1d", "1D": "bars_1d", "D": "bars_1d"}


def _settings(settings: Settings | None = None, data_dir=None) -> Settings:
    if settings is not None:
        return settings
    return get_settings(data_dir=data_dir) if data_dir is not None else get_settings()


def _store(settings: Settings):
    from pyplatform.backends import open_store

    return open_store(settings)


def _checked_read(store, table: str, symbols, start, end, *, source: str | None = None,
                  freq: str | None = None, columns=None) -> pd.DataFrame:
    """Read (or resample) with loud errors: unknown symbols, start >= end, an empty result."""
    from pyplatform.research.universe import check_range, check_symbols

    lo, hi = check_range(start, end)
    syms = _symbols(symbols)
    src = source or table
    check_symbols(syms, store.symbols(src), src)
    if freq is not None:
        out = store.resample(src, freq, symbols=syms, start=lo, end=hi)
    else:
        out = store.read(table, symbols=syms, start=lo, end=hi, columns=columns)
    if len(out) == 0:
        raise ValueError(f"no {src} rows for {'all symbols' if syms is None else syms} in "
                         f"[{lo or 'the beginning'}, {hi or 'the end'}){_span(store, src)}")
    return out


def _span(store, table: str) -> str:
    """'; the table covers A to B' where the store can say so cheaply (its manifest)."""
    try:
        files = store.manifest(table).files()
    except Exception:  # noqa: BLE001 - a backend without manifests just says less
        return ""
    if not files:
        return f"; {table} is empty: generate or import data first"
    lo = pd.Timestamp(min(f.min_ts for f in files), unit="ns")
    hi = pd.Timestamp(max(f.max_ts for f in files), unit="ns")
    return f"; {table} covers {lo} to {hi}"


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
    s = _settings(settings, data_dir)
    return _checked_read(_store(s), table, symbols, start, end, columns=columns)


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
    from pyplatform.research.universe import check_freq

    s = _settings(settings, data_dir)
    store = _store(s)
    table = _FREQ_TABLE.get(freq)
    if table:
        return _checked_read(store, table, symbols, start, end)
    check_freq(freq)
    return _checked_read(store, "bars_1m", symbols, start, end, freq=freq)


def ticks(symbols=None, start=None, end=None, *, settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """Stored ticks, indexed by (datetime, symbol)."""
    return history("ticks", symbols, start, end, settings=settings, data_dir=data_dir)


def library() -> pd.DataFrame:
    """The built-in factor library as a table (name, expression, description, tags, lookback)."""
    from pyplatform.factors import load_library, parse

    rows = [{"name": f.name, "expression": f.expression, "description": f.description,
             "tags": ", ".join(f.tags), "lookback": parse(f.expression).lookback} for f in load_library()]
    return pd.DataFrame(rows).set_index("name")


def _resolve_expression(expr_or_name: str, settings: Settings) -> tuple[str, str]:
    """(name, expression) for a library name, a published name, or an expression.

    Library names are reserved (publishing refuses them), so a name resolves the same way
    here, in the live engine and in the app.
    """
    from pyplatform.factors import load_library
    from pyplatform.registry import FactorRegistry, RegistryError

    if not isinstance(expr_or_name, str) or not expr_or_name.strip():
        raise ValueError(f"a factor is an expression, a library name or a published name, got {expr_or_name!r}")
    lib = {f.name: f.expression for f in load_library()}
    if expr_or_name in lib:
        return expr_or_name, lib[expr_or_name]
    reg = FactorRegistry.from_settings(settings)
    try:
        v = reg.get(expr_or_name)
        return v.name, v.expression
    except RegistryError:
        pass
    return "factor", expr_or_name


def compute_factor(expression: str, frame: pd.DataFrame, name: str = "factor") -> pd.Series:
    """Evaluate an expression over a (datetime, symbol) frame with the batch runtime."""
    from pyplatform.factors import compile_batch, parse

    expr = parse(expression, columns=set(frame.columns))
    out = compile_batch(expr)(frame)
    return pd.Series(np.asarray(out, dtype=float), index=frame.index, name=name)


def factor(expr_or_name: str, symbols=None, start=None, end=None, freq: str = "1d", *,
           settings: Settings | None = None, data_dir=None, bars_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute a factor over history from an expression, a library name or a published name.

    The look-back is honoured: the factor is warmed up on bars before ``start`` so the first
    returned rows are not NULL merely because history was cut at ``start``.
    """
    s = _settings(settings, data_dir)
    name, text = _resolve_expression(expr_or_name, s)
    from pyplatform.factors import parse

    lookback = parse(text).lookback
    if bars_frame is None:
        from pyplatform.research.universe import check_range

        check_range(start, end)
        warm_start = None
        if start is not None and lookback:
            # conservatively widen by calendar time: daily bars -> 2x days, minutes -> days
            pad = pd.Timedelta(days=2 * lookback + 7) if freq in ("1d", "1D", "D") else pd.Timedelta(days=lookback // 300 + 5)
            warm_start = pd.Timestamp(start) - pad
        bars_frame = bars(symbols, warm_start if warm_start is not None else start, end, freq=freq, settings=s)
    values = compute_factor(text, bars_frame, name)
    if start is not None:
        values = values[values.index.get_level_values(0) >= pd.Timestamp(start)]
    return values.to_frame()


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

    s = _settings(settings, data_dir)
    if symbols is None:
        table = _FREQ_TABLE.get(freq, "bars_1m")
        symbols = resolve_universe(universe, _store(s).symbols(table), settings=s)
    syms = _symbols(symbols)
    px = bars(syms, start, end, freq=freq, settings=s)
    if isinstance(expr_or_name, pd.Series):
        f, name = expr_or_name, expr_or_name.name or "factor"
    elif isinstance(expr_or_name, pd.DataFrame):
        f = expr_or_name.iloc[:, 0]
        name = f.name
    else:
        name, text = _resolve_expression(expr_or_name, s)
        f = compute_factor(text, px, name)
    prices = px["close"].unstack("symbol")
    if min_names is None:
        min_names = max(2, min(MIN_NAMES, prices.shape[1]))
    return _evaluate(f, prices, horizons=horizons, quantiles=quantiles, name=str(name), min_names=min_names)


def universe(name="stocks", *, settings: Settings | None = None, data_dir=None) -> list[str]:
    """The symbols of a universe (asset class, region suffix, ``"all"`` or a saved list)."""
    from pyplatform.research.universe import resolve_universe

    s = _settings(settings, data_dir)
    return resolve_universe(name, _store(s).symbols("bars_1d"), settings=s)


def save_universe(name: str, symbols, *, settings: Settings | None = None, data_dir=None) -> list[str]:
    """Save a named watchlist/universe for ``pp.evaluate(universe=name)`` and the app."""
    from pyplatform.research.universe import check_symbols
    from pyplatform.research.universe import save_universe as _save

    s = _settings(settings, data_dir)
    syms = _symbols(symbols) or []
    check_symbols(syms, _store(s).symbols("bars_1d"), "bars_1d")
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

    s = _settings(settings, data_dir)
    return publish_factor(name, expression, author=author or getpass.getuser(), description=description,
                          tags=None if tags is None else tuple(tags), symbols=_symbols(symbols), recent_days=recent_days, freq=freq,
                          settings=s, tolerance=tolerance)


def retire(name: str, reason: str = "", *, settings: Settings | None = None, data_dir=None) -> None:
    """Stop a published factor live; its versions and history are kept."""
    from pyplatform.registry import FactorRegistry

    settings = _settings(settings, data_dir)
    FactorRegistry.from_settings(settings).retire(name, reason)
    from pyplatform.audit import audit  # recorded (docs/audit.md); a failure is logged, not fatal

    audit("factor.retire", f"user:{getpass.getuser()}", name, "ok", {"reason": reason},
          settings=settings)


def published(*, settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """All published factors: latest version, author, status, and the 1-period rank IC with
    the window it was measured on (``ic_window``: first and last date, number of dates)."""
    from pyplatform.registry import FactorRegistry

    reg = FactorRegistry.from_settings(_settings(settings, data_dir))
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
    ``pp.backtest(draft.to_config())`` runs the reviewed draft.
    """
    from pyplatform.research.drafting import draft_strategy as _draft

    known = None
    if check_symbols:
        s = _settings(settings, data_dir)
        try:
            known = _store(s).symbols("bars_1d") or None
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
    from pyplatform.research.live import LiveView

    s = _settings(settings)
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


def backtest(config, symbols=None, start=None, end=None, *, settings: Settings | None = None, data_dir=None, **kwargs):
    """Event-driven backtest of a strategy configuration over history (see ``pyplatform.backtest``)."""
    from pyplatform.backtest import run_backtest
    from pyplatform.backtest.config import BacktestConfig
    from pyplatform.research.universe import check_range

    valid = set(BacktestConfig.model_fields) | {"bars", "backtest", "save", "progress"}
    wrong = sorted(set(kwargs) - valid)
    if wrong:
        raise TypeError(f"backtest() got unknown keyword(s) {wrong}; valid: {', '.join(sorted(valid))}")
    check_range(start, end)
    s = _settings(settings, data_dir)
    kwargs = _rule_risk(config, kwargs)
    if symbols is None and isinstance(config, dict) and config.get("symbols") and kwargs.get("bars") is None:
        symbols = list(config["symbols"])  # a draft names its symbols: replay only those
    if symbols is not None and kwargs.get("bars") is None:
        from pyplatform.research.universe import check_symbols

        check_symbols(_symbols(symbols), _store(s).symbols(
            "bars_1d" if kwargs.get("freq", "1d") in ("1d", "1D", "D") else "bars_1m"))
    return run_backtest(config, symbols=_symbols(symbols), start=start, end=end, settings=s, **kwargs)


def _rule_risk(config, kwargs: dict) -> dict:
    """A drafted (``kind: "rule"``) strategy's sizing as the run's risk limits, unless the
    caller passed their own ``risk``/``backtest``; see ``strategies.rule.risk_overrides``."""
    if not isinstance(config, dict) or config.get("kind") != "rule" or "risk" in kwargs:
        return kwargs
    from pyplatform.risk.config import AccountLimits, RiskConfig
    from pyplatform.strategies.rule import risk_overrides

    over = risk_overrides(config.get("params", {}), config.get("symbols") or ())
    if not over:
        return kwargs
    base = kwargs.get("backtest")
    if base is not None:
        return kwargs  # an explicit BacktestConfig is the caller's word
    return {**kwargs, "risk": RiskConfig(default=AccountLimits(**over))}


def sweep(fast_windows, slow_windows, symbols=None, start=None, end=None, freq: str = "1d", *,
          settings: Settings | None = None, data_dir=None) -> pd.DataFrame:
    """Vectorised dual moving-average sweep over a parameter grid (see ``pyplatform.backtest.vectorized``)."""
    from pyplatform.backtest.vectorized import sweep_dual_ma

    s = _settings(settings, data_dir)
    b = bars(symbols, start, end, freq=freq, settings=s)
    return sweep_dual_ma(b, fast_windows, slow_windows)  # each symbol annualised on its own calendar


def chart(symbol: str, timeframe: str = "1d", start=None, end=None, overlays=(), panels=(), *,
          settings: Settings | None = None, data_dir=None):
    """The Market page's K-line for ``symbol`` (Plotly figure; down-sampled to <= 3,000 candles)."""
    from pyplatform.plots.notebook import chart as _chart

    return _chart(symbol, timeframe, start, end, overlays, panels, settings=_settings(settings, data_dir))


def factor_figures(evaluation, values=None, correlation=None) -> dict:
    """The Factors page's figures (IC, decay, quantile returns, turnover...) for an evaluation."""
    from pyplatform.plots.notebook import factor_figures as _ff

    return _ff(evaluation, values, correlation)
