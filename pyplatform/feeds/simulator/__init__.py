"""Local exchange simulator speaking iTick's WebSocket protocol and REST K-lines."""

from pyplatform.feeds.simulator.config import SimulatorConfig
from pyplatform.feeds.simulator.faults import MALFORMED, FaultPlan
from pyplatform.feeds.simulator.tape import DEFAULT_SYMBOLS, MarketTape
from pyplatform.feeds.simulator.server import ConnectionRecord, ExchangeSimulator, start_simulator

__all__ = ["SimulatorConfig", "FaultPlan", "MALFORMED", "MarketTape", "DEFAULT_SYMBOLS",
           "ExchangeSimulator", "ConnectionRecord", "start_simulator"]
