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

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["PublishError", "stream_vs_batch", "publish_factor", "engine_column", "agreement"]


class PublishError(ValueError):
    """The factor failed validation; nothing was published."""


def _engine_input(frame: pd.DataFrame) -> pa.Table:
    """A (datetime, symbol) bar frame as the engine's columnar input, in time order."""
    df = frame.reset_index()
    df = df.sort_values(["datetime", "symbol"], kind="stable")
    cols = {"ts": df["datetime"].to_numpy("datetime64[ns]").astype(np.int64), "symbol": df["symbol"].astype(str).to_numpy()}
    for c in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[c]):
            cols[c] = df[c].to_numpy(np.float64)
    return pa.table(cols)


def stream_vs_batch(name: str, expression: str, frame: pd.DataFrame, batch_rows: int = 97,
                    tolerance: float = 1e-9) -> dict:
    """Run both runtimes over ``frame`` and report their agreement.

    Returns
    -------
    dict with ``rows``, ``compared`` (rows where either side has a value), ``max_abs_diff``
    and ``mismatches``.
    """
    from pyplatform.factors import FactorEngine, compile_batch, parse

    expr = parse(expression, columns=set(frame.columns))
    batch = pd.Series(np.asarray(compile_batch(expr)(frame), float), index=frame.index)
    table = _engine_input(frame)
    engine = FactorEngine(factors={name: str(expr)})
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
    library name is refused. The attached evaluation covers the whole daily history (or the
    validation window for minute bars or a given ``frame``) and records that window in
    ``evaluation["window"]``.
    """
    from pyplatform.factors import FactorError, parse
    from pyplatform.registry import FactorRegistry, RegistryError
    from pyplatform.research.evaluation import MIN_NAMES, evaluate

    if name in reserved_names():
        raise PublishError(f"{name!r} is a built-in library factor name (pp.library()); publish under another "
                           f"name, e.g. {name + '_v2'!r} or 'my_{name}'")
    try:
        expr = parse(expression)
    except FactorError as exc:
        raise PublishError(f"factor {name!r} does not parse:\n{exc}") from exc
    canonical = str(expr)
    registry = FactorRegistry.from_settings(settings)
    try:
        registry._dir(name)  # validates the name before any work
    except RegistryError as exc:
        raise PublishError(str(exc)) from exc

    eval_frame, scope = frame, "given frame"
    if frame is None:
        from pyplatform.api import bars

        try:
            store_bars = bars(symbols, settings=settings, freq=freq)
        except (KeyError, ValueError) as exc:
            raise PublishError(f"no history to validate on ({exc}): generate or import data first") from exc
        last = store_bars.index.get_level_values(0).max()
        warm_days = min(2 * expr.lookback, 3650)  # cap: a look-back beyond history fails below anyway
        span = pd.Timedelta(days=recent_days + warm_days) if freq in ("1d", "1D", "D") else pd.Timedelta(days=recent_days)
        frame = store_bars[store_bars.index.get_level_values(0) >= last - span]
        # daily history is small enough to evaluate whole; minute history is evaluated on
        # the validation window only (and says so)
        eval_frame, scope = (store_bars, "full history") if freq in ("1d", "1D", "D") else (frame, "validation window")
    try:
        parse(expression, columns=set(frame.columns))
    except FactorError as exc:
        raise PublishError(f"factor {name!r} uses columns the history does not have:\n{exc}") from exc

    check = stream_vs_batch(name, canonical, frame, tolerance=tolerance)
    if check["mismatches"]:
        raise PublishError(f"factor {name!r}: stream and batch runtimes disagree on {check['mismatches']} of "
                           f"{check['compared']} rows (first at {check['first_mismatch']}, max diff "
                           f"{check['max_abs_diff']:.3g}); not published")
    if check["compared"] == 0:
        raise PublishError(f"factor {name!r} produced no values on recent history (look-back "
                           f"{expr.lookback} rows); not published")
    from pyplatform.api import compute_factor

    evaluation = _evaluation(canonical, name, eval_frame, symbols, MIN_NAMES, evaluate, compute_factor)
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


def _evaluation(canonical: str, name: str, frame: pd.DataFrame, symbols, min_names_default: int,
                evaluate, compute_factor) -> dict:
    """The evaluation summary on stocks (or the given symbols), never weekends of crypto."""
    from pyplatform.research.universe import resolve_universe

    known = sorted(frame.index.get_level_values("symbol").unique())
    try:
        universe = list(symbols) if symbols else resolve_universe("stocks", known)
    except ValueError:
        universe = known  # no stocks: the one calendar there is
    frame = frame[frame.index.get_level_values("symbol").isin(universe)]
    values = compute_factor(canonical, frame, name)
    prices = frame["close"].unstack("symbol")
    try:
        out = evaluate(values, prices, horizons=(1, 5), name=name,
                       min_names=max(2, min(min_names_default, prices.shape[1]))).to_dict()
    except ValueError as exc:
        out = {"error": str(exc), "window": {}}
    out["window"]["universe"] = "stocks" if not symbols and universe != known else ",".join(universe)
    return out
