"""Risk limits: frozen pydantic models, per account with per-symbol overrides.

Ratios are fractions (0.05 = 5%). Comparison conventions (tests pin them): a quantity,
notional, position, concentration or price-band limit is breached when the value is
*above* the limit (equal passes); the daily loss limit is breached when the loss
*touches* it (>=); a symbol pauses when its turnover rate is *below* the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SymbolLimits", "AccountLimits", "RiskConfig", "EffectiveLimits"]

_OVERRIDABLE = ("max_position_qty", "max_order_qty", "max_order_notional", "max_overnight_qty",
                "price_band", "min_turnover_rate", "concentration", "fixed_stop", "trailing_stop",
                "time_stop_s", "lot_size")


class SymbolLimits(BaseModel):
    """Per-symbol overrides; ``None`` inherits the account's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position_qty: float | None = Field(None, ge=0)
    max_order_qty: float | None = Field(None, gt=0)
    max_order_notional: float | None = Field(None, gt=0)
    max_overnight_qty: float | None = Field(None, ge=0)
    price_band: float | None = Field(None, gt=0)
    min_turnover_rate: float | None = Field(None, ge=0)
    concentration: float | None = Field(None, gt=0)
    fixed_stop: float | None = Field(None, gt=0, lt=1)
    trailing_stop: float | None = Field(None, gt=0, lt=1)
    time_stop_s: float | None = Field(None, gt=0)
    lot_size: float | None = Field(None, gt=0)


class AccountLimits(BaseModel):
    """One account's risk limits (defaults are the issue's).

    Parameters
    ----------
    daily_loss_limit : float
        Loss from the start-of-day equity that stops opening orders until the next trading day.
    concentration : float
        Largest share of equity one symbol's position may be after an order.
    price_band : float
        Largest relative distance of a limit price from the last trade (fat-finger check).
    rate_per_s, burst : float, int
        Token bucket for order submissions: refill rate and capacity.
    min_turnover_rate : float
        A symbol whose turnover rate (volume / float) is below this pauses for opening orders.
    risk_per_trade : float
        Equity at risk per trade for sizing (with the fixed stop as the risk distance).
    vol_scale : float
        Position ratio is ``1 / (1 + vol_scale x historical volatility)``.
    fixed_stop, trailing_stop, time_stop_s : float
        Stop-loss from the average cost, trailing stop from the high-water mark, and the
        longest holding time (None: no time stop).
    session_close_utc_s, overnight_window_s : int
        Seconds after midnight UTC at which the session closes, and how long before it the
        overnight position limit starts to apply to new orders.
    day_offset_s : int
        Shift from UTC to the trading day's calendar (the daily loss limit resets at its midnight).
    kill_on_breach : str
        What a breached daily loss limit does to the kill switch: reduce_only, halt or none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily_loss_limit: float = Field(0.05, gt=0, lt=1)
    concentration: float = Field(0.30, gt=0)
    max_position_qty: float | None = Field(None, ge=0)
    max_order_qty: float | None = Field(None, gt=0)
    max_order_notional: float | None = Field(None, gt=0)
    max_overnight_qty: float | None = Field(None, ge=0)
    price_band: float = Field(0.05, gt=0)
    rate_per_s: float = Field(20.0, gt=0)
    burst: int = Field(40, ge=1)
    min_turnover_rate: float = Field(0.01, ge=0)
    risk_per_trade: float = Field(0.02, gt=0, le=1)
    vol_scale: float = Field(2.0, ge=0)
    fixed_stop: float = Field(0.05, gt=0, lt=1)
    trailing_stop: float = Field(0.03, gt=0, lt=1)
    time_stop_s: float | None = Field(None, gt=0)
    lot_size: float | None = Field(None, gt=0)
    session_close_utc_s: int = Field(20 * 3600, ge=0, lt=86400)
    overnight_window_s: int = Field(15 * 60, ge=0)
    day_offset_s: int = Field(0, gt=-86400, lt=86400)
    kill_on_breach: Literal["reduce_only", "halt", "none"] = "reduce_only"
    symbols: dict[str, SymbolLimits] = Field(default_factory=dict)


class RiskConfig(BaseModel):
    """Limits for every account: ``accounts[name]`` or, when absent, ``default``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: AccountLimits = Field(default_factory=AccountLimits)
    accounts: dict[str, AccountLimits] = Field(default_factory=dict)

    def account(self, account: str) -> AccountLimits:
        return self.accounts.get(account, self.default)

    def limits(self, account: str, symbol: str) -> "EffectiveLimits":
        """The account's limits with ``symbol``'s overrides applied."""
        acc = self.account(account)
        values = {name: getattr(acc, name) for name in _OVERRIDABLE}
        sym = acc.symbols.get(symbol)
        if sym is not None:
            for name in _OVERRIDABLE:
                v = getattr(sym, name)
                if v is not None:
                    values[name] = v
        return EffectiveLimits(account=acc, **values)


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """Account limits merged with one symbol's overrides."""

    account: AccountLimits
    max_position_qty: float | None
    max_order_qty: float | None
    max_order_notional: float | None
    max_overnight_qty: float | None
    price_band: float
    min_turnover_rate: float
    concentration: float
    fixed_stop: float
    trailing_stop: float
    time_stop_s: float | None
    lot_size: float | None
