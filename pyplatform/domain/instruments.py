"""Asset classes, their price precision and lot conventions, and instruments."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum

__all__ = ["AssetClass", "Instrument", "PRICE_DECIMALS", "round_price", "asset_class_of"]


class AssetClass(str, Enum):
    STOCK = "stock"
    FOREX = "forex"
    CRYPTO = "crypto"
    INDEX = "index"


#: Decimal places a price carries, by asset class (DESIGN: forex 5, stocks 2, crypto 8).
PRICE_DECIMALS: dict[AssetClass, int] = {
    AssetClass.STOCK: 2,
    AssetClass.FOREX: 5,
    AssetClass.CRYPTO: 8,
    AssetClass.INDEX: 2,
}

#: Default lot (the unit orders are sized in): board lot 100 shares, forex standard lot
#: 100,000 units of base currency, crypto in its exchange step size.
DEFAULT_LOT: dict[AssetClass, float] = {
    AssetClass.STOCK: 100.0,
    AssetClass.FOREX: 100_000.0,
    AssetClass.CRYPTO: 0.0001,
    AssetClass.INDEX: 1.0,
}

# iTick's region codes used by this platform's symbols ("AAPL.US", "EURUSD.GB", "BTCUSDT.BA").
_REGION_CLASS = {
    "US": AssetClass.STOCK, "HK": AssetClass.STOCK, "SH": AssetClass.STOCK, "SZ": AssetClass.STOCK,
    "GB": AssetClass.FOREX, "FX": AssetClass.FOREX,
    "BA": AssetClass.CRYPTO, "CRYPTO": AssetClass.CRYPTO,
    "IDX": AssetClass.INDEX,
}


def asset_class_of(symbol: str) -> AssetClass:
    """Asset class implied by a platform symbol's region suffix.

    Raises
    ------
    ValueError
        If the symbol has no known ``.REGION`` suffix.
    """
    if "." not in symbol:
        raise ValueError(f"symbol {symbol!r} has no region suffix (expected e.g. 'AAPL.US')")
    region = symbol.rsplit(".", 1)[1].upper()
    try:
        return _REGION_CLASS[region]
    except KeyError:
        raise ValueError(f"symbol {symbol!r}: unknown region {region!r}") from None


def round_price(value: float | Decimal, asset_class: AssetClass) -> Decimal:
    """Round a price to its asset class's precision (banker's rounding, exact decimal)."""
    q = Decimal(1).scaleb(-PRICE_DECIMALS[asset_class])
    return Decimal(str(value)).quantize(q, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable symbol with its conventions."""

    symbol: str
    asset_class: AssetClass
    sector: str = ""
    lot_size: float = 0.0
    tick_size: float = 0.0
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.lot_size:
            object.__setattr__(self, "lot_size", DEFAULT_LOT[self.asset_class])
        if not self.tick_size:
            object.__setattr__(self, "tick_size", 10.0 ** -PRICE_DECIMALS[self.asset_class])

    @property
    def price_decimals(self) -> int:
        return PRICE_DECIMALS[self.asset_class]
