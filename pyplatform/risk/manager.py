"""The pre-trade risk manager: consulted before every order, records every decision.

Pure and clock-driven: prices and positions are read from a shared
:class:`~pyplatform.risk.market.MarketState` (``on_trade`` records a price there), liquidity
comes through ``set_turnover_rate``, the account through an :class:`AccountSnapshot` passed
with each order, and time from the clock. It never sends anything; it answers yes/no with
the rule and the reason.

Orders are read through the :class:`OrderIntent` protocol rather than the execution
package's message classes: ``pyplatform.execution`` imports risk, so risk importing
execution back would make the two packages an import cycle. A fired stop comes back as a
:class:`~pyplatform.risk.stops.StopTriggered`; the node turns it into an order
(``pyplatform.execution.messages.stop_order``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from typing import Callable, Mapping, Protocol

from pyplatform.clock import Clock
from pyplatform.risk.config import EffectiveLimits, RiskConfig
from pyplatform.risk.market import MarketState
from pyplatform.ratelimit import TokenBucket
from pyplatform.risk.sizing import Sizer, position_size
from pyplatform.risk.stops import NoStops, StopBook, StopLevels, StopPolicy, StopTriggered

__all__ = ["RiskManager", "RiskDecision", "AccountSnapshot", "KillMode", "OrderIntent"]

_NS = 1_000_000_000
_DAY = 86_400 * _NS


class KillMode(IntEnum):
    """Kill-switch modes, ordered by severity."""

    OFF = 0
    REDUCE_ONLY = 1
    HALT = 2


class OrderIntent(Protocol):
    """What a check reads of an order (``pyplatform.execution.messages.SubmitOrder`` is one).

    ``side`` converts to the sign it gives a position (+1 buy, -1 sell); ``order_type``
    compares equal to ``"limit"`` or ``"market"``; ``price`` is the limit (None for market).
    """

    client_order_id: str
    account: str
    symbol: str
    side: int
    quantity: Decimal
    order_type: str
    price: Decimal | None


def _is_limit(cmd: OrderIntent) -> bool:
    # OrdType is a str enum, so this holds for SubmitOrder without importing it
    return cmd.order_type == "limit"


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What risk needs to know about an account at the moment of an order."""

    account: str
    equity: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)  # symbol -> signed quantity


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """One recorded decision: ``accepted`` with the ``rule`` that decided and why."""

    ts: int
    account: str
    client_order_id: str
    symbol: str
    accepted: bool
    rule: str
    reason: str
    closing: bool = False


class RiskManager:
    """Pre-trade checks, sizing, stops and the kill switch.

    Parameters
    ----------
    config : RiskConfig
    clock : Clock
        Required (``LiveClock()`` live, ``SimClock`` in a backtest): every time the manager
        reads comes from it.
    on_decision : callable, optional
        Called with every :class:`RiskDecision` (a journal, a stream table).
    keep : int
        How many recent decisions ``decisions`` keeps in memory.
    market : MarketState, optional
        Where prices and positions are read (a new one by default). A ``TradingNode`` hands
        its own in (see :meth:`attach`), the one its order manager books positions into.
    sizer : Sizer, optional
        ``sizer(account, symbol, equity, price, strength) -> quantity`` for new positions
        (default: :func:`~pyplatform.risk.sizing.position_size` under the configured
        limits; :func:`~pyplatform.risk.sizing.all_in` stakes the whole equity).
    stops : StopPolicy, optional
        The stop policy fed fills and prices (default: a :class:`StopBook` with the
        configured levels; :class:`~pyplatform.risk.stops.NoStops` switches stops off).
    """

    def __init__(self, config: RiskConfig | None = None, clock: Clock | None = None,
                 on_decision: Callable[[RiskDecision], None] | None = None, keep: int = 100_000,
                 market: MarketState | None = None, sizer: Sizer | None = None,
                 stops: StopPolicy | None = None) -> None:
        if clock is None:
            # time is an input (daily loss days, rate buckets, stops): a backtest handing no
            # clock must not silently read the wall clock; live builders pass LiveClock()
            raise ValueError("RiskManager needs a clock: LiveClock() live, SimClock(...) in a backtest")
        self.config = config or RiskConfig()
        self.clock = clock
        self.on_decision = on_decision
        self.decisions: deque[RiskDecision] = deque(maxlen=keep)
        #: Why orders cannot reach the venue right now (the broker's words), or None. Set by
        #: the node from the broker's session state before each check.
        self.session_down: str | None = None
        self.market = market if market is not None else MarketState()
        self.turnover_rate: dict[str, float] = {}
        self.hist_vol: dict[str, float] = {}
        self.sizer = sizer
        self.stops: StopPolicy = stops if stops is not None else StopBook()
        self._buckets: dict[str, TokenBucket] = {}
        self._sod: dict[str, tuple[int, Decimal]] = {}  # account -> (trading day, start-of-day equity)
        self._loss_day: dict[str, int] = {}  # account -> trading day on which the loss limit was touched
        self._kill: dict[str | None, tuple[KillMode, str]] = {}
        self._kill_day: dict[str, int] = {}  # account -> day a loss-limit kill was thrown

    # ------------------------------------------------------------------ market state
    @property
    def last_price(self) -> dict[str, Decimal]:
        """``symbol -> last trade price``: the shared state's prices (a view, not a copy)."""
        return self.market.last_price

    def attach(self, market: MarketState) -> None:
        """Read prices and positions from ``market`` from now on.

        Raises
        ------
        ValueError
            When this manager already holds prices or positions in another state object
            (they would be silently dropped).
        """
        own = self.market
        if own is not market and (own.last_price or own.positions or own.quotes):
            raise ValueError("RiskManager.attach: this risk manager already holds prices/positions in another "
                             "MarketState; build it with market=... instead")
        self.market = market

    def on_trade(self, symbol: str, price: Decimal, ts: int | None = None) -> list[StopTriggered]:
        """Record the last trade price (in the shared state); returns the stops it fires."""
        price = self.market.set_price(symbol, price)
        return self.stops.on_price(symbol, price, self.clock.now_ns() if ts is None else ts)

    def set_turnover_rate(self, symbol: str, rate: float) -> None:
        """Turnover rate of ``symbol`` (volume / tradable float) over the look-back window."""
        self.turnover_rate[symbol] = float(rate)

    def set_hist_vol(self, symbol: str, vol: float) -> None:
        self.hist_vol[symbol] = float(vol)

    # ------------------------------------------------------------------ kill switch
    def kill(self, mode: KillMode | str, reason: str = "by command", account: str | None = None) -> None:
        """Throw the kill switch for one account or (``account=None``) for all."""
        mode = KillMode[mode.upper()] if isinstance(mode, str) else KillMode(mode)
        self._kill[account] = (mode, reason)

    def reset_kill(self, account: str | None = None) -> None:
        self._kill.pop(account, None)

    def kill_state(self, account: str) -> tuple[KillMode, str]:
        a = self._kill.get(account, (KillMode.OFF, ""))
        g = self._kill.get(None, (KillMode.OFF, ""))
        return a if a[0] >= g[0] else g

    # ------------------------------------------------------------------ daily loss
    def trading_day(self, account: str, ts: int) -> int:
        return (ts + self.config.account(account).day_offset_s * _NS) // _DAY

    def update_equity(self, account: str, equity: Decimal, ts: int | None = None) -> Decimal:
        """Track the start-of-day equity; returns today's loss as a fraction of it."""
        ts = self.clock.now_ns() if ts is None else ts
        day = self.trading_day(account, ts)
        sod = self._sod.get(account)
        if sod is None or sod[0] != day:
            sod = self._sod[account] = (day, Decimal(str(equity)))
        if sod[1] <= 0:
            return Decimal(0)
        loss = (sod[1] - Decimal(str(equity))) / sod[1]
        limits = self.config.account(account)
        if loss >= Decimal(str(limits.daily_loss_limit)) and self._loss_day.get(account) != day:
            self._loss_day[account] = day
            if limits.kill_on_breach != "none" and self.kill_state(account)[0] < KillMode[limits.kill_on_breach.upper()]:
                self.kill(limits.kill_on_breach, f"daily loss {loss:.2%} touched the limit "
                          f"{limits.daily_loss_limit:.2%}", account=account)
                self._kill_day[account] = day
        return loss

    def loss_limit_hit(self, account: str, ts: int | None = None) -> bool:
        ts = self.clock.now_ns() if ts is None else ts
        return self._loss_day.get(account) == self.trading_day(account, ts)

    def _new_day_resets(self, account: str, ts: int) -> None:
        # A kill thrown by the daily loss limit lasts for that trading day only.
        kd = self._kill_day
        if account in kd and kd[account] != self.trading_day(account, ts):
            del kd[account]
            self._kill.pop(account, None)

    # ------------------------------------------------------------------ the check
    def check(self, cmd: OrderIntent, snapshot: AccountSnapshot) -> RiskDecision:
        """Decide on ``cmd``; records and returns the decision."""
        now = self.clock.now_ns()
        self._new_day_resets(cmd.account, now)
        self.update_equity(cmd.account, snapshot.equity, now)
        pos = Decimal(snapshot.positions.get(cmd.symbol, 0))
        signed = cmd.quantity * int(cmd.side)
        closing = pos != 0 and (signed > 0) != (pos > 0) and cmd.quantity <= abs(pos)
        lim = self.config.limits(cmd.account, cmd.symbol)
        rule, reason = self._first_breach(cmd, snapshot, lim, pos, signed, closing, now)
        if rule is None:
            bucket = self._bucket(cmd.account, now)
            if not bucket.try_take(now):
                rule, reason = "rate_limit", (f"order rate above {lim.account.rate_per_s}/s "
                                              f"(burst {lim.account.burst}): no token left")
        decision = RiskDecision(now, cmd.account, cmd.client_order_id, cmd.symbol, rule is None,
                                rule or "accepted", reason or "all checks passed", closing)
        self.decisions.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision

    def _bucket(self, account: str, now: int) -> TokenBucket:
        b = self._buckets.get(account)
        if b is None:
            acc = self.config.account(account)
            b = self._buckets[account] = TokenBucket(acc.rate_per_s, acc.burst, now)
        return b

    def _first_breach(self, cmd: OrderIntent, snap: AccountSnapshot, lim: EffectiveLimits, pos: Decimal,
                      signed: Decimal, closing: bool, now: int) -> tuple[str | None, str | None]:
        sym = cmd.symbol
        if self.session_down:
            return "session_down", f"not sent: {self.session_down}"
        mode, why = self.kill_state(cmd.account)
        if mode is KillMode.HALT:
            return "kill_switch", f"kill switch HALT ({why}): no orders"
        if mode is KillMode.REDUCE_ONLY and not closing:
            return "kill_switch", f"kill switch REDUCE_ONLY ({why}): only orders that reduce a position"
        last = self.market.price(sym)
        if closing:
            return None, None  # reducing risk always passes the remaining checks
        if self.loss_limit_hit(cmd.account, now):
            return "daily_loss", (f"daily loss limit {lim.account.daily_loss_limit:.2%} touched today: "
                                  f"opening orders refused until the next trading day")
        tr = self.turnover_rate.get(sym)
        if tr is not None and tr < lim.min_turnover_rate:
            return "liquidity", f"{sym} turnover rate {tr:.4%} below {lim.min_turnover_rate:.4%}: paused"
        if last is None:
            return "price_band", f"{sym}: no last trade price to check the order against"
        limit = _is_limit(cmd)
        if limit:
            dev = abs(cmd.price - last) / last
            if dev > Decimal(str(lim.price_band)):
                return "price_band", (f"{sym}: limit {cmd.price} is {dev:.2%} from last trade {last} "
                                      f"(band {lim.price_band:.2%})")
        px = cmd.price if limit else last
        if lim.max_order_qty is not None and cmd.quantity > Decimal(str(lim.max_order_qty)):
            return "max_order_qty", f"{sym}: quantity {cmd.quantity} above max order size {lim.max_order_qty}"
        notional = cmd.quantity * px
        if lim.max_order_notional is not None and notional > Decimal(str(lim.max_order_notional)):
            return "max_order_notional", (f"{sym}: notional {notional} above max order notional "
                                          f"{lim.max_order_notional}")
        after = pos + signed
        if lim.max_position_qty is not None and abs(after) > Decimal(str(lim.max_position_qty)):
            return "max_position", f"{sym}: position after order {after} above max position {lim.max_position_qty}"
        if snap.equity <= 0:
            return "concentration", f"account {cmd.account}: equity {snap.equity} <= 0"
        share = abs(after) * last / snap.equity
        if share > Decimal(str(lim.concentration)):
            return "concentration", (f"{sym}: position after order worth {share:.2%} of equity, above "
                                     f"{lim.concentration:.2%}")
        if lim.max_overnight_qty is not None and self._overnight(cmd.account, now) and \
                abs(after) > Decimal(str(lim.max_overnight_qty)):
            return "overnight", (f"{sym}: position after order {after} above overnight limit "
                                 f"{lim.max_overnight_qty} (session close approaching)")
        return None, None

    def _overnight(self, account: str, now: int) -> bool:
        acc = self.config.account(account)
        sod = (now % _DAY) // _NS
        return sod >= acc.session_close_utc_s - acc.overnight_window_s

    def overnight_excess(self, snapshot: AccountSnapshot, ts: int | None = None) -> dict[str, Decimal]:
        """Signed quantities to trade so every position fits its overnight limit (near the close)."""
        ts = self.clock.now_ns() if ts is None else ts
        if not self._overnight(snapshot.account, ts):
            return {}
        out = {}
        for sym, q in snapshot.positions.items():
            lim = self.config.limits(snapshot.account, sym).max_overnight_qty
            if lim is not None and abs(q) > Decimal(str(lim)):
                cap = Decimal(str(lim))
                out[sym] = -(q - cap) if q > 0 else -(q + cap)
        return out

    # ------------------------------------------------------------------ sizing and stops
    def size(self, account: str, symbol: str, equity: Decimal, strength: float = 1.0,
             price: Decimal | None = None) -> Decimal:
        """Quantity for a new position: the ``sizer`` given, else
        :func:`pyplatform.risk.sizing.position_size` under this account's limits."""
        price = self.market.price(symbol) if price is None else price
        if price is None:
            return Decimal(0)
        if self.sizer is not None:
            return self.sizer(account, symbol, equity, price, strength)
        lim = self.config.limits(account, symbol)
        return position_size(symbol, equity, price, stop_fraction=lim.fixed_stop,
                             risk_per_trade=lim.account.risk_per_trade, hist_vol=self.hist_vol.get(symbol),
                             vol_scale=lim.account.vol_scale, strength=strength, lot_size=lim.lot_size,
                             max_fraction=lim.concentration)

    def sync_position(self, account: str, symbol: str, qty: Decimal | None = None,
                      avg_price: Decimal | None = None, ts: int | None = None) -> None:
        """Tell the stops about a position after a fill.

        Without ``qty`` the position is read from the shared state (quantity and average
        cost as the order manager booked them); passing them is for a manager used alone.
        """
        if type(self.stops) is NoStops:
            return  # stops switched off: nothing to tell (a backtest without stops syncs every fill)
        if qty is None:
            qty = self.market.quantity(account, symbol)
            avg = self.market.avg_price(account, symbol)
            avg_price = None if avg is None else _decimal(avg)
        lim = self.config.limits(account, symbol)
        self.stops.sync(account, symbol, qty, avg_price, self.clock.now_ns() if ts is None else ts,
                        StopLevels(lim.fixed_stop, lim.trailing_stop, lim.time_stop_s),
                        last=self.market.price(symbol))


def _decimal(x) -> Decimal:
    """An average cost (a Fraction from the position book) as a Decimal for the stops."""
    if isinstance(x, Decimal):
        return x
    return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal("1e-10"))
