"""The factor engine: a reactive state engine keyed by symbol (sans-I/O).

``feed(batch)`` takes ticks or bars (Arrow, pandas or a dict of NumPy arrays) and returns an
Arrow table with ``ts``, ``symbol`` and one float64 column per factor for every input row (NULL
while a factor warms up). Factors can be added and removed between batches; ``snapshot()``
captures every symbol's state together with the input offset it corresponds to, so that
``restore`` + feeding the remaining rows equals an uninterrupted run exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.domain.schemas import factor_schema
from pyplatform.factors.batch import frame_layout
from pyplatform.factors.core import StreamCore
from pyplatform.factors.errors import FactorError
from pyplatform.factors.factor import Factor, as_factor
from pyplatform.factors.snapshot import dump_engine, load_engine
from pyplatform.factors.stream import batch_columns
from pyplatform.factors.tree import Expr

__all__ = ["FactorEngine"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FactorEngine:
    """Compute many factors per row, per symbol, incrementally.

    Parameters
    ----------
    factors : dict of str to Factor, str or Expr, optional
        ``{name: factor}`` (a parsed factor, or text parsed once here); names must be
        identifiers other than ``ts`` and ``symbol``.
    columns : iterable of str, optional
        The input schema's column names; when given, expressions reading other columns are
        rejected up front (with the position of the unknown column).

    Examples
    --------
    >>> eng = FactorEngine({"ma5": "mavg(close, 5)"})
    >>> out = eng.feed({"ts": ts, "symbol": syms, "close": px})   # doctest: +SKIP
    """

    def __init__(self, factors: dict[str, Factor | str | Expr] | None = None, columns=None) -> None:
        self._columns = set(columns) if columns is not None else None
        self._epoch = 0
        self._exprs: dict[str, tuple[Factor, int]] = {}
        for name, text in (factors or {}).items():
            self._exprs[name] = (self._parse(name, text), 0)
        self._core = StreamCore(self._exprs)
        self._changed()
        self.next_offset = 0  # the input offset the next fed row is expected to carry
        self.rows_fed = 0

    # -- definition ---------------------------------------------------------------------------
    def _parse(self, name: str, text: Factor | str | Expr) -> Factor:
        if not isinstance(name, str) or not _NAME.match(name) or name in ("ts", "symbol"):
            raise ValueError(f"factor name {name!r} must be an identifier other than 'ts' and 'symbol'")
        try:
            return as_factor(text, self._columns)
        except FactorError as exc:
            raise type(exc)(f"factor {name!r}: {exc.reason}", exc.text, exc.line, exc.column) from None

    def _changed(self) -> None:
        cols = set().union(*(e.input_columns for e, _ in self._exprs.values())) if self._exprs else set()
        self._needed = sorted(cols)
        self._schema = factor_schema(list(self._exprs))

    @property
    def factors(self) -> dict[str, str]:
        """``{name: canonical expression}`` in output column order."""
        return {n: str(e) for n, (e, _) in self._exprs.items()}

    @property
    def symbols(self) -> list[str]:
        return list(self._core.symbols)

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def add_factor(self, name: str, text: Factor | str | Expr, history: pd.DataFrame | None = None) -> None:
        """Add a factor while running.

        It starts from fresh state and warms up from the rows it sees next, or, when
        ``history`` (a frame of earlier rows, indexed by (datetime, symbol) or with
        ts/symbol columns) is given, from that history first.
        """
        if name in self._exprs:
            raise ValueError(f"factor {name!r} already exists (remove it first)")
        expr = self._parse(name, text)
        self._epoch += 1
        new = dict(self._exprs)
        new[name] = (expr, self._epoch)
        self._core.set_factors(new)
        self._exprs = new
        self._changed()
        if history is not None and len(history):
            warm = StreamCore({name: (expr, self._epoch)})
            order, _ = frame_layout(history)
            frame = history.reset_index() if "symbol" not in history.columns else history
            cols, sym = batch_columns(frame.iloc[order], list(expr.input_columns))
            warm.run(cols, warm.symbol_ids(sym))
            self._core.adopt(warm)

    def remove_factor(self, name: str) -> None:
        """Stop computing ``name`` (its state is dropped; other factors are untouched)."""
        if name not in self._exprs:
            raise KeyError(f"no factor named {name!r} (factors: {list(self._exprs)})")
        new = {k: v for k, v in self._exprs.items() if k != name}
        self._core.set_factors(new)
        self._exprs = new
        self._changed()

    # -- running ------------------------------------------------------------------------------
    def compute(self, batch) -> dict[str, np.ndarray]:
        """Like :meth:`feed` but return ``{factor: float64 array}`` (NaN for NULL) without
        building an Arrow table: the lowest-latency path for a single tick."""
        cols, sym = batch_columns(batch, self._needed)
        n = len(sym)
        values = self._core.run(cols, self._core.symbol_ids(sym))
        off = _column(batch, "offset", required=False) if n else None
        self.next_offset = int(off[-1]) + 1 if off is not None else self.next_offset + n
        self.rows_fed += n
        return values

    def feed(self, batch) -> pa.Table:
        """Process rows in order; return ts, symbol and each factor for every input row.

        A batch with an int64 ``offset`` column (a stream table read) advances
        :attr:`next_offset` to the last offset + 1; otherwise offsets count rows.
        """
        ts = _column(batch, "ts", required=False)
        if ts is None:  # a frame from the history store: (datetime, symbol) index, no ts column
            dt = _column(batch, "datetime", required=False)
            if dt is None:
                raise KeyError("batch has neither a 'ts' (int64 ns) nor a 'datetime' column")
            ts = pd.DatetimeIndex(np.asarray(dt)).as_unit("ns").asi8
        symbols = _column(batch, "symbol")
        values = self.compute(batch)
        arrays = [ts if isinstance(ts, pa.Array) and ts.type == pa.int64() else pa.array(np.asarray(ts, dtype=np.int64)),
                  symbols if isinstance(symbols, pa.Array) and symbols.type == pa.string() else pa.array(symbols, pa.string())]
        small = len(arrays[1]) < 256  # per-call overheads differ: from_pandas is cheapest for few rows
        for name in self._exprs:
            v = values[name]
            if small:
                arrays.append(pa.array(v, type=pa.float64(), from_pandas=True))
            else:
                nulls = np.isnan(v)
                arrays.append(pa.array(v, mask=nulls) if nulls.any() else pa.array(v))
        return pa.Table.from_arrays(arrays, schema=self._schema)

    # -- persistence ----------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """All state plus :attr:`next_offset`, as bytes (msgpack + zstd)."""
        return dump_engine(self)

    def restore(self, blob: bytes) -> None:
        """Replace this engine's factors and state with a snapshot's."""
        load_engine(self, blob)

    @classmethod
    def from_snapshot(cls, blob: bytes) -> "FactorEngine":
        eng = cls()
        eng.restore(blob)
        return eng


def _column(batch, name: str, required: bool = True):
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        if name in batch.schema.names:
            col = batch.column(name)
            if isinstance(col, pa.ChunkedArray):
                return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            return col
    elif isinstance(batch, pd.DataFrame):
        if name in batch.columns:
            return batch[name].to_numpy()
        if name in (batch.index.names or []):
            return batch.index.get_level_values(name).to_numpy()
    elif name in batch:
        return np.asarray(batch[name])
    if required:
        raise KeyError(f"batch has no {name!r} column")
    return None
