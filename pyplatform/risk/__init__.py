"""Pre-trade risk: limits, sizing, stops, the kill switch (pure, clock-driven).

Also home of :class:`MarketState`, the one copy of prices and positions that risk, stops
and ``pyplatform.execution`` share. Nothing here imports ``pyplatform.execution`` (which
imports risk), so the two packages form no import cycle (``tests/trading/test_trading_layers.py``).
"""

from pyplatform.risk.config import AccountLimits, RiskConfig, SymbolLimits
from pyplatform.risk.manager import AccountSnapshot, KillMode, OrderIntent, RiskDecision, RiskManager
from pyplatform.risk.market import MarketState
from pyplatform.ratelimit import TokenBucket
from pyplatform.risk.sizing import Sizer, all_in, lot_size_of, position_ratio, position_size, round_to_lot
from pyplatform.risk.stops import NoStops, StopBook, StopLevels, StopPolicy, StopTriggered

__all__ = ["AccountLimits", "RiskConfig", "SymbolLimits", "AccountSnapshot", "KillMode", "RiskDecision",
           "RiskManager", "OrderIntent", "MarketState", "TokenBucket", "lot_size_of", "position_ratio",
           "position_size", "round_to_lot", "Sizer", "all_in", "StopBook", "StopLevels", "StopTriggered",
           "StopPolicy", "NoStops"]
