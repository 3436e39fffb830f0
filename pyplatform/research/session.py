"""The research layer under the notebook API: settings, store, registry and library, history
reads, factor resolution and batch computation.

``pyplatform.api`` (the ``pp.*`` verbs) is a thin layer on top of this module; research,
models and backtest code import this module, never ``api``. A factor travels between the
layers as a parsed factor (what :func:`pyplatform.factors.parse` returns; parsed once per call),
not as text.

History for a factor is read with a look-back in *rows* (:func:`read_with_warmup`), for any bar
frequency: the window is read, then earlier rows are fetched in growing calendar spans until
each symbol has ``warmup_rows`` of them or the table's start is reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.config import Settings, get_settings
from pyplatform.store.frames import symbol_list

if TYPE_CHECKING:  # only for annotations: importing the factor language costs start-up time
    from pyplatform.factors import Factor

__all__ = [
    "FREQ_TABLE", "DAILY", "settings_for", "open_store", "registry", "library", "source_of", "bars", "read_checked",
    "read_with_warmup", "table_extent", "resolve", "compute", "factor", "engine_input", "run_backtest",
]

#: Stored bar tables by frequency; any other width is resampled from the 1-minute bars.
FREQ_TABLE = {"1min": "bars_1m", "1m": "bars_1m", "1d": "bars_1d", "1D": "bars_1d", "D": "bars_1d"}
#: The spellings of daily bars.
DAILY = ("1d", "1D", "D")

_DAY_NS = 86_400 * 10**9
# Stepping back for warm-up rows: the first span is this many times the rows' typical spacing
# times the rows wanted (sessions, weekends and holidays make calendar time longer than rows),
# and each further span is _GROWTH times the last, so a look-back costs O(log) reads.
_FIRST_SPAN_FACTOR = 1.5
_GROWTH = 4
# With no known table start, this many slices in a row of at least _EMPTY_SLICE_NS with nothing
# in them end the search with one read of everything earlier (a long gap or the table's start:
# either way that read is exact). Shorter empty slices are nights, weekends and holidays.
_EMPTY_GROWTHS = 3
_EMPTY_SLICE_NS = 14 * _DAY_NS
_OLDEST_NS = int(pd.Timestamp("1700-01-01").value)  # spans stop growing before Timestamp's range ends


def settings_for(settings: Settings | None = None, data_dir=None) -> Settings:
    """The given settings, else the environment's (``PYPLATFORM_*``), with ``data_dir`` applied."""
    if settings is not None:
        return settings
    return get_settings(data_dir=data_dir) if data_dir is not None else get_settings()


def open_store(settings: Settings):
    """The history store the settings name (embedded or DolphinDB)."""
    from pyplatform.backends import open_store as _open

    return _open(settings)


def registry(settings: Settings):
    """The published-factor registry under the settings' data directory."""
    from pyplatform.registry import FactorRegistry

    return FactorRegistry.from_settings(settings)


def library() -> dict[str, str]:
    """The built-in factor library as ``{name: expression}``."""
    from pyplatform.factors import load_library

    return {f.name: f.expression for f in load_library()}


def source_of(freq: str) -> tuple[str, str | None]:
    """``(table, resample width or None)`` for a bar frequency.

    Raises
    ------
    ValueError
        For a width that is not a bar width (``check_freq``).
    """
    table = FREQ_TABLE.get(freq)
    if table:
        return table, None
    from pyplatform.research.universe import check_freq

    check_freq(freq)
    return "bars_1m", freq


def table_extent(store, table: str) -> tuple[int | None, int | None]:
    """``(first, last)`` time in ns of a table where the store can say so cheaply (its manifest),
    else ``(None, None)``; ``(None, None)`` too for an empty table."""
    try:
        files = store.manifest(table).files()
    except Exception:  # noqa: BLE001 - a backend without manifests says nothing
        return None, None
    if not files:
        return None, None
    return int(min(f.min_ts for f in files)), int(max(f.max_ts for f in files))


def _span(store, table: str) -> str:
    """'; the table covers A to B' where the store can say so cheaply (its manifest)."""
    try:
        files = store.manifest(table).files()
    except Exception:  # noqa: BLE001 - a backend without manifests just says less
        return ""
    if not files:
        return f"; {table} is empty: generate or import data first"
    lo, hi = table_extent(store, table)
    return f"; {table} covers {pd.Timestamp(lo, unit='ns')} to {pd.Timestamp(hi, unit='ns')}"


def _ns(t) -> int | None:
    return None if t is None else int(pd.Timestamp(t).value)


def _reader(store, table: str, freq: str | None, columns) -> Callable:
    """``read(symbols, lo_ns, hi_ns)`` over stored or resampled rows."""
    if freq is None:
        def read(symbols, lo, hi):
            return store.read(table, symbols=symbols, start=_ts(lo), end=_ts(hi), columns=columns)
    else:
        def read(symbols, lo, hi):
            return store.resample(table, freq, symbols=symbols, start=_ts(lo), end=_ts(hi))
    return read


def _ts(ns: int | None):
    return None if ns is None else pd.Timestamp(ns, unit="ns")


def _floor(ns: int, step: int) -> int:
    return ns if step <= 1 else (ns // step) * step


def _earlier_rows(read: Callable, window: pd.DataFrame, start_ns: int, warmup_rows: int, *,
                  step: int = 0, first_ns: int | None = None) -> pd.DataFrame:
    """Up to ``warmup_rows`` rows before ``start_ns`` for every symbol of ``window``.

    Steps back from ``start_ns`` in growing calendar spans, reading only the new slice each
    time and only for the symbols still short of rows, until all have enough, the table's
    first time (``first_ns``) is passed, or (start unknown) a few growths find nothing, after
    which one read of everything earlier finishes exactly. ``step`` aligns slice bounds to
    resampling buckets so no bucket is split between two reads.
    """
    symbols = window.index.get_level_values("symbol")
    need = pd.Series(warmup_rows, index=pd.Index(symbols.unique(), name="symbol"), dtype=np.int64)
    times = window.index.get_level_values(0)
    per_symbol = len(window) / len(need)
    # the rows' typical calendar spacing, from the window itself (so minute and daily bars,
    # or any resampled width, need no frequency table); one day when the window cannot say
    spacing = (times.max() - times.min()).value / (per_symbol - 1) if per_symbol > 1 else _DAY_NS
    spacing = max(spacing, 10**9)  # rows at one instant say nothing: at least a second apart
    span = max(int(_FIRST_SPAN_FACTOR * spacing * warmup_rows), step, 1)
    hi, pieces, empty = start_ns, [], 0
    while len(need):
        lo = _floor(start_ns - span, step)
        final = first_ns is not None and lo <= first_ns
        if first_ns is None and (empty >= _EMPTY_GROWTHS or lo < _OLDEST_NS):
            lo, final = None, True
        part = read(list(need.index), lo, hi)
        if len(part):
            pieces.append(part)
            got = part.index.get_level_values("symbol").value_counts()
            need = need.sub(got.reindex(need.index, fill_value=0))
            need = need[need > 0]
            empty = 0
        elif lo is not None and hi - lo >= _EMPTY_SLICE_NS:
            empty += 1
        if final:
            break
        hi, span = lo, span * _GROWTH
    if not pieces:
        return window.iloc[:0]
    earlier = pd.concat(pieces).sort_index(kind="stable")
    # keep each symbol's last warmup_rows rows (the spans overshoot by design)
    from_end = earlier.groupby(level="symbol", sort=False).cumcount(ascending=False).to_numpy()
    return earlier[from_end < warmup_rows]


def read_with_warmup(store, table: str, symbols, start, end, warmup_rows: int, *, columns=None,
                     freq: str | None = None) -> pd.DataFrame:
    """Rows of ``table`` in ``[start, end)`` plus up to ``warmup_rows`` earlier rows per symbol.

    The look-back is in rows, for any bar frequency: after the window is read, earlier rows
    are fetched in growing calendar spans (each span ``4x`` the last, the first sized from the
    window's own row spacing) until every symbol in the window has ``warmup_rows`` earlier
    rows or the table's start is reached. A symbol with gaps simply takes more steps; one
    that starts late gets the rows it has.

    Parameters
    ----------
    store : HistoryStore
    table : str
        The stored table (``bars_1m``, ``bars_1d``, ...), or the source table of ``freq``.
    symbols : str or list of str, optional
        All symbols when omitted.
    start, end : date-like, optional
        ``start <= t < end``; without ``start`` there is nothing earlier to read.
    warmup_rows : int
        Rows wanted before ``start`` for each symbol (a factor's look-back).
    columns : list of str, optional
        Columns of stored rows (not used with ``freq``).
    freq : str, optional
        Resample ``table`` to this width (``"5min"``, ``"1h"``); ``start`` is then aligned down
        to its bucket so that no bucket is split between the window and the rows before it.

    Returns
    -------
    DataFrame
        Indexed by (datetime, symbol), sorted by time; symbols with no row in the window get no
        warm-up rows either.
    """
    step = int(pd.Timedelta(freq).value) if freq is not None else 0
    lo, hi = _ns(start), _ns(end)
    if lo is not None and step:
        lo = _floor(lo, step)
    read = _reader(store, table, freq, columns)
    window = read(symbol_list(symbols), lo, hi)
    return _with_warmup(store, table, read, window, lo, warmup_rows, step)


def _with_warmup(store, table, read, window, lo, warmup_rows, step) -> pd.DataFrame:
    if lo is None or warmup_rows <= 0 or len(window) == 0:
        return window
    first, _ = table_extent(store, table)
    earlier = _earlier_rows(read, window, lo, int(warmup_rows), step=step, first_ns=first)
    if len(earlier) == 0:
        return window
    return pd.concat([earlier, window]).sort_index(kind="stable")


def read_checked(store, table: str, symbols, start, end, *, freq: str | None = None, columns=None,
                 warmup_rows: int = 0) -> pd.DataFrame:
    """:func:`read_with_warmup` with loud errors: unknown symbols, start >= end, an empty window.

    Raises
    ------
    UnknownSymbolError
        For symbols the table does not hold (with the nearest known ones).
    ValueError
        For start >= end or a window with no rows (with the range the table covers).
    """
    from pyplatform.research.universe import check_range, check_symbols

    lo, hi = check_range(start, end)
    syms = symbol_list(symbols)
    check_symbols(syms, store.symbols(table), table)
    step = int(pd.Timedelta(freq).value) if freq is not None else 0
    lo_ns = _ns(lo)
    if lo_ns is not None and step and warmup_rows:
        lo_ns = _floor(lo_ns, step)  # a warm-up must not split the first bucket
    read = _reader(store, table, freq, columns)
    window = read(syms, lo_ns, _ns(hi))
    if len(window) == 0:
        raise ValueError(f"no {table} rows for {'all symbols' if syms is None else syms} in "
                         f"[{lo or 'the beginning'}, {hi or 'the end'}){_span(store, table)}")
    return _with_warmup(store, table, read, window, lo_ns, warmup_rows, step)


def bars(symbols=None, start=None, end=None, freq: str = "1min", *, settings: Settings,
         warmup_rows: int = 0) -> pd.DataFrame:
    """OHLCV bars at any frequency (stored 1-minute and daily, others resampled from minutes),
    checked as :func:`read_checked`; ``warmup_rows`` earlier rows per symbol are included."""
    table, width = source_of(freq)
    return read_checked(open_store(settings), table, symbols, start, end, freq=width, warmup_rows=warmup_rows)


def resolve(expr_or_name, settings: Settings) -> tuple[str, "Factor"]:
    """``(name, parsed expression)`` for a library name, a published name, or an expression.

    Library names are reserved (publishing refuses them), so a name resolves the same way
    here, in the live engine and in the app. The text is parsed once, here.

    Raises
    ------
    ValueError
        For something that is not a non-empty string.
    FactorSyntaxError, FactorTypeError
        For an expression that does not parse.
    """
    from pyplatform.factors import parse
    from pyplatform.registry import RegistryError

    if hasattr(expr_or_name, "lookback") and not isinstance(expr_or_name, str):
        return "factor", expr_or_name  # parsed already
    if not isinstance(expr_or_name, str) or not expr_or_name.strip():
        raise ValueError(f"a factor is an expression, a library name or a published name, got {expr_or_name!r}")
    lib = library()
    if expr_or_name in lib:
        return expr_or_name, parse(lib[expr_or_name])
    try:
        v = registry(settings).get(expr_or_name)
        return v.name, parse(v.expression)
    except RegistryError:
        pass
    return "factor", parse(expr_or_name)


def compute(expr: "Factor", frame: pd.DataFrame, name: str = "factor") -> pd.Series:
    """Evaluate a parsed expression over a (datetime, symbol) frame with the batch runtime.

    Raises
    ------
    FactorTypeError
        When the expression uses a column ``frame`` lacks (pointing at it in the text).
    """
    from pyplatform.factors import compile_batch, parse

    missing = expr.columns() - set(frame.columns)
    if missing:
        parse(str(expr), columns=set(frame.columns))  # the error path only: raises with the position
    out = compile_batch(expr)(frame)
    return pd.Series(np.asarray(out, dtype=float), index=frame.index, name=name)


def factor(expr: "Factor", symbols=None, start=None, end=None, freq: str = "1d", *, settings: Settings,
           name: str = "factor", frame: pd.DataFrame | None = None) -> pd.Series:
    """A factor over history, warmed up on ``expr.lookback`` rows before ``start``.

    The first returned rows are not NULL merely because history was cut at ``start``.
    ``frame`` (bars) replaces the read; values are then only cut at ``start``.
    """
    if frame is None:  # bars() checks the range and symbols
        frame = bars(symbols, start, end, freq=freq, settings=settings, warmup_rows=expr.lookback)
    values = compute(expr, frame, name)
    if start is not None:
        values = values[values.index.get_level_values(0) >= pd.Timestamp(start)]
    return values


def engine_input(frame: pd.DataFrame) -> pa.Table:
    """A (datetime, symbol) bar frame as the factor engine's columnar input, in time order."""
    df = frame.reset_index()
    df = df.sort_values(["datetime", "symbol"], kind="stable")
    cols = {"ts": df["datetime"].to_numpy("datetime64[ns]").astype(np.int64),
            "symbol": df["symbol"].astype(str).to_numpy()}
    for c in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[c]):
            cols[c] = df[c].to_numpy(np.float64)
    return pa.table(cols)


#: Keywords ``run_backtest`` takes besides the ``BacktestConfig`` fields.
_RUN_KEYWORDS = {"bars", "backtest", "save", "progress"}


def run_backtest(config, symbols=None, start=None, end=None, *, settings: Settings, **kwargs):
    """Event-driven backtest of a strategy configuration with the notebook's checks.

    Unknown keywords, a bad range and unknown symbols are refused before any work; a drafted
    (``kind: "rule"``) strategy's sizing becomes the run's risk limits and its symbols the
    replayed ones. See :func:`pyplatform.backtest.run_backtest` for the run itself.

    Raises
    ------
    TypeError
        For a keyword that is neither a ``BacktestConfig`` field nor a run option (all listed).
    """
    from pyplatform.backtest import run_backtest as _run
    from pyplatform.backtest.config import BacktestConfig
    from pyplatform.research.universe import check_range, check_symbols

    valid = set(BacktestConfig.model_fields) | _RUN_KEYWORDS
    wrong = sorted(set(kwargs) - valid)
    if wrong:
        raise TypeError(f"run_backtest() got unknown keyword(s) {wrong}; valid: {', '.join(sorted(valid))}")
    check_range(start, end)
    kwargs = _rule_risk(config, kwargs)
    if symbols is None and isinstance(config, dict) and config.get("symbols") and kwargs.get("bars") is None:
        symbols = list(config["symbols"])  # a draft names its symbols: replay only those
    if symbols is not None and kwargs.get("bars") is None:
        table = "bars_1d" if kwargs.get("freq", "1d") in DAILY else "bars_1m"
        check_symbols(symbol_list(symbols), open_store(settings).symbols(table))
    return _run(config, symbols=symbol_list(symbols), start=start, end=end, settings=settings, **kwargs)


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
    if kwargs.get("backtest") is not None:
        return kwargs  # an explicit BacktestConfig is the caller's word
    return {**kwargs, "risk": RiskConfig(default=AccountLimits(**over))}
