"""Per-symbol state plus a compiled program: the shared heart of the stream runtime and the
factor engine. Sans-I/O: columns in, factor columns out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pyplatform.factors.kernels import run_program
from pyplatform.factors.program import Program, build_program
from pyplatform.factors.tree import Expr

__all__ = ["StreamCore"]

_CHUNK = 65_536  # rows per kernel call: bounds register memory (registers x rows x 8 bytes)


class StreamCore:
    """Runs ``{name: (expr, epoch)}`` incrementally over batches, keyed by symbol."""

    def __init__(self, factors: dict[str, tuple[Expr, int]]) -> None:
        self.factors = dict(factors)
        self.symbols: list[str] = []
        self.sym_index: dict[str, int] = {}
        self.program = build_program(self.factors)
        self.state = np.zeros((0, self.program.width))
        self._regs = np.empty((self.program.n_regs, 0))

    # -- symbols ------------------------------------------------------------------------------
    def symbol_ids(self, symbols) -> np.ndarray:
        """Map a column of symbols to state rows, registering new symbols (vectorised:
        one hash pass in C, Python only per *distinct* new symbol)."""
        if len(symbols) == 1:
            sym = symbols[0]
            sid = self.sym_index.get(sym)
            if sid is None:
                sid = self._register([sym])[0]
            return np.array([sid], dtype=np.int64)
        codes, uniques = pd.factorize(np.asarray(symbols, dtype=object), use_na_sentinel=False)
        ids = np.fromiter((self.sym_index.get(u, -1) for u in uniques), dtype=np.int64, count=len(uniques))
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            ids[missing] = self._register([uniques[j] for j in missing])
        return ids[codes]

    def _register(self, new: list[str]) -> list[int]:
        for sym in new:
            if not isinstance(sym, str):
                raise ValueError(f"symbol must be a string, got {sym!r}")
        start = len(self.symbols)
        out = list(range(start, start + len(new)))
        self.symbols.extend(new)
        self.sym_index.update(zip(new, out))
        need = len(self.symbols)
        if need > self.state.shape[0]:  # grow geometrically; zero rows are fresh state
            cap = max(need, 2 * self.state.shape[0], 64)
            grown = np.zeros((cap, self.program.width))
            grown[: self.state.shape[0]] = self.state
            self.state = grown
        return out

    # -- running -------------------------------------------------------------------------------
    def run(self, columns: dict[str, np.ndarray], sid: np.ndarray) -> dict[str, np.ndarray]:
        """Advance the state over the rows (in order) and return each factor's values."""
        m = len(sid)
        for name in self.program.inputs:
            if name not in columns:
                raise KeyError(f"input batch has no column {name!r} (columns: {sorted(columns)})")
        out = {name: np.empty(m) for name in self.program.outputs}
        for lo in range(0, m, _CHUNK):
            hi = min(m, lo + _CHUNK)
            k = hi - lo
            if self._regs.shape[1] != k:
                self._regs = np.empty((self.program.n_regs, k))
            regs = self._regs
            for name, r in self.program.inputs.items():
                regs[r] = columns[name][lo:hi]
            run_program(self.program.code, self.program.fp, regs, np.ascontiguousarray(sid[lo:hi]), self.state)
            for name, r in self.program.outputs.items():
                out[name][lo:hi] = regs[r]
        return out

    # -- changing the factor set ----------------------------------------------------------------
    def set_factors(self, factors: dict[str, tuple[Expr, int]]) -> None:
        """Rebuild the program, keeping the state of every instruction that survives."""
        old_prog, old_state = self.program, self.state
        prog = build_program(factors)
        state = np.zeros((old_state.shape[0], prog.width))
        for key, (off, w) in prog.slots.items():
            if key in old_prog.slots:
                o_off, o_w = old_prog.slots[key]
                state[:, off:off + w] = old_state[:, o_off:o_off + o_w]
        self.factors, self.program, self.state = dict(factors), prog, state
        self._regs = np.empty((prog.n_regs, 0))

    def adopt(self, other: "StreamCore") -> None:
        """Copy ``other``'s state for every instruction both programs share (history warm-up)."""
        if not other.symbols:
            return
        ids = self.symbol_ids(np.asarray(other.symbols, dtype=object))
        for key, (off, w) in self.program.slots.items():
            if key in other.program.slots:
                o_off, _ = other.program.slots[key]
                self.state[ids, off:off + w] = other.state[: len(other.symbols), o_off:o_off + w]
