"""The primitive records (``primitives.py``) against the runtimes that implement them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers_factors import market
from pyplatform.dolphindb.signatures import ENGINE_FUNCTIONS
from pyplatform.factors import FUNCTIONS, Factor, compile_batch, compile_stream, kernels, load_library, parse, to_dolphindb
from pyplatform.factors.batch import _Ctx
from pyplatform.factors.functions import COMPOSITES, INTERNAL, lower
from pyplatform.factors.gpu import SUPPORTED_PRIMITIVES, _Evaluator, compute_factors_gpu
from pyplatform.factors.primitives import CORE_FORMS, ELEMENTWISE, OPCODES, PRIMITIVES
from pyplatform.factors.tree import Binary, Call, Col, Num


def test_every_primitive_has_a_batch_method_an_opcode_and_a_gpu_path():
    assert len(set(OPCODES.values())) == len(OPCODES)  # opcodes are distinct
    for name, prim in PRIMITIVES.items():
        assert callable(getattr(_Ctx, name, None)), name
        assert OPCODES[name] == prim.opcode
        assert name in SUPPORTED_PRIMITIVES


@pytest.mark.parametrize("f", load_library(), ids=lambda f: f.name)
def test_lookback_is_the_first_non_null_row_without_nulls(f):
    # the look-back rules in the records, checked against what the batch runtime computes
    frame = market(2, 1, 140)
    values = compile_batch(f.expr)(frame).to_numpy()
    first = int(np.flatnonzero(~np.isnan(values))[0])
    assert parse(f.expression).lookback == first, f.name


def test_variances_of_one_series_share_one_state_and_survive_removal():
    from pyplatform.factors import FactorEngine, compile_stream

    frame = market(4, 3, 60, nan_frac=0.1)
    exprs = {"sd": "mstd(close, 5)", "sdp": "mstdp(close, 5)", "v": "mvar(close, 5, 3)", "vp": "mvarp(close, 5)"}
    eng = FactorEngine(dict(exprs))
    prog = eng._core.program
    assert (prog.code[:, 0] == OPCODES["_wvar"]).sum() == 3  # sd+sdp share; v has its own minPeriods
    first, rest = frame.iloc[:90], frame.iloc[90:]
    out = eng.compute(first)
    for name, text in exprs.items():  # each output equals the factor computed alone
        np.testing.assert_array_equal(out[name], compile_stream(text).update(first), err_msg=name)
    eng.remove_factor("sd")  # the shared state stays with mstdp
    later = eng.compute(rest)
    np.testing.assert_array_equal(later["sdp"], compile_stream(exprs["sdp"]).update(frame)[90:])
    np.testing.assert_array_equal(later["vp"], compile_stream(exprs["vp"]).update(frame)[90:])


# ---------------------------------------------------------------- every layer reads the records
# The records of primitives.py name each layer's implementation; these tests fail when a layer
# misses a primitive (or a core function is left without a record).

_SAMPLE = {"win": 5.0, "steps": 2.0, "bool": 1.0, "num": 2.0}


def _sample_call(name: str, with_optional: bool) -> Call:
    """``name`` called with sample arguments: series close, volume, high; windows 5..."""
    spec = FUNCTIONS.get(name) or INTERNAL[name]
    series = iter(["close", "volume", "high"])
    args = []
    for p in spec.params:
        if p.optional and not with_optional:
            break
        if p.kind == "x":
            args.append(Col(next(series)))
        elif p.kind == "minp":
            args.append(Num(3.0))
        else:
            args.append(Num(_SAMPLE[p.kind]))
    return Call(name, tuple(args))


def _called_primitives(tree) -> set[str]:
    return {node.name for node in tree.walk() if isinstance(node, Call)}


def test_every_core_function_belongs_to_one_record_and_composites_only_expand():
    core = {n for n, s in FUNCTIONS.items() if s.macro is None} | set(INTERNAL)
    named = [f for p in PRIMITIVES.values() for f in p.functions] + list(ELEMENTWISE)
    assert sorted(named) == sorted(set(named)), "a core function is named by two records"
    assert set(named) == core, f"core functions without a record: {sorted(core - set(named))}; " \
                               f"records naming no core function: {sorted(set(named) - core)}"
    for name, comp in COMPOSITES.items():
        spec = FUNCTIONS[name]
        assert spec.lower is None and spec.macro is comp, name  # computed only through its macro
    for prim in PRIMITIVES.values():
        assert prim.functions, f"{prim.name}: no core function lowers to it"
        for fname in prim.functions:
            low = lower(_sample_call(fname, with_optional=False))
            assert prim.name in _called_primitives(low), (prim.name, fname, str(low))


def test_every_layer_implements_every_primitive():
    for prim in PRIMITIVES.values():
        assert callable(getattr(_Ctx, prim.batch, None)), f"batch runtime lacks {prim.name}"
        kernel = getattr(kernels, prim.kernel, None)
        assert kernel is not None and hasattr(kernel, "py_func"), f"no numba stream kernel for {prim.name}"
        assert callable(getattr(_Evaluator, prim.gpu, None)), f"GPU path lacks {prim.name}"
        assert prim.name in SUPPORTED_PRIMITIVES
        assert OPCODES[prim.name] == prim.opcode


@pytest.mark.parametrize("fname", sorted({f for p in PRIMITIVES.values() for f in p.functions} | ELEMENTWISE))
def test_each_core_function_runs_alike_in_batch_stream_and_gpu_and_translates(fname):
    # values, not just names: an opcode the VM does not dispatch, or a GPU method that reads its
    # constants wrongly, gives values that differ from the batch runtime's
    frame = market(5, 3, 60, nan_frac=0.05)
    for with_optional in (False, True):
        call = _sample_call(fname, with_optional)
        if fname == "iif":
            call = Call("iif", (Binary(">", Col("close"), Col("open")), Col("high"), Col("low")))
        factor = Factor(call)
        ref = compile_batch(factor)(frame).to_numpy()
        assert np.isfinite(ref).sum() > 20, (str(call), "sample gives too few values to compare")
        stream = compile_stream(factor).update(frame)
        gpu = compute_factors_gpu(frame, {"f": factor}, device="cpu")["f"].to_numpy()
        for label, got in (("stream", stream), ("gpu", gpu)):
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"{label}: {call}")
        text = to_dolphindb(factor)
        used = set(re.findall(r"([A-Za-z_]\w*)\(", text))
        assert used <= ENGINE_FUNCTIONS, (str(call), text, used - ENGINE_FUNCTIONS)
    if fname in CORE_FORMS and CORE_FORMS[fname] is not None:
        assert CORE_FORMS[fname].templates, fname
