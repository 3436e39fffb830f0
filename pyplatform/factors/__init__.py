"""The factor language: one definition, three runtimes.

>>> from pyplatform.factors import parse, compile_batch, compile_stream, to_dolphindb
>>> e = parse("(close - mavg(close, 20)) / mstd(close, 20)")
>>> e.lookback
19
>>> e.input_columns
('close',)

``compile_batch(e)(frame)`` computes over history, ``compile_stream(e).update(batch)``
incrementally, ``to_dolphindb(e)`` gives DolphinDB metacode; :class:`FactorEngine` runs many
factors keyed by symbol; :func:`load_library` reads the built-in definitions in ``factors/``.
"""

from __future__ import annotations

from pyplatform._lazy import lazy_exports

from pyplatform.factors.batch import compile_batch
from pyplatform.factors.errors import FactorError, FactorSyntaxError, FactorTypeError
from pyplatform.factors.factor import Factor, as_factor, parse
from pyplatform.factors.functions import FUNCTIONS
from pyplatform.factors.stream import StreamFactor, compile_stream
from pyplatform.factors.tree import Binary, Call, Col, Expr, Num, Unary

__all__ = [
    "parse", "Factor", "as_factor", "compile_batch", "compile_stream", "StreamFactor", "to_dolphindb", "FactorEngine",
    "load_library", "FactorDef", "FactorError", "FactorSyntaxError", "FactorTypeError", "FUNCTIONS",
    "Expr", "Num", "Col", "Unary", "Binary", "Call",
]


# lazy: the engine, DolphinDB translation and library load on demand
__getattr__, __dir__ = lazy_exports(__name__, {
    "FactorEngine": "engine", "to_dolphindb": "dolphindb", "to_dolphindb_metrics": "dolphindb",
    "load_library": "library", "FactorDef": "library", "get_factor": "library",
})
