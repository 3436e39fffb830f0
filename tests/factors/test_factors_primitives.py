"""The primitive records (``primitives.py``) against the runtimes that implement them."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_factors import market
from pyplatform.factors import compile_batch, load_library, parse
from pyplatform.factors.batch import _Ctx
from pyplatform.factors.primitives import OPCODES, PRIMITIVES
from pyplatform.factors.gpu import SUPPORTED_PRIMITIVES


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
