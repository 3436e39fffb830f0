"""Every pre-trade rule at and around its threshold, the kill switch, per-symbol overrides."""

from decimal import Decimal as D

import pytest

from pyplatform.clock import SimClock
from pyplatform.execution.messages import OrdType, Side, SubmitOrder
from pyplatform.risk import AccountLimits, AccountSnapshot, KillMode, RiskConfig, RiskManager, SymbolLimits

S = 1_000_000_000
DAY = 86_400 * S
T0 = 10 * 86_400 * S + 12 * 3600 * S  # day 10, 12:00 UTC (well before the session close)
EQ = D(1_000_000)
_n = 0


def rm(**limits):
    base = dict(concentration=10.0, rate_per_s=1000, burst=1000)  # permissive unless a test sets them
    base.update(limits)
    m = RiskManager(RiskConfig(default=AccountLimits(**base)), SimClock(T0))
    m.on_trade("AAPL.US", D("100.00"))
    return m


def order(qty, side=Side.BUY, px="100.00", sym="AAPL.US", kind=OrdType.LIMIT, account="acc"):
    global _n
    _n += 1
    return SubmitOrder(f"c{_n}", account, sym, side, D(qty), kind, None if kind is OrdType.MARKET else D(px))


def snap(pos=None, equity=EQ, account="acc"):
    return AccountSnapshot(account, D(equity), pos or {})


def ok(m, o, s=None):
    return m.check(o, s or snap()).accepted


def rule(m, o, s=None):
    d = m.check(o, s or snap())
    return d.rule


def test_max_order_qty():
    m = rm(max_order_qty=1000)
    assert ok(m, order(999)) and ok(m, order(1000))
    assert rule(m, order(1001)) == "max_order_qty"


def test_max_order_notional():
    m = rm(max_order_notional=100_000)
    assert ok(m, order(1000))  # 1000 x 100.00 == limit
    assert rule(m, order("1000.01")) == "max_order_notional"


def test_max_position_counts_existing_position_and_flips():
    m = rm(max_position_qty=500)
    s = snap({"AAPL.US": D(400)})
    assert ok(m, order(100), s)
    assert rule(m, order(101), s) == "max_position"
    assert ok(m, order(900, Side.SELL), s)  # ends at -500
    assert rule(m, order(901, Side.SELL), s) == "max_position"


def test_concentration_30_percent():
    m = rm(concentration=0.30)
    assert ok(m, order(3000))  # 300,000 of 1,000,000 = 30%
    assert rule(m, order(3001)) == "concentration"
    assert ok(m, order(1000), snap({"AAPL.US": D(2000)}))
    assert rule(m, order(1001), snap({"AAPL.US": D(2000)})) == "concentration"


@pytest.mark.parametrize("px,accepted", [("105.00", True), ("105.01", False), ("95.00", True), ("94.99", False),
                                         ("100.00", True)])
def test_price_band_fat_finger(px, accepted):
    m = rm(price_band=0.05)
    d = m.check(order(1, px=px), snap())
    assert d.accepted is accepted
    if not accepted:
        assert d.rule == "price_band" and px in d.reason and "last trade 100.00" in d.reason


def test_price_band_needs_a_last_trade_for_opening_orders():
    m = rm()
    assert rule(m, order(1, sym="MSFT.US")) == "price_band"
    assert ok(m, order(1, Side.SELL, sym="MSFT.US"), snap({"MSFT.US": D(5)}))  # closing passes


def test_token_bucket_rate_limit():
    m = rm(rate_per_s=1, burst=2)
    assert ok(m, order(1)) and ok(m, order(1))
    assert rule(m, order(1)) == "rate_limit"
    m.clock.advance(S - 1)
    assert rule(m, order(1)) == "rate_limit"
    m.clock.advance(1)
    assert ok(m, order(1))
    assert rule(m, order(1)) == "rate_limit"


def test_refused_orders_do_not_use_tokens():
    m = rm(rate_per_s=1, burst=1, max_order_qty=5)
    assert rule(m, order(6)) == "max_order_qty"
    assert ok(m, order(5))


def test_liquidity_pause_below_turnover_threshold():
    m = rm()
    m.set_turnover_rate("AAPL.US", 0.01)
    assert ok(m, order(1))
    m.set_turnover_rate("AAPL.US", 0.0099)
    d = m.check(order(1), snap())
    assert d.rule == "liquidity" and "0.9900%" in d.reason
    assert ok(m, order(10, Side.SELL), snap({"AAPL.US": D(10)}))  # closing still passes


def test_daily_loss_limit_latches_until_next_trading_day():
    m = rm(kill_on_breach="none")
    assert ok(m, order(1), snap(equity=D(1_000_000)))  # start-of-day equity
    assert ok(m, order(1), snap(equity=D("950000.01")))  # loss just under 5%
    d = m.check(order(1), snap(equity=D(950_000)))  # touches 5%
    assert not d.accepted and d.rule == "daily_loss"
    assert ok(m, order(10, Side.SELL), snap({"AAPL.US": D(10)}, equity=D(950_000)))  # closing passes
    assert rule(m, order(1), snap(equity=D(1_200_000))) == "daily_loss"  # recovering does not unlatch
    m.clock.set(T0 + DAY)  # next trading day: the new start of day is today's first equity
    assert ok(m, order(1), snap(equity=D(950_000)))


def test_daily_loss_throws_reduce_only_kill_switch_for_the_day():
    m = rm()  # kill_on_breach="reduce_only"
    m.check(order(1), snap(equity=D(1_000_000)))
    d = m.check(order(1), snap(equity=D(940_000)))
    assert d.rule == "kill_switch" and "REDUCE_ONLY" in d.reason and "daily loss" in d.reason
    assert m.kill_state("acc")[0] is KillMode.REDUCE_ONLY
    assert m.kill_state("other")[0] is KillMode.OFF
    m.clock.set(T0 + DAY)
    assert ok(m, order(1), snap(equity=D(940_000)))
    assert m.kill_state("acc")[0] is KillMode.OFF


def test_kill_switch_by_command():
    m = rm()
    closing = snap({"AAPL.US": D(10)})
    m.kill("reduce_only", "operator")
    assert rule(m, order(1), closing) == "kill_switch"
    assert ok(m, order(10, Side.SELL), closing)
    assert rule(m, order(11, Side.SELL), closing) == "kill_switch"  # would flip: not reducing
    m.kill(KillMode.HALT, "operator")
    d = m.check(order(10, Side.SELL), closing)
    assert d.rule == "kill_switch" and "HALT" in d.reason
    m.reset_kill()
    assert ok(m, order(1))
    m.kill("halt", account="acc")
    assert not ok(m, order(1)) and ok(m, order(1, account="b"), snap(account="b"))


def test_overnight_limit_applies_near_the_close():
    m = RiskManager(RiskConfig(default=AccountLimits(max_overnight_qty=100, concentration=10.0,
                                                     session_close_utc_s=20 * 3600, overnight_window_s=900)),
                    SimClock(10 * DAY + 19 * 3600 * S + 44 * 60 * S + 59 * S))
    m.on_trade("AAPL.US", D("100.00"))
    assert ok(m, order(200))
    m.clock.advance(S)  # 19:45:00
    assert rule(m, order(200)) == "overnight"
    assert ok(m, order(100))
    assert m.overnight_excess(snap({"AAPL.US": D(250), "MSFT.US": D(-130)})) == {"AAPL.US": D(-150),
                                                                                 "MSFT.US": D(30)}


def test_per_account_and_per_symbol_overrides():
    cfg = RiskConfig(default=AccountLimits(max_order_qty=1000, concentration=10.0),
                     accounts={"small": AccountLimits(max_order_qty=10, concentration=10.0,
                                                      symbols={"AAPL.US": SymbolLimits(max_order_qty=5)})})
    m = RiskManager(cfg, SimClock(T0))
    m.on_trade("AAPL.US", D(100))
    m.on_trade("MSFT.US", D(100))
    assert ok(m, order(1000))
    assert rule(m, order(6, account="small"), snap(account="small")) == "max_order_qty"
    assert ok(m, order(10, sym="MSFT.US", account="small"), snap(account="small"))
    assert rule(m, order(11, sym="MSFT.US", account="small"), snap(account="small")) == "max_order_qty"


def test_every_decision_is_recorded_with_its_reason():
    seen = []
    m = RiskManager(RiskConfig(default=AccountLimits(max_order_qty=5, concentration=10.0)), SimClock(T0),
                    on_decision=seen.append)
    m.on_trade("AAPL.US", D(100))
    m.check(order(5), snap())
    m.check(order(6), snap())
    assert [d.accepted for d in m.decisions] == [True, False] and seen == list(m.decisions)
    assert m.decisions[1].reason.startswith("AAPL.US: quantity 6 above max order size 5")


def test_limits_validate_their_input():
    with pytest.raises(ValueError, match="daily_loss_limit"):
        AccountLimits(daily_loss_limit=1.5)
    with pytest.raises(ValueError, match="max_order_qty"):
        SymbolLimits(max_order_qty=-1)
    with pytest.raises(ValueError, match="bogus"):
        AccountLimits(bogus=1)


def test_risk_manager_requires_a_clock():
    # no silent wall clock: a backtest that forgot its SimClock would stamp days and rate
    # buckets from real time
    with pytest.raises(ValueError, match="needs a clock"):
        RiskManager(RiskConfig())
    assert RiskManager(RiskConfig(), SimClock(T0)).clock.now_ns() == T0
