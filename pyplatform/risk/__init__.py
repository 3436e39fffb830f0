"""Pre-trade risk: limits, sizing, stops, the kill switch (pure, clock-driven)."""

from pyplatform.risk.config import AccountLimits, RiskConfig, SymbolLimits
from pyplatform.risk.manager import AccountSnapshot, KillMode, RiskDecision, RiskManager
from pyplatform.risk.rate import TokenBucket
from pyplatform.risk.sizing import lot_size_of, position_ratio, position_size, round_to_lot
from pyplatform.risk.stops import StopBook, StopLevels, StopTriggered

__all__ = ["AccountLimits", "RiskConfig", "SymbolLimits", "AccountSnapshot", "KillMode", "RiskDecision",
           "RiskManager", "TokenBucket", "lot_size_of", "position_ratio", "position_size", "round_to_lot",
           "StopBook", "StopLevels", "StopTriggered"]
