"""Backtesting on history with the live code: event-driven (``run_backtest``) and vectorised sweeps."""

from pyplatform._lazy import lazy_exports

_EXPORTS = {
    "BacktestConfig": "config", "FeeSchedule": "config", "SlippageConfig": "config",
    "BacktestResult": "results", "list_runs": "results", "load_run": "results", "save_run": "results",
    "run_backtest": "run", "LookAheadError": "signals",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["run_backtest", "BacktestConfig", "SlippageConfig", "FeeSchedule", "BacktestResult", "list_runs",
           "load_run", "save_run", "LookAheadError"]

