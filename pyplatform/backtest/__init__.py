"""Backtesting on history with the live code: event-driven (``run_backtest``) and vectorised sweeps."""

from pyplatform.backtest.config import BacktestConfig, FeeSchedule, SlippageConfig
from pyplatform.backtest.results import BacktestResult, list_runs, load_run, save_run
from pyplatform.backtest.run import run_backtest
from pyplatform.backtest.signals import LookAheadError

__all__ = ["run_backtest", "BacktestConfig", "SlippageConfig", "FeeSchedule", "BacktestResult", "list_runs",
           "load_run", "save_run", "LookAheadError"]
