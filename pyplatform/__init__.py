"""pyplatform: a time-series-database-centric analytics platform for quantitative trading.

In a notebook::

    import pyplatform as pp
    bars = pp.bars(["AAPL.US"], start="2024-01-02", end="2024-02-01", freq="5min")
    mom = pp.factor("close / move(close, 20) - 1", start="2023-01-01")
    pp.evaluate("mom_20")              # rank IC, quantile returns, turnover...
    pp.publish("my_mom", "close / move(close, 20) - 1", description="20-day momentum")

Verbs are imported lazily so ``import pyplatform`` stays fast.
"""

from __future__ import annotations

from pyplatform._lazy import lazy_exports

__version__ = "0.1.0"

# The notebook verbs, served from pyplatform.api on first use. ``pp.backtest`` is the
# ``pyplatform.backtest`` package (a subpackage, not listed here); the verb is ``pp.run_backtest``.
_VERBS = (
    "history", "bars", "ticks", "library", "factor", "evaluate", "publish", "retire", "published",
    "draft_strategy", "subscribe", "run_backtest", "sweep", "compute_factor", "chart", "factor_figures",
    "universe", "save_universe", "Timedelta", "Timestamp",
)
__getattr__, _ = lazy_exports(__name__, dict.fromkeys(_VERBS, "api"))

__all__ = sorted(_VERBS) + ["__version__"]


def __dir__():
    return __all__
