"""Domain types: market data, instruments, signals (orders live in ``pyplatform.execution``)."""

from pyplatform.domain.instruments import PRICE_DECIMALS, AssetClass, Instrument, asset_class_of, round_price
from pyplatform.domain.market_data import Bar, Depth, DepthLevel, Quote, Tick
from pyplatform.domain.signals import Direction, Signal

__all__ = [
    "AssetClass", "Instrument", "PRICE_DECIMALS", "asset_class_of", "round_price",
    "Tick", "Quote", "Depth", "DepthLevel", "Bar", "Direction", "Signal",
]
