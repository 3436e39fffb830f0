"""Publishing a factor from research to the live engine.

A factor is published only after it passes three checks on recent history:

1. it parses (errors carry the position in the text);
2. the stream runtime (the live engine, fed row by row in micro-batches, as live) equals the
   batch runtime (research) on the same rows, to a tolerance;
3. it can be evaluated (rank IC, quantile returns...), and the summary is stored with it.

Only then is an immutable version written to the registry; a failure raises
:class:`PublishError` and leaves the registry untouched. A running engine picks the new
version up through :class:`pyplatform.registry.watcher.RegistryWatcher`.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pyplatform.research import session

__all__ = ["PublishError", "stream_vs_batch", "publish_factor", "engine_column", "agreement"]


class PublishError(ValueError):
    """The factor failed validation; nothing was published."""


def stream_vs_batch(name: str, expression, frame: pd.DataFrame, batch_rows: int = 97,
                    tolerance: float = 1e-9, batch: pd.Series | None = None) -> dict:
    """Run both runtimes over ``frame`` and report their agreement.

    Parameters
    ----------
    expression : parsed factor or str
        The factor as :func:`pyplatform.factors.parse` returns it (as publishing passes it),
        or as text.
    batch : Series, optional
        The batch runtime's values on ``frame`` when the caller has them already.

    Returns
    -------
    dict with ``rows``, ``compared`` (rows where either side has a value), ``max_abs_diff``
    and ``mismatches``.
    """
    from pyplatform.factors import FactorEngine, parse

    expr = parse(expression, columns=set(frame.columns)) if isinstance(expression, str) else expression
    if batch is None:
        batch = session.compute(expr, frame)
    table = session.engine_input(frame)
    engine = FactorEngine(factors={name: expr})
    outs = [engine.feed(table.slice(i, batch_rows)) for i in range(0, table.num_rows, batch_rows)]
    out = pa.concat_tables([o if isinstance(o, pa.Table) else pa.table(o) for o in outs])
    return agreement(batch, engine_column(out, name), tolerance)


def engine_column(out: pa.Table, name: str) -> pd.Series:
    """One column of an engine's output table as a Series indexed by (datetime, symbol)."""
    idx = pd.MultiIndex.from_arrays([pd.to_datetime(out.column("ts").to_numpy()),
                                     out.column("symbol").to_numpy(zero_copy_only=False)],
                                    names=["datetime", "symbol"])
    return pd.Series(out.column(name).to_numpy(zero_copy_only=False).astype(float), index=idx)


def agreement(batch: pd.Series, stream: pd.Series, tolerance: float) -> dict:
    """How the batch runtime's values agree with the stream runtime's, row for row."""
    b = batch.reindex(stream.index)
    both_nan = b.isna() & stream.isna()
    diff = (b - stream).abs()
    bad = ~both_nan & ~(diff <= tolerance * (1.0 + b.abs()))
    return {"rows": int(len(stream)), "compared": int((~both_nan).sum()),
            "max_abs_diff": float(diff[~both_nan].max()) if (~both_nan).any() else 0.0,
            "mismatches": int(bad.sum()),
            "first_mismatch": None if not bad.any() else str(stream.index[bad.to_numpy()][0])}


def reserved_names() -> set[str]:
    """Names a published factor may not take: the built-in library's (so ``pp.factor(name)``,
    the live engine and the app can never disagree about what a name means)."""
    from pyplatform.factors import load_library

    return {f.name for f in load_library()}


def publish_factor(name: str, expression: str, *, author: str, description: str | None = None, tags=None,
                   symbols=None, recent_days: int = 60, freq: str = "1d", settings=None,
                   tolerance: float = 1e-9, frame: pd.DataFrame | None = None):
    """Validate and publish; see the module docstring. Returns the new ``FactorVersion``.

    ``description`` and ``tags`` left out (None, empty) keep the previous version's; a
    library name is refused. Validation runs on the last ``recent_days`` of history plus the
    factor's look-back in rows before them (any bar frequency). The attached evaluation
    covers the whole daily history (or the validation window for other frequencies or a given
    ``frame``) and records that window in ``evaluation["window"]``. The expression is parsed
    once and the batch values are computed once per frame.
    """
    from pyplatform.factors import FactorError, parse
    from pyplatform.registry import RegistryError
    from pyplatform.research.evaluation import MIN_NAMES, evaluate

    if name in reserved_names():
        raise PublishError(f"{name!r} is a built-in library factor name (pp.library()); publish under another "
                           f"name, e.g. {name + '_v2'!r} or 'my_{name}'")
    try:
        expr = parse(expression)
    except FactorError as exc:
        raise PublishError(f"factor {name!r} does not parse:\n{exc}") from exc
    canonical = str(expr)
    registry = session.registry(settings)
    try:
        registry._dir(name)  # validates the name before any work
    except RegistryError as exc:
        raise PublishError(str(exc)) from exc

    eval_frame, scope = frame, "given frame"
    if frame is None:
        frame, eval_frame, scope = _history(expr, symbols, recent_days, freq, settings)
    missing = sorted(expr.columns() - set(frame.columns))
    if missing:
        raise PublishError(f"factor {name!r} uses columns the history does not have: {missing} "
                           f"(history has {list(frame.columns)})")

    values = session.compute(expr, eval_frame, name)
    # the validation window is the evaluation frame except for daily history: reuse its values
    batch = values if frame is eval_frame else None
    check = stream_vs_batch(name, expr, frame, tolerance=tolerance, batch=batch)
    if check["mismatches"]:
        raise PublishError(f"factor {name!r}: stream and batch runtimes disagree on {check['mismatches']} of "
                           f"{check['compared']} rows (first at {check['first_mismatch']}, max diff "
                           f"{check['max_abs_diff']:.3g}); not published")
    if check["compared"] == 0:
        raise PublishError(f"factor {name!r} produced no values on recent history (look-back "
                           f"{expr.lookback} rows); not published")

    evaluation = _evaluation(values, name, eval_frame, symbols, MIN_NAMES, evaluate)
    evaluation.setdefault("window", {})["scope"] = scope
    previous = registry.versions(name) if name in registry.names() else []
    if previous:
        description = description or previous[-1].description
        tags = tags or previous[-1].tags
    version = registry.add_version(name, canonical, author, description=description or "", tags=tuple(tags or ()),
                                   evaluation=evaluation, validation=check)
    from pyplatform.audit import audit  # recorded (docs/audit.md); a failure is logged, not fatal

    audit("factor.publish", f"user:{author}", name, "ok", {"version": version.version, "expression": canonical},
          settings=settings)
    return version


def _history(expr, symbols, recent_days: int, freq: str, settings) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(validation frame, evaluation frame, scope)`` from the store.

    The validation frame is the last ``recent_days`` calendar days plus ``expr.lookback`` rows
    per symbol before them. Daily history is small enough to evaluate whole; other
    frequencies are evaluated on the validation window only (and say so).
    """
    daily = freq in session.DAILY
    try:
        if daily:
            full = session.bars(symbols, freq=freq, settings=settings)
            start = full.index.get_level_values(0).max() - pd.Timedelta(days=recent_days)
            return _tail(full, start, expr.lookback), full, "full history"
        store = session.open_store(settings)
        table, _ = session.source_of(freq)
        _, last_ns = session.table_extent(store, table)
        if last_ns is None:  # a backend that cannot say cheaply: read to find out
            last = session.bars(symbols, freq=freq, settings=settings).index.get_level_values(0).max()
        else:
            last = pd.Timestamp(last_ns, unit="ns")
        start = last - pd.Timedelta(days=recent_days)
        frame = session.bars(symbols, start=start, freq=freq, settings=settings, warmup_rows=expr.lookback)
    except (KeyError, ValueError) as exc:
        raise PublishError(f"no history to validate on ({exc}): generate or import data first") from exc
    return frame, frame, "validation window"


def _tail(full: pd.DataFrame, start, warmup_rows: int) -> pd.DataFrame:
    """The rows of ``full`` from ``start`` on plus up to ``warmup_rows`` earlier rows of each
    symbol that has rows from ``start`` on (as :func:`session.read_with_warmup` reads them)."""
    t = full.index.get_level_values(0)
    sym = full.index.get_level_values("symbol")
    late = t >= start
    from_end = full[~late].groupby(level="symbol", sort=False).cumcount(ascending=False).to_numpy()
    early = ~late
    early[early] = (from_end < warmup_rows) & sym[early].isin(sym[late].unique())
    return full[late | early]


def _evaluation(values: pd.Series, name: str, frame: pd.DataFrame, symbols, min_names_default: int,
                evaluate) -> dict:
    """The evaluation summary on stocks (or the given symbols), never weekends of crypto.

    ``values`` are the factor on ``frame``; a factor is computed per symbol, so keeping the
    universe's rows of them equals computing on the universe's rows alone.
    """
    from pyplatform.research.universe import resolve_universe

    known = sorted(frame.index.get_level_values("symbol").unique())
    try:
        universe = list(symbols) if symbols else resolve_universe("stocks", known)
    except ValueError:
        universe = known  # no stocks: the one calendar there is
    keep = frame.index.get_level_values("symbol").isin(universe)
    frame, values = frame[keep], values[keep]
    prices = frame["close"].unstack("symbol")
    try:
        out = evaluate(values, prices, horizons=(1, 5), name=name,
                       min_names=max(2, min(min_names_default, prices.shape[1]))).to_dict()
    except ValueError as exc:
        out = {"error": str(exc), "window": {}}
    out["window"]["universe"] = "stocks" if not symbols and universe != known else ",".join(universe)
    return out
