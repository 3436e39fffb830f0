"""Backtesting on history with the live code: event-driven (``run_backtest``) and vectorised sweeps."""

from pyplatform._lazy import lazy_exports

_EXPORTS = {
    "BacktestConfig": "config", "FeeSchedule": "config", "SlippageConfig": "config",
    "BacktestResult": "results", "list_runs": "results", "load_run": "results", "save_run": "results",
    "run_backtest": "run", "LookAheadError": "signals",
}
_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["run_backtest", "BacktestConfig", "SlippageConfig", "FeeSchedule", "BacktestResult", "list_runs",
           "load_run", "save_run", "LookAheadError"]


# ``pp.backtest(...)`` is a notebook verb, but importing this subpackage binds the name
# ``pyplatform.backtest`` to the module and would hide the verb. Making the module callable
# keeps both spellings working: ``pp.backtest(config, ...)`` and ``pp.backtest.run_backtest``.
import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    def __getattr__(self, name):  # the lazy exports (a module subclass bypasses module __getattr__)
        return _getattr(name)

    def __call__(self, *args, **kwargs):
        from pyplatform.api import backtest as _verb

        return _verb(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
