"""Position sizing: risk per trade, a volatility-scaled position ratio, and lot rounding."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Protocol

from pyplatform.domain import Instrument, asset_class_of

__all__ = ["position_size", "round_to_lot", "lot_size_of", "position_ratio", "Sizer", "all_in"]


class Sizer(Protocol):
    """How much to hold of a new position (``RiskManager(sizer=...)``)."""

    def __call__(self, account: str, symbol: str, equity: Decimal, price: Decimal,
                 strength: float) -> Decimal: ...


def all_in(account: str, symbol: str, equity: Decimal, price: Decimal, strength: float = 1.0) -> Decimal:
    """The whole equity at ``price``, rounded down to 1e-8 (a backtest's all-in sizing).

    Zero when the price or the equity is not positive; ``strength`` is ignored.
    """
    equity, price = Decimal(str(equity)), Decimal(str(price))
    if price <= 0 or equity <= 0:
        return Decimal(0)
    return (equity / price).quantize(Decimal("1e-8"), rounding=ROUND_FLOOR)


def lot_size_of(symbol: str, override: float | None = None) -> Decimal:
    """The unit an order in ``symbol`` is sized in: board lot 100 shares for stocks, a
    standard lot of 100,000 for forex, the step size for crypto (``override`` wins)."""
    if override:
        return Decimal(str(override))
    return Decimal(str(Instrument(symbol, asset_class_of(symbol)).lot_size))


def round_to_lot(qty: Decimal, lot: Decimal) -> Decimal:
    """``qty`` rounded down to a whole number of lots (never sizes up past the risk budget)."""
    if lot <= 0:
        raise ValueError(f"lot size must be > 0, got {lot}")
    lots = (qty / lot).to_integral_value(rounding=ROUND_FLOOR)
    return (lots * lot).normalize() if lots else Decimal(0)


def position_ratio(hist_vol: float | None, vol_scale: float = 2.0) -> Decimal:
    """``1 / (1 + vol_scale x hist_vol)``: the share of equity a position may take."""
    if hist_vol is None:
        return Decimal(1)
    if hist_vol < 0:
        raise ValueError(f"historical volatility must be >= 0, got {hist_vol}")
    return Decimal(1) / (Decimal(1) + Decimal(str(vol_scale)) * Decimal(str(hist_vol)))


def position_size(symbol: str, equity: Decimal, price: Decimal, *, stop_fraction: float = 0.05,
                  risk_per_trade: float = 0.02, hist_vol: float | None = None, vol_scale: float = 2.0,
                  strength: float = 1.0, lot_size: float | None = None,
                  max_fraction: float | None = None) -> Decimal:
    """Order quantity for a new position.

    The smaller of (a) the quantity whose loss at the stop equals ``risk_per_trade`` of
    equity -- ``equity x risk / (price x stop)`` -- and (b) the quantity worth
    ``equity x strength / (1 + vol_scale x hist_vol)``, rounded down to whole lots.

    Parameters
    ----------
    symbol : str
        Decides the asset class and so the lot (``lot_size`` overrides).
    equity, price : Decimal
    stop_fraction : float
        Distance of the stop-loss (the risk per unit), e.g. 0.05.
    strength : float
        Signal strength in [0, 1] scaling (b).
    max_fraction : float, optional
        Cap the position's value at this share of equity (the concentration limit), so
        sizing never proposes what the concentration check would refuse.

    Returns
    -------
    Decimal
        Zero when not even one lot fits.
    """
    equity, price = Decimal(str(equity)), Decimal(str(price))
    if price <= 0:
        raise ValueError(f"{symbol}: price must be > 0 for sizing, got {price}")
    if not 0 < stop_fraction < 1:
        raise ValueError(f"{symbol}: stop_fraction must be in (0, 1), got {stop_fraction}")
    if equity <= 0:
        return Decimal(0)
    by_risk = equity * Decimal(str(risk_per_trade)) / (price * Decimal(str(stop_fraction)))
    strength_d = Decimal(str(min(max(strength, 0.0), 1.0)))
    by_ratio = equity * position_ratio(hist_vol, vol_scale) * strength_d / price
    qty = min(by_risk, by_ratio)
    if max_fraction is not None:
        qty = min(qty, equity * Decimal(str(max_fraction)) / price)
    return round_to_lot(qty, lot_size_of(symbol, lot_size))
