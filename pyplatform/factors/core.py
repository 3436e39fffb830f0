"""Per-symbol state plus a compiled program: the shared heart of the stream runtime and the
factor engine. Sans-I/O: columns in, factor columns out.

State is one flat float64 buffer. Each stateful instruction owns a ``[capacity, width]`` block
(one row per symbol), so a batch that visits symbols in order reads each block sequentially.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.factors.kernels import run_program
from pyplatform.factors.program import build_program
from pyplatform.factors.factor import Factor

__all__ = ["StreamCore"]

_CHUNK = 8_192  # rows per kernel call: keeps the registers (registers x rows x 8 bytes) in cache


class StreamCore:
    """Runs ``{name: (expr, epoch)}`` incrementally over batches, keyed by symbol."""

    def __init__(self, factors: dict[str, tuple[Factor, int]]) -> None:
        self.factors = dict(factors)
        self.symbols: list[str] = []
        self.sym_index: dict[str, int] = {}
        self.program = build_program(self.factors)
        self.cap = 0
        self.state = np.zeros(0)
        self._regs = np.empty((self.program.n_regs, 0))
        self._last_syms = None  # the previous batch's symbol column and its ids: batches of
        self._last_ids = None   # bars usually repeat the same symbols in the same order
        self._known: pa.Array | None = None

    # -- state layout ----------------------------------------------------------------------------
    def block(self, off: int, width: int, state: np.ndarray | None = None, cap: int | None = None) -> np.ndarray:
        """The ``[capacity, width]`` view of one instruction's state."""
        st, c = (self.state, self.cap) if state is None else (state, cap)
        return st[c * off: c * (off + width)].reshape(c, width)

    def logical_state(self, n: int) -> np.ndarray:
        """State of the first ``n`` symbols as ``[n, program width]`` (slot order)."""
        out = np.zeros((n, self.program.width))
        for off, w in self.program.slots.values():
            out[:, off:off + w] = self.block(off, w)[:n]
        return out

    def set_logical_state(self, rows: np.ndarray) -> None:
        for off, w in self.program.slots.values():
            self.block(off, w)[: rows.shape[0]] = rows[:, off:off + w]

    def _resize(self, cap: int) -> None:
        new = np.zeros(cap * self.program.width)
        keep = min(cap, self.cap)
        for off, w in self.program.slots.values():
            self.block(off, w, new, cap)[:keep] = self.block(off, w)[:keep]
        self.state, self.cap = new, cap

    # -- symbols ------------------------------------------------------------------------------
    def symbol_ids(self, symbols) -> np.ndarray:
        """Map a column of symbols (NumPy or Arrow) to state rows, registering new symbols.

        Vectorised: a repeat of the previous batch's symbol column is one buffer comparison;
        otherwise one hash pass in C, with Python only per *distinct new* symbol.
        """
        n = len(symbols)
        if n == 1:
            sym = symbols[0]
            if isinstance(sym, pa.Scalar):
                sym = sym.as_py()
            sid = self.sym_index.get(sym)
            if sid is None:
                sid = self._register([sym])[0]
            return np.array([sid], dtype=np.int64)
        last = self._last_syms
        if last is not None and len(last) == n and type(last) is type(symbols):
            same = last.equals(symbols) if isinstance(symbols, pa.Array) else np.array_equal(last, symbols)
            if same:
                return self._last_ids
        arr = symbols if isinstance(symbols, pa.Array) else pa.array(np.asarray(symbols, dtype=object), pa.string())
        if arr.null_count:
            raise ValueError(f"symbol column has {arr.null_count} NULL value(s)")
        if self._known is not None and len(self._known):
            ids = pc.index_in(arr, value_set=self._known).to_numpy(zero_copy_only=False)
            missing = np.isnan(ids) if ids.dtype.kind == "f" else None
        else:
            ids, missing = np.full(n, np.nan), np.ones(n, dtype=bool)
        if missing is not None and missing.any():
            new = pd.unique(arr.filter(pa.array(missing)).to_numpy(zero_copy_only=False))
            self._register([s for s in new if s not in self.sym_index])
            ids = pc.index_in(arr, value_set=self._known).to_numpy(zero_copy_only=False)
        ids = np.asarray(ids, dtype=np.int64)
        # Arrow arrays are immutable; a NumPy column is copied so a caller refilling its buffer
        # in place cannot make the cache lie
        self._last_syms = symbols if isinstance(symbols, pa.Array) else np.array(symbols, copy=True)
        self._last_ids = ids
        return ids

    def _register(self, new: list[str]) -> list[int]:
        for sym in new:
            if not isinstance(sym, str):
                raise ValueError(f"symbol must be a string, got {sym!r}")
        start = len(self.symbols)
        out = list(range(start, start + len(new)))
        self.symbols.extend(new)
        self.sym_index.update(zip(new, out))
        self._known = pa.array(self.symbols, pa.string())
        if len(self.symbols) > self.cap:  # grow geometrically; zero rows are fresh state
            self._resize(max(len(self.symbols), 2 * self.cap, 64))
        return out

    # -- running -------------------------------------------------------------------------------
    def run(self, columns: dict[str, np.ndarray], sid: np.ndarray) -> dict[str, np.ndarray]:
        """Advance the state over the rows (in order) and return each factor's values."""
        m = len(sid)
        prog = self.program
        for name in prog.inputs:
            if name not in columns:
                raise KeyError(f"input batch has no column {name!r} (columns: {sorted(columns)})")
        if m <= _CHUNK:
            if self._regs.shape[1] != m:
                self._regs = np.empty((prog.n_regs, m))
            regs = self._regs
            for name, r in prog.inputs.items():
                regs[r] = columns[name]
            run_program(prog.code, prog.fp, regs, sid, self.state, self.cap)
            return {name: regs[r].copy() for name, r in prog.outputs.items()}
        out = {name: np.empty(m) for name in prog.outputs}
        for lo in range(0, m, _CHUNK):
            hi = min(m, lo + _CHUNK)
            part = self.run({k: v[lo:hi] for k, v in columns.items() if k in prog.inputs}, sid[lo:hi])
            for name in out:
                out[name][lo:hi] = part[name]
        return out

    # -- changing the factor set ----------------------------------------------------------------
    def set_factors(self, factors: dict[str, tuple[Factor, int]]) -> None:
        """Rebuild the program, keeping the state of every instruction that survives."""
        old_prog = self.program
        prog = build_program(factors)
        new = np.zeros(self.cap * prog.width)
        for key, (off, w) in prog.slots.items():
            if key in old_prog.slots:
                o_off, _ = old_prog.slots[key]
                self.block(off, w, new, self.cap)[:] = self.block(o_off, w)
        self.factors, self.program, self.state = dict(factors), prog, new
        self._regs = np.empty((prog.n_regs, 0))

    def adopt(self, other: "StreamCore") -> None:
        """Copy ``other``'s state for every instruction both programs share (history warm-up)."""
        if not other.symbols:
            return
        ids = self.symbol_ids(np.asarray(other.symbols, dtype=object))
        n = len(other.symbols)
        for key, (off, w) in self.program.slots.items():
            if key in other.program.slots:
                o_off, _ = other.program.slots[key]
                self.block(off, w)[ids] = other.block(o_off, w)[:n]
