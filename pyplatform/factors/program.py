"""Compile lowered factor trees into one program for the stream kernel (``kernels.run_program``).

Common subexpressions are computed once (``mavg(close, 20)`` shared by five factors is one
instruction). Stateful instructions are keyed by ``(epoch, canonical text)``: factors added at
the same time share state, while a factor added later gets fresh state and so warms up exactly
as if it had been computed alone from the rows it sees (or from the history it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyplatform.factors.functions import lower
from pyplatform.factors.kernels import OPCODES, state_width
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["Program", "build_program"]

_STATEFUL = {"_move", "_wsum", "_wvar", "_wext", "_wcov", "_wrank", "_ema", "_wma", "_cum"}


@dataclass
class Program:
    """Instructions plus the register and state layout they use."""

    code: np.ndarray              # int64 [k, 9]
    fp: np.ndarray                # float64 [k, 2]
    n_regs: int
    inputs: dict[str, int]        # column name -> register
    outputs: dict[str, int]       # factor name -> register
    slots: dict[tuple, tuple[int, int]] = field(default_factory=dict)  # state key -> (offset, width)
    width: int = 0


def build_program(factors: dict[str, tuple[Expr, int]]) -> Program:
    """Compile ``{name: (expr, epoch)}`` into a :class:`Program`."""
    regs: dict[tuple, int] = {}
    inputs: dict[str, int] = {}
    code: list[list[int]] = []
    fp: list[list[float]] = []
    slots: dict[tuple, tuple[int, int]] = {}
    widths: dict[int, int] = {}
    width = 0
    n_regs = 1  # register 0 is a scratch operand for unused slots

    def new_reg() -> int:
        nonlocal n_regs
        n_regs += 1
        return n_regs - 1

    def emit(op: str, out: int, a=0, b=0, c=0, off=0, i1=0, i2=0, f1=0.0, f2=0.0) -> None:
        code.append([OPCODES[op], out, a, b, c, off, i1, i2, widths.get(off, 0) if op.startswith("_") else 0])
        fp.append([f1, f2])

    def visit(node: Expr, epoch: int) -> int:
        nonlocal width
        key = (epoch, str(node)) if not isinstance(node, (Num, Col)) else (None, type(node).__name__, str(node))
        if key in regs:
            return regs[key]
        if isinstance(node, Col):
            r = inputs.setdefault(node.name, new_reg())
        elif isinstance(node, Num):
            r = new_reg()
            emit("const", r, f1=node.value)
        elif isinstance(node, Unary):
            a = visit(node.operand, epoch)
            r = new_reg()
            emit("neg" if node.op == "-" else "not", r, a)
        elif isinstance(node, Binary):
            a, b = visit(node.left, epoch), visit(node.right, epoch)
            r = new_reg()
            emit(node.op, r, a, b)
        else:
            assert isinstance(node, Call)
            if node.name not in _STATEFUL:
                ops = [visit(x, epoch) for x in node.args] + [0, 0]
                r = new_reg()
                emit(node.name, r, ops[0], ops[1], ops[2])
            else:
                nseries = 2 if node.name == "_wcov" else 1
                srcs = [visit(x, epoch) for x in node.args[:nseries]]
                p = [x.value for x in node.args[nseries:]]
                n = int(p[0]) if node.name != "_cum" else 0
                w = state_width(node.name, n)
                slots[key] = (width, w)
                widths[width] = w
                off = width
                width += w
                r = new_reg()
                a = srcs[0]
                b = srcs[1] if nseries == 2 else 0
                if node.name == "_move":
                    emit("_move", r, a, off=off, i1=n)
                elif node.name == "_wsum":
                    emit("_wsum", r, a, off=off, i1=n, i2=int(p[1]), f1=p[2], f2=p[3])
                elif node.name in ("_wvar", "_wext", "_wrank"):
                    emit(node.name, r, a, off=off, i1=n, i2=int(p[1]), f1=p[2])
                elif node.name == "_wcov":
                    emit("_wcov", r, a, b, off=off, i1=n, i2=int(p[1]), f1=p[2])
                elif node.name == "_ema":  # optional 4th argument: leading values to skip
                    emit("_ema", r, a, off=off, i1=n, i2=int(p[2]) if len(p) > 2 else 0, f1=p[1])
                elif node.name == "_wma":
                    emit("_wma", r, a, off=off, i1=n)
                else:  # _cum
                    emit("_cum", r, a, off=off, f1=p[0])
        regs[key] = r
        return r

    outputs = {name: visit(lower(expr), epoch) for name, (expr, epoch) in factors.items()}
    return Program(
        code=np.asarray(code, dtype=np.int64).reshape(-1, 9),
        fp=np.asarray(fp, dtype=np.float64).reshape(-1, 2),
        n_regs=n_regs, inputs=inputs, outputs=outputs, slots=slots, width=width,
    )
