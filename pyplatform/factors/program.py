"""Compile lowered factor trees into one program for the stream kernel (``kernels.run_program``).

Common subexpressions are computed once (``mavg(close, 20)`` shared by five factors is one
instruction). Stateful instructions are keyed by ``(epoch, canonical text)``: factors added at
the same time share state, while a factor added later gets fresh state and so warms up exactly
as if it had been computed alone from the rows it sees (or from the history it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyplatform.factors.factor import Factor, as_factor
from pyplatform.factors.primitives import OPCODES, PRIMITIVES, STATEFUL
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = ["Program", "build_program"]


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


def build_program(factors: dict[str, tuple[Factor | Expr, int]]) -> Program:
    """Compile ``{name: (factor, epoch)}`` into a :class:`Program` (from each lowered tree)."""
    regs: dict[tuple, int] = {}
    inputs: dict[str, int] = {}
    code: list[list[int]] = []
    fp: list[list[float]] = []
    slots: dict[tuple, tuple[int, int]] = {}
    shared: dict[tuple, int] = {}  # _wvar state key -> its instruction (see visit)
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
            if node.name not in STATEFUL:
                ops = [visit(x, epoch) for x in node.args] + [0, 0]
                r = new_reg()
                emit(node.name, r, ops[0], ops[1], ops[2])
            else:
                prim = PRIMITIVES[node.name]
                srcs = [visit(x, epoch) for x in node.args[:prim.series]]
                p = [x.value for x in node.args[prim.series:]]
                if node.name == "_wvar":
                    # the state does not depend on the mode (var/std/varp/stdp): a second mode
                    # over the same series and window is a second output of one instruction
                    skey = (epoch, str(Call("_wvar", node.args[:3] + (Num(0.0),))))
                    k = shared.get(skey)
                    if k is not None and fp[k][1] == 0.0:
                        r = new_reg()
                        code[k][4] = r
                        fp[k][1] = p[2] + 1.0
                        regs[key] = r
                        return r
                    key_state = (skey, sum(1 for s in slots if s[0] == skey))
                else:
                    key_state = key
                w = prim.state_floats(int(p[0]) if prim.state[1] else 0)
                slots[key_state] = (width, w)
                widths[width] = w
                off = width
                width += w
                r = new_reg()
                i1, i2, f1, f2 = prim.pack(p)
                emit(node.name, r, srcs[0], srcs[1] if prim.series == 2 else 0, off=off, i1=i1, i2=i2, f1=f1, f2=f2)
                if node.name == "_wvar":
                    shared[key_state[0]] = len(code) - 1
        regs[key] = r
        return r

    outputs = {name: visit(as_factor(expr).lowered, epoch) for name, (expr, epoch) in factors.items()}
    return Program(
        code=np.asarray(code, dtype=np.int64).reshape(-1, 9),
        fp=np.asarray(fp, dtype=np.float64).reshape(-1, 2),
        n_regs=n_regs, inputs=inputs, outputs=outputs, slots=slots, width=width,
    )
