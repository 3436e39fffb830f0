"""Import users' CSV or Parquet files into the history store: map columns, normalise, all or nothing.

Every file is read and every value checked before anything is written; if any value is bad,
:class:`ImportFailed` lists every bad row (file, row, column, value, reason) and the store is
untouched. A clean import is a single store write, which the embedded store publishes with
one atomic manifest replace, so a crash mid-import also leaves nothing half-imported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pyplatform.clock import Clock
from pyplatform.domain.instruments import asset_class_of
from pyplatform.normalize import BadValue, NormalizationError, ratio_price, to_ns, to_price
from pyplatform.store.tables import table_spec

__all__ = ["import_files", "read_table_file", "ImportFailed", "ImportResult"]


class ImportFailed(NormalizationError):
    """Nothing was imported; ``errors`` lists every bad value found, each with its ``file``.

    A :class:`~pyplatform.normalize.NormalizationError` whose message is a block, one bad
    value a line (``file: row N, column 'c' = value: reason``), for the ``data import`` report.
    """

    lead = "import rejected, nothing written: "
    block = True
    default_limit = 10

    def write_report(self, path: str | Path) -> Path:
        """Write every bad row to a CSV report (file, row, column, value, reason)."""
        path = Path(path)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "row", "column", "value", "reason"])
            for b in self.errors:
                w.writerow([b.file, b.row, b.field, b.value, b.reason])
        return path


@dataclass(frozen=True)
class ImportResult:
    table: str
    files: int
    rows: int
    symbols: list[str]


def read_table_file(path: str | Path, delimiter: str = ",") -> pd.DataFrame:
    """A CSV (every column as text, so normalisation sees the raw values) or Parquet file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"import: no such file {path}")
    suffix = "".join(path.suffixes).lower()
    if ".parquet" in suffix or suffix.endswith(".pq"):
        return pd.read_parquet(path)
    if ".csv" in suffix or ".txt" in suffix or ".tsv" in suffix:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                           sep="\t" if ".tsv" in suffix else delimiter)
    raise ValueError(f"import: {path.name}: unsupported file type {suffix!r} (expected .csv, .tsv or .parquet)")


def _normalise_file(frame: pd.DataFrame, name: str, table: str, mapping: dict[str, str], symbol: str | None,
                    ts_unit: str, assume_tz: str, price_scale: int | None,
                    denominators: dict[str, str], clock: Clock) -> tuple[dict[str, np.ndarray] | None, list[BadValue]]:
    spec = table_spec(table)
    bad: list[BadValue] = []
    keys = ["factor"] if spec.has_factor else []
    source = {target: mapping.get(target, target) for target in ["ts", "symbol", *keys, *spec.value_names]}
    needed = ["ts", *keys, *spec.required] + ([] if symbol else ["symbol"])
    missing = [f"{t} (from column {source[t]!r})" for t in needed if source[t] not in frame.columns]
    if missing:
        raise ValueError(f"import: {name}: missing column(s) {missing}; the file has {list(frame.columns)}; "
                         "map them with --map target=source")
    out: dict[str, np.ndarray] = {}

    def collect(exc: NormalizationError, column: str) -> None:
        bad.extend(replace(e, field=column, file=name) for e in exc.errors)

    try:
        out["ts"] = to_ns(frame[source["ts"]], field=source["ts"], unit=ts_unit, assume_tz=assume_tz, clock=clock)
    except NormalizationError as exc:
        collect(exc, source["ts"])
    if symbol:
        syms = np.full(len(frame), symbol, dtype=object)
        sym_col = "--symbol"
    else:
        sym_col = source["symbol"]
        syms = frame[sym_col].to_numpy(dtype=object)
    uniq, inv = np.unique(np.asarray(syms, dtype=str), return_inverse=True)
    for j, s in enumerate(uniq.tolist()):
        try:
            asset_class_of(s)
        except ValueError as exc:
            rows = np.flatnonzero(inv == j)
            bad.extend(BadValue(sym_col, int(r), s, str(exc), name) for r in rows[:1000])
    out["symbol"] = np.asarray(syms, dtype=str)
    for k in keys:
        vals = frame[source[k]]
        for r in np.flatnonzero(vals.isna().to_numpy())[:1000]:
            bad.append(BadValue(source[k], int(r), None, "missing", name))
        out[k] = vals.astype(str).to_numpy()
    lenient: dict[str, np.ndarray] = {}
    for target, typ in spec.columns:
        col = source[target]
        if col not in frame.columns:
            continue
        optional = target not in spec.required
        try:
            if target in denominators:
                den = denominators[target]
                if den not in frame.columns:
                    raise ValueError(f"import: {name}: denominator column {den!r} for {target} not in the file")
                out[target] = ratio_price(frame[col], frame[den], field=col)
            elif target in spec.prices or target in spec.fine_prices or target == "volume":
                scale = price_scale if target != "volume" else None
                out[target] = to_price(frame[col], field=col, scale=scale, allow_missing=optional)
            else:
                vals = pd.to_numeric(frame[col], errors="coerce")
                nan = np.flatnonzero(vals.isna().to_numpy() & frame[col].notna().to_numpy())
                if nan.size:
                    raise NormalizationError([BadValue(col, int(r), frame[col].iloc[r], "not a number") for r in nan])
                out[target] = vals.fillna(0).to_numpy().astype(typ.to_pandas_dtype())
        except NormalizationError as exc:
            collect(exc, col)
            # keep the parseable values for the cross-column checks below
            lenient[target] = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
    lenient.update({k: v for k, v in out.items() if k in ("high", "low")})
    if "high" in lenient and "low" in lenient:
        with np.errstate(invalid="ignore"):
            inverted = np.flatnonzero(lenient["high"] < lenient["low"])
        bad.extend(BadValue(source["high"], int(r), float(lenient["high"][r]),
                            f"high below low ({float(lenient['low'][r])})", name) for r in inverted[:1000])
    bad.sort(key=lambda b: b.row)
    return (None if bad else out), bad


def import_files(paths, table: str = "bars_1m", store=None, mapping: dict[str, str] | None = None,
                 symbol: str | None = None, ts_unit: str = "auto", assume_tz: str = "UTC",
                 price_scale: int | None = None, denominators: dict[str, str] | None = None,
                 report_path: str | Path | None = None, *, clock: Clock) -> ImportResult:
    """Import CSV/Parquet files into ``table``, normalised, all or nothing.

    Parameters
    ----------
    paths : path or list of paths
    table : str
        ``bars_1m``, ``bars_1d``, ``ticks`` or ``factors``.
    store : HistoryStore, optional
        Defaults to :func:`pyplatform.backends.open_store`.
    mapping : dict, optional
        Target column -> column in the file, e.g. ``{"ts": "time", "close": "Close"}``.
    symbol : str, optional
        The symbol of every row, for files without a symbol column.
    ts_unit : str
        ``auto`` (detect s/ms/us/ns from magnitudes, or ISO-8601 text), ``s``, ``ms``,
        ``us``, ``ns`` or ``iso``.
    assume_tz : str
        Zone of timestamps given without one.
    price_scale : int, optional
        Prices are integers with this many implied decimals.
    denominators : dict, optional
        Target price column -> denominator column (price = value / denominator).
    report_path : path, optional
        On failure, also write every bad row to this CSV.
    clock : Clock
        "Now" for rejecting far-future timestamps (required: ``LiveClock()`` at the command
        line, a ``SimClock`` in tests).

    Raises
    ------
    ImportFailed
        Listing every bad row of every file; nothing is written.
    ValueError
        For a missing column or an unsupported file.
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise ValueError("import: no files given")
    mapping, denominators = dict(mapping or {}), dict(denominators or {})
    parts, bad = [], []
    for path in paths:
        frame = read_table_file(path)
        cols, problems = _normalise_file(frame, path.name, table, mapping, symbol, ts_unit, assume_tz,
                                         price_scale, denominators, clock)
        bad.extend(problems)
        if cols is not None:
            parts.append(pd.DataFrame(cols))
    if bad:
        err = ImportFailed(bad)
        if report_path is not None:
            err.write_report(report_path)
        raise err
    data = pd.concat(parts, ignore_index=True)
    if store is None:
        from pyplatform.backends import open_store

        store = open_store()
    try:
        store.write(table, data)
    except NormalizationError as exc:  # rules the store adds (e.g. high < 0): still nothing written
        raise ImportFailed([replace(e, file="(combined)") for e in exc.errors]) from exc
    return ImportResult(table, len(paths), len(data), sorted(set(data["symbol"])))
