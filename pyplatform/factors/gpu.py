"""GPU batch factors (optional): the factor library over long histories with CuPy, else NumPy.

The factor's lowered tree (``Factor.lowered``, over the primitives of ``primitives.py``) is
evaluated over a panel ``[n_symbols, n_times]`` by :mod:`pyplatform.factors.gpu_ops`, written
against an array module ``xp``; each primitive's record names the evaluator method that
implements it (``Primitive.gpu``). With CuPy and an NVIDIA GPU ``xp`` is :mod:`cupy`; otherwise it is
:mod:`numpy`, running exactly the same code, which is how the path is tested on machines
without a GPU (against :func:`pyplatform.factors.compile_batch`, the reference).

>>> from pyplatform.factors.gpu import compute_library_gpu
>>> out = compute_library_gpu(bars)                 # doctest: +SKIP
>>> out.attrs["array_module"]                      # doctest: +SKIP
'numpy'

Limits: the whole panel and every intermediate of the requested factors are held in (GPU)
memory at once (8 bytes x symbols x longest history per array); split very long histories by
symbol. A function the GPU path does not implement raises :class:`GpuUnsupportedError` naming
it, so the caller can fall back to ``compile_batch``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from pyplatform.factors import gpu_ops as ops
from pyplatform.factors.batch import binary_op, frame_layout
from pyplatform.factors.factor import Factor, as_factor
from pyplatform.factors.functions import lower
from pyplatform.factors.primitives import ELEMENTWISE as _ELEMENTWISE
from pyplatform.factors.primitives import PRIMITIVES
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = [
    "GpuUnsupportedError", "select_array_module", "check_supported", "Panel", "panel_layout",
    "evaluate_panel", "compute_factors_gpu", "compute_library_gpu", "SUPPORTED_PRIMITIVES",
]

log = logging.getLogger(__name__)

#: lowered primitives (and element-wise functions) this path implements: every record whose
#: ``gpu`` method the evaluator has (all of them; the records test checks)
def _supported() -> frozenset[str]:
    return frozenset(n for n, p in PRIMITIVES.items() if callable(getattr(_Evaluator, p.gpu, None))) | _ELEMENTWISE


class GpuUnsupportedError(NotImplementedError):
    """A factor uses a function the GPU batch path does not implement (use ``compile_batch``)."""


def select_array_module(device: str = "auto"):
    """Pick the array module for ``device``.

    Parameters
    ----------
    device : {"auto", "gpu", "cpu"}
        ``auto``: CuPy when it imports and sees at least one CUDA device, else NumPy;
        ``gpu``: CuPy or a :class:`RuntimeError` saying why not; ``cpu``: NumPy.

    Returns
    -------
    (module, str)
        The array module and a description of the device (logged and reported by callers).
    """
    if device not in ("auto", "gpu", "cpu"):
        raise ValueError(f"device must be 'auto', 'gpu' or 'cpu', got {device!r}")
    if device == "cpu":
        return np, "numpy (CPU)"
    try:
        import cupy

        count = int(cupy.cuda.runtime.getDeviceCount())
    except ImportError:
        reason = "cupy is not installed (pip install 'pyplatform[gpu]', i.e. cupy-cuda12x)"
    except Exception as exc:  # CUDA driver/runtime missing: cupy imports but cannot reach a device
        reason = f"CUDA runtime unavailable ({type(exc).__name__}: {exc})"
    else:
        if count > 0:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
            return cupy, f"cupy on GPU 0 ({name})"
        reason = "no CUDA device found (cupy.cuda.runtime.getDeviceCount() == 0)"
    if device == "gpu":
        raise RuntimeError(f"device='gpu' needs CuPy and an NVIDIA GPU: {reason}; "
                           "use device='auto' (falls back to NumPy) or device='cpu'")
    return np, f"numpy (CPU; no GPU: {reason})"


def _primitives(node: Expr) -> set[str]:
    return {n.name for n in node.walk() if isinstance(n, Call)}


def check_supported(expr: Factor | Expr) -> None:
    """Raise :class:`GpuUnsupportedError` naming the first function the GPU path lacks.

    Children are checked before their parent, so the function named is the one that lowers to
    the missing primitive.
    """
    if isinstance(expr, Factor):
        expr = expr.tree

    def visit(node: Expr) -> None:
        for c in node.children():
            visit(c)
        if isinstance(node, Call):
            missing = sorted(_primitives(lower(node)) - SUPPORTED_PRIMITIVES)
            if missing:
                raise GpuUnsupportedError(
                    f"function {node.name!r} (in {str(expr)!r}) is not supported by the GPU batch path "
                    f"(needs primitive(s) {missing}); compute it with pyplatform.factors.compile_batch")
    visit(expr)


@dataclass(frozen=True)
class Panel:
    """Where each frame row sits in the ``[n_symbols, n_times]`` panel.

    ``order`` sorts frame rows by (symbol, time, position) as the batch runtime does; the
    sorted row ``i`` goes to ``(row[i], col[i])``.
    """

    order: np.ndarray
    row: np.ndarray
    col: np.ndarray
    n_symbols: int
    n_times: int

    def to_panel(self, values: np.ndarray) -> np.ndarray:
        """Lay a frame-ordered column out as a NaN-padded panel (host memory)."""
        out = np.full((self.n_symbols, self.n_times), np.nan)
        out[self.row, self.col] = values[self.order]
        return out

    def from_panel(self, panel: np.ndarray) -> np.ndarray:
        """Read a panel back into frame row order."""
        out = np.empty(len(self.order))
        out[self.order] = panel[self.row, self.col]
        return out


def panel_layout(frame: pd.DataFrame) -> Panel:
    """The :class:`Panel` of a frame indexed by ``(datetime, symbol)`` (or with those columns)."""
    order, codes = frame_layout(frame)
    sc = codes[order]
    n = len(sc)
    if n == 0:
        return Panel(order, sc, sc, 0, 0)
    starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
    lengths = np.diff(np.r_[starts, n])
    row = np.repeat(np.arange(len(starts)), lengths)
    col = np.arange(n) - np.repeat(starts, lengths)
    return Panel(order, row, col, len(starts), int(lengths.max()))


class _Evaluator:
    """Evaluates lowered trees over panels; shared sub-expressions are computed once."""

    def __init__(self, xp, data: Mapping[str, object]):
        self.xp, self.data = xp, data
        self.memo: dict[str, object] = {}
        first = next(iter(data.values()))
        self.shape = first.shape

    def eval(self, node: Expr):
        key = str(node)
        if key not in self.memo:
            self.memo[key] = self._eval(node)
        return self.memo[key]

    def _eval(self, node: Expr):
        xp = self.xp
        if isinstance(node, Num):
            return xp.full(self.shape, node.value)
        if isinstance(node, Col):
            return self.data[node.name]
        if isinstance(node, Unary):
            a = self.eval(node.operand)
            return -a if node.op == "-" else xp.where(xp.isnan(a), ops.NAN, (a == 0).astype(xp.float64))
        if isinstance(node, Binary):
            return binary_op(node.op, self.eval(node.left), self.eval(node.right), xp)
        assert isinstance(node, Call)
        name, args = node.name, node.args
        if name in _ELEMENTWISE:
            return _elementwise(xp, name, [self.eval(a) for a in args])
        prim = PRIMITIVES.get(name)
        impl = getattr(self, prim.gpu, None) if prim is not None else None
        if impl is None:
            raise GpuUnsupportedError(f"primitive {name!r} is not supported by the GPU batch path")
        series = [self.eval(a) for a in args[:prim.series]]
        return impl(*series, *[a.value for a in args[prim.series:]])

    # -- primitives (named by their records' ``gpu`` field) -----------------------------------
    def _move(self, x, k):
        return ops.shift(self.xp, x, int(k))

    def _wsum(self, x, n, minp, mode, talib):
        return ops.wsum(self.xp, x, int(n), int(minp), int(mode), bool(talib))

    def _wvar(self, x, n, minp, mode):
        return ops.wvar(self.xp, x, int(n), int(minp), int(mode))

    def _wext(self, x, n, minp, sign):
        return ops.wext(self.xp, x, int(n), int(minp), sign)

    def _wcov(self, a, b, n, minp, mode):
        return ops.wcov(self.xp, a, b, int(n), int(minp), int(mode))

    def _wrank(self, x, n, minp, ascending):
        return ops.wrank(self.xp, x, int(n), int(minp), bool(ascending))

    def _ema(self, x, n, mode, skip=0.0):
        xp = self.xp
        if skip:  # the first `skip` non-NULL values are not observations (MACD's fast line)
            valid = ~xp.isnan(x)
            x = xp.where(xp.cumsum(valid.astype(xp.float64), axis=1) > skip, x, ops.NAN)
        return ops.ema(xp, x, int(n), int(mode))

    def _wma(self, x, n):
        return ops.wma(self.xp, x, int(n))

    def _cum(self, x, mode):
        return ops.cum(self.xp, x, int(mode))


SUPPORTED_PRIMITIVES: frozenset[str] = _supported()


def _elementwise(xp, name: str, a: list):
    if name == "iif":
        return xp.where(xp.isnan(a[0]), ops.NAN, xp.where(a[0] != 0, a[1], a[2]))
    if name == "max":
        return xp.maximum(a[0], a[1])  # NaN-propagating, as the CPU runtime
    if name == "min":
        return xp.minimum(a[0], a[1])
    x = a[0]
    if name == "log":
        return xp.where(x > 0, xp.log(xp.where(x > 0, x, 1.0)), ops.NAN)
    if name == "sqrt":
        return xp.where(x >= 0, xp.sqrt(xp.where(x >= 0, x, 0.0)), ops.NAN)
    return {"abs": xp.abs, "sign": xp.sign, "exp": xp.exp}[name](x)


def evaluate_panel(exprs: Mapping[str, Factor | Expr | str], data: Mapping[str, object], xp=np) -> dict[str, object]:
    """Evaluate factors over panels already in ``xp`` memory.

    Parameters
    ----------
    exprs : mapping of name to Factor, tree or text
    data : mapping of column name to ``[n_symbols, n_times]`` float64 arrays of module ``xp``,
        each symbol left-aligned and NaN-padded on the right
    xp : numpy or cupy

    Returns
    -------
    dict
        name -> ``[n_symbols, n_times]`` array of module ``xp`` (values in padding are meaningless).
    """
    trees = {k: as_factor(v) for k, v in exprs.items()}
    for tree in trees.values():
        check_supported(tree)
        missing = sorted(set(tree.input_columns) - set(data))
        if missing:
            raise KeyError(f"factor {str(tree)!r} needs column(s) {missing}; panel has {sorted(data)}")
    ev = _Evaluator(xp, data)
    with ops.errstate(xp):
        return {k: ev.eval(t.lowered) for k, t in trees.items()}


def _to_host(a) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


def compute_factors_gpu(frame: pd.DataFrame, factors: Mapping[str, Factor | Expr | str], device: str = "auto") -> pd.DataFrame:
    """Compute ``{name: expression}`` over a history frame on the GPU when present.

    Parameters
    ----------
    frame : DataFrame
        Indexed by ``(datetime, symbol)`` (or with ``symbol`` and ``ts``/``datetime`` columns), as
        :func:`pyplatform.factors.compile_batch` accepts.
    factors : mapping of name to Factor, tree or text
    device : {"auto", "gpu", "cpu"}
        See :func:`select_array_module`.

    Returns
    -------
    DataFrame
        Same index and row order as ``frame``, one column per factor, equal to
        ``compile_batch(expr)(frame)`` to floating-point tolerance. ``attrs["array_module"]``
        (``numpy`` or ``cupy``) and ``attrs["device"]`` report where it ran.
    """
    xp, where = select_array_module(device)
    trees = {k: as_factor(v) for k, v in factors.items()}
    for name, tree in trees.items():
        check_supported(tree)
        missing = sorted(c for c in tree.input_columns if c not in frame.columns)
        if missing:
            raise KeyError(f"factor {name!r} ({str(tree)!r}) needs column(s) {missing}; frame has {list(frame.columns)}")
    log.info("GPU batch factors: %d factor(s) on %s", len(trees), where)
    layout = panel_layout(frame)
    cols = sorted(set().union(*(t.input_columns for t in trees.values()))) if trees else []
    data = {c: xp.asarray(layout.to_panel(frame[c].to_numpy(dtype=np.float64, na_value=np.nan))) for c in cols}
    out = pd.DataFrame(index=frame.index)
    if layout.n_symbols and trees:
        res = evaluate_panel(trees, data, xp)
        for name in trees:
            out[name] = layout.from_panel(_to_host(res[name]))
    else:
        for name in trees:
            out[name] = np.full(len(frame), np.nan)
    out.attrs["array_module"] = xp.__name__
    out.attrs["device"] = where
    return out


def compute_library_gpu(frame: pd.DataFrame, names: list[str] | None = None, device: str = "auto") -> pd.DataFrame:
    """The built-in library's factors (:func:`pyplatform.factors.load_library`) over ``frame``.

    Parameters
    ----------
    frame : DataFrame
        History indexed by ``(datetime, symbol)``.
    names : list of str, optional
        Library factor names; default: every library factor written for the kind of ``frame``
        (its ``input``: bar factors when ``frame`` has the bar columns, tick factors when it has
        the tick columns).
    device : {"auto", "gpu", "cpu"}

    Returns
    -------
    DataFrame
        See :func:`compute_factors_gpu`.
    """
    from pyplatform.factors.library import INPUT_COLUMNS, load_library

    lib = {d.name: d for d in load_library()}
    if names is None:
        # the library factors written for this kind of frame (bars or ticks), by its columns
        have = set(frame.columns)
        kinds = {k for k, cols in INPUT_COLUMNS.items() if cols <= have}
        if not kinds:
            need = {k: sorted(cols - have) for k, cols in INPUT_COLUMNS.items()}
            raise ValueError(f"frame is neither bars nor ticks (missing columns: {need}); pass names=")
        chosen = {n: d.factor for n, d in lib.items() if d.input in kinds}
    else:
        unknown = [n for n in names if n not in lib]
        if unknown:
            raise ValueError(f"unknown library factor(s) {unknown}; known: {sorted(lib)}")
        chosen = {n: lib[n].factor for n in names}
    return compute_factors_gpu(frame, chosen, device)
