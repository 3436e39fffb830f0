"""Realism settings of the event-driven backtest (typed, frozen).

Every friction can be switched off; :meth:`BacktestConfig.frictionless` switches them all
off at once, which is the configuration under which the event-driven result equals the
vectorised fast path (tested).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pyplatform.risk.config import AccountLimits, RiskConfig

__all__ = ["SlippageConfig", "FeeSchedule", "BacktestConfig", "DEFAULT_FEES"]


class SlippageConfig(BaseModel):
    """How far from the prevailing price a fill lands (always against the trader).

    Parameters
    ----------
    kind : {"none", "fixed", "liquidity", "sqrt"}
        ``fixed``: ``bps`` on every fill. ``liquidity``: from ``min_bps`` for a negligible
        fill to ``max_bps`` for one that takes the whole quoted size (the paper broker's
        fill model). ``sqrt``: square-root market impact ``impact x sqrt(qty / bar volume)``
        on top of ``bps``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["none", "fixed", "liquidity", "sqrt"] = "liquidity"
    bps: float = Field(1.0, ge=0, lt=10_000)
    min_bps: float = Field(0.5, ge=0, lt=10_000)
    max_bps: float = Field(5.0, ge=0, lt=10_000)
    impact: float = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _order(self):
        if self.min_bps > self.max_bps:
            raise ValueError(f"slippage: min_bps {self.min_bps} > max_bps {self.max_bps}")
        return self


class FeeSchedule(BaseModel):
    """Commission of one asset class: ``max(minimum, bps x notional + per_unit x quantity)`` per
    **order** (the minimum is charged once per order, however many fills it takes; the
    simulated venue charges each fill the increase of the order's running commission)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bps: float = Field(0.0, ge=0)
    per_unit: float = Field(0.0, ge=0)
    minimum: float = Field(0.0, ge=0)

    def commission(self, quantity: float, price: float) -> float:
        """The proportional part (``bps`` and ``per_unit``) of a fill, without the minimum."""
        q = abs(quantity)
        return self.bps * 1e-4 * q * price + self.per_unit * q

    def fee(self, quantity: float, price: float) -> float:
        """Fee of a whole order filled at once."""
        return max(self.minimum, self.commission(quantity, price))


#: Defaults per asset class (``pyplatform.domain.AssetClass`` values): a US-broker-like
#: per-share fee for stocks, a spread-only forex venue, a 10 bps crypto taker fee.
DEFAULT_FEES: dict[str, FeeSchedule] = {
    "stock": FeeSchedule(per_unit=0.005, minimum=1.0),
    "forex": FeeSchedule(bps=0.2),
    "crypto": FeeSchedule(bps=10.0),
    "index": FeeSchedule(bps=1.0),
}


class BacktestConfig(BaseModel):
    """Everything about a backtest run except the strategies and the history.

    Parameters
    ----------
    freq : {"1min", "1d"}
        Bars to replay (``bars_1m`` or ``bars_1d``).
    capital : float
        Starting equity in the account currency.
    latency_ms : float
        Time between a signal and its order reaching the market. The order fills at the
        price prevailing on arrival (the next bar's open for a latency shorter than a
        quarter bar; later intrabar prices otherwise), never the triggering bar's close.
    slippage : SlippageConfig
    fees : dict of asset class to FeeSchedule
        Missing classes pay nothing.
    participation : float or None
        Largest share of a bar's volume the account may take (the rest rests and fills on
        later bars); ``None``: unlimited.
    vwap_slicing : bool
        Orders above ``participation`` of the last bar's volume go out as VWAP child orders.
    max_slices : int
        Longest VWAP schedule, in one-minute children (a thin bar would otherwise cut a
        large order into thousands); the venue's volume limit still applies to each child.
    sizing : {"risk", "all_in"}
        ``risk``: the risk manager's sizing (risk per trade, volatility, lots). ``all_in``:
        the whole equity at the last price, fractional quantities (research, parity).
    long_only : bool
        Short signals close longs instead of opening shorts.
    stops : bool
        Feed every price of held symbols to the risk manager's stops (exact live behaviour,
        slower). Off: stops are not simulated.
    aggression : float
        Limit-price offset through the last trade for entries (the live node's setting).
    risk : RiskConfig
        Pre-trade limits (the live risk manager runs every order through them).
    chunk_rows : int
        Bars per micro-batch fed to the factor engine and the strategies.
    audit_timestamps : int
        Look-ahead audit: the signals of the first N timestamps are recomputed one
        timestamp at a time and must equal the micro-batched ones (0 turns it off).
    max_gross : float or None
        Largest gross exposure (sum of ``|position| x price`` over symbols, working orders
        and unreleased VWAP slices included) as a multiple of equity that an opening order
        may take the account to: risk sizing shrinks a new position to fit and the check
        refuses what still does not (rule ``gross_exposure``). ``1.0`` (the default): no
        leverage. ``None``: no gross limit (each position is still capped by the
        concentration limit).
    window_days : float
        History is replayed in windows of this many days (both phases over one window at a
        time, the live components' state carried across; only a window of bars is in
        memory); 0: the whole history at once. The result does not depend on it.
    lookahead_days : float
        Bars after each window kept for prices (an order decided near a window's end meets
        them): longer than any gap in a symbol's data (a long weekend) keeps windows exact.
    periods_per_year : "calendar", "data" or float
        Annualisation of the metrics. ``calendar``: from the symbols' trading calendars
        (NYSE 252 sessions of 390 minutes, forex 260 x 24 h, crypto 365 x 24 h; a mixed run
        takes the densest, see :mod:`pyplatform.backtest.annualisation`). ``data``: bars
        actually present per year of the run's elapsed time. A number: that.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    freq: Literal["1min", "1d"] = "1d"
    capital: float = Field(1_000_000.0, gt=0)
    latency_ms: float = Field(75.0, ge=0)
    slippage: SlippageConfig = Field(default_factory=SlippageConfig)
    fees: dict[str, FeeSchedule] = Field(default_factory=lambda: dict(DEFAULT_FEES))
    participation: float | None = Field(0.10, gt=0, le=1)
    vwap_slicing: bool = True
    max_slices: int = Field(30, ge=1)
    sizing: Literal["risk", "all_in"] = "risk"
    long_only: bool = False
    stops: bool = False
    aggression: float = Field(0.002, ge=0, lt=1)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    chunk_rows: int = Field(262_144, ge=1)
    audit_timestamps: int = Field(200, ge=0)
    max_gross: float | None = Field(1.0, gt=0)
    window_days: float = Field(28.0, ge=0)
    lookahead_days: float = Field(7.0, gt=0)
    periods_per_year: float | Literal["calendar", "data"] = "calendar"

    @model_validator(mode="after")
    def _ppy(self):
        if not isinstance(self.periods_per_year, str) and not self.periods_per_year > 0:
            raise ValueError(f"periods_per_year must be 'calendar', 'data' or a number > 0, "
                             f"got {self.periods_per_year!r}")
        return self

    @property
    def table(self) -> str:
        return "bars_1m" if self.freq == "1min" else "bars_1d"

    @property
    def bar_ns(self) -> int:
        return 60_000_000_000 if self.freq == "1min" else 86_400_000_000_000

    @property
    def latency_ns(self) -> int:
        return int(round(self.latency_ms * 1e6))

    def annualisation(self, symbols, ts_ns=None) -> float:
        """Periods per year for a run over ``symbols`` (bar start stamps ``ts_ns`` for ``data``)."""
        from pyplatform.backtest.annualisation import periods_per_year, periods_per_year_of_data

        if self.periods_per_year == "calendar":
            return periods_per_year(symbols, self.bar_ns)
        if self.periods_per_year == "data":
            return periods_per_year_of_data(ts_ns, self.bar_ns)
        return float(self.periods_per_year)

    @classmethod
    def frictionless(cls, **overrides) -> "BacktestConfig":
        """No latency, slippage, fees, volume limits or slicing; all-in long-only sizing and
        risk limits wide open: the vectorised path's assumptions."""
        wide = RiskConfig(default=AccountLimits(daily_loss_limit=0.99, concentration=1e9, price_band=1e9,
                                                rate_per_s=1e9, burst=1_000_000, min_turnover_rate=0.0,
                                                fixed_stop=0.99, trailing_stop=0.99, kill_on_breach="none"))
        base = dict(latency_ms=0.0, slippage=SlippageConfig(kind="none"), fees={}, participation=None,
                    vwap_slicing=False, sizing="all_in", long_only=True, stops=False, aggression=0.5, risk=wide,
                    max_gross=None)
        base.update(overrides)
        return cls(**base)
