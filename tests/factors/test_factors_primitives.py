"""The primitive records (``primitives.py``) against the runtimes that implement them."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_factors import market
from pyplatform.factors import compile_batch, load_library, parse
from pyplatform.factors.batch import _Ctx
from pyplatform.factors.primitives import OPCODES, PRIMITIVES
from pyplatform.models.gpu_batch import SUPPORTED_PRIMITIVES


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
