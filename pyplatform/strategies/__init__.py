"""Strategies: factor rows in, typed signals out (pure, no look-ahead)."""

from pyplatform.strategies.base import KEEP, Strategy, StrategyConfig, signals_to_batch
from pyplatform.strategies.library import STRATEGIES, DualMACrossover, Momentum, ZScoreMeanReversion, build

__all__ = ["Strategy", "StrategyConfig", "KEEP", "signals_to_batch", "DualMACrossover", "ZScoreMeanReversion",
           "Momentum", "STRATEGIES", "build"]
