"""Position sizing per asset class, and the fixed, trailing and time stops."""

from decimal import Decimal as D

import pytest

from pyplatform.clock import SimClock
from pyplatform.execution.messages import OrdType, Side, stop_order
from pyplatform.risk import AccountLimits, RiskConfig, RiskManager, StopBook, StopLevels, position_size
from pyplatform.risk.sizing import position_ratio, round_to_lot

S = 1_000_000_000


def test_stock_board_lots():
    # risk: 2% of 1,000,000 over a 5% stop at 100 -> 4000; ratio with vol 0.25: 1/1.5 -> 6666.67
    assert position_size("AAPL.US", D(1_000_000), D(100), hist_vol=0.25) == 4000
    # vol 2.0 -> ratio 0.2 -> 2000 shares; 0.2 x 1,000,000 / 101 = 1980.2 -> 1900 in board lots
    assert position_size("AAPL.US", D(1_000_000), D(100), hist_vol=2.0) == 2000
    assert position_size("AAPL.US", D(1_000_000), D(101), hist_vol=2.0) == 1900
    assert position_size("AAPL.US", D(1000), D(100)) == 0  # not one board lot


def test_concentration_caps_sizing():
    # risk sizing alone would give 4000 shares (40% of equity); a 30% cap gives 3000
    assert position_size("AAPL.US", D(1_000_000), D(100)) == 4000
    assert position_size("AAPL.US", D(1_000_000), D(100), max_fraction=0.30) == 3000


def test_forex_standard_lots():
    # 20,000 / (1.1 x 0.05) = 363,636 units -> 3 standard lots
    assert position_size("EURUSD.GB", D(1_000_000), D("1.10000")) == 300_000


def test_crypto_step_size():
    # ratio 1/(1 + 2 x 0.8) of 1,000,000 at 50,000 = 7.69230769.. -> 7.6923 at step 0.0001
    assert position_size("BTCUSDT.BA", D(1_000_000), D(50_000), hist_vol=0.8) == D("7.6923")
    assert position_size("BTCUSDT.BA", D(1_000_000), D(50_000), hist_vol=0.8, lot_size=0.01) == D("7.69")


def test_strength_and_ratio():
    assert position_ratio(0.5) == D("0.5")
    assert position_ratio(None) == 1
    assert position_size("AAPL.US", D(1_000_000), D(100), strength=0.1) == 1000
    with pytest.raises(ValueError, match="price"):
        position_size("AAPL.US", D(1), D(0))
    assert round_to_lot(D("199.99"), D(100)) == 100


def _book(levels=StopLevels(0.05, 0.03, None), qty=D(100), avg=D(100)):
    b = StopBook()
    b.sync("a", "X.US", qty, avg, 0, levels)
    return b


def test_fixed_stop_at_5_percent():
    b = _book(StopLevels(0.05, 0.5))
    assert b.on_price("X.US", D("95.01"), 1) == []
    (hit,) = b.on_price("X.US", D("95.00"), 2)
    assert hit.kind == "fixed" and hit.quantity == -100
    assert b.on_price("X.US", D("90"), 3) == []  # fires once


def test_fixed_stop_short_position():
    b = _book(StopLevels(0.05, 0.5), qty=D(-10))
    assert b.on_price("X.US", D("104.99"), 1) == []
    (hit,) = b.on_price("X.US", D("105.00"), 2)
    assert hit.kind == "fixed" and hit.quantity == 10


def test_trailing_stop_from_high_water_mark():
    b = _book()
    for p in ("104", "110", "108"):
        assert b.on_price("X.US", D(p), 1) == []
    assert b.on_price("X.US", D("106.71"), 2) == []  # 110 x 0.97 = 106.70
    (hit,) = b.on_price("X.US", D("106.70"), 3)
    assert hit.kind == "trailing" and "high 110" in hit.reason


def test_time_stop():
    b = _book(StopLevels(0.05, 0.03, 60))
    assert b.on_price("X.US", D(100), 60 * S - 1) == []
    (hit,) = b.on_price("X.US", D(100), 60 * S)
    assert hit.kind == "time"


def test_closed_position_is_forgotten_and_adding_rearms():
    b = _book(StopLevels(0.05, 0.5))
    b.on_price("X.US", D(95), 1)
    b.sync("a", "X.US", D(200), D("97.5"), 2, StopLevels(0.05, 0.5))
    (hit,) = b.on_price("X.US", D("92.625"), 3)  # 97.5 x 0.95
    assert hit.quantity == -200
    b.sync("a", "X.US", D(0), None, 4, StopLevels())
    assert b.tracked("a", "X.US") is None


def test_risk_manager_fires_a_stop_that_becomes_a_closing_market_order():
    m = RiskManager(RiskConfig(default=AccountLimits(fixed_stop=0.05)), SimClock(0))
    m.on_trade("AAPL.US", D(100))
    m.sync_position("acc", "AAPL.US", D(300), D(100), 0)
    (stop,) = m.on_trade("AAPL.US", D(95), 5)
    cmd = stop_order(stop, "stop-1")  # built by execution: risk imports nothing from it
    assert (cmd.side, cmd.quantity, cmd.order_type, cmd.price) == (Side.SELL, 300, OrdType.MARKET, None)
    assert (cmd.account, cmd.symbol, cmd.ts) == ("acc", "AAPL.US", 5)
    assert "fixed stop" in cmd.reason


def test_stops_read_the_position_booked_in_the_shared_state():
    """sync_position without a quantity reads the order manager's booked position."""
    from pyplatform.execution.positions import PositionBook
    from pyplatform.risk import MarketState

    market = MarketState()
    book = PositionBook(market)
    m = RiskManager(RiskConfig(default=AccountLimits(fixed_stop=0.10, trailing_stop=0.5)), SimClock(0), market=market)
    book.get("acc", "AAPL.US").apply_fill(D(100), D(100))
    book.get("acc", "AAPL.US").apply_fill(D(100), D(110))  # average cost 105 -> fixed stop at 94.5
    m.sync_position("acc", "AAPL.US", ts=1)
    assert m.stops.tracked("acc", "AAPL.US").avg == D(105)
    assert m.on_trade("AAPL.US", D("94.51"), 2) == []
    (stop,) = m.on_trade("AAPL.US", D("94.50"), 3)
    assert (stop.kind, stop.quantity) == ("fixed", D(-200))


def test_a_given_sizer_and_stop_policy_replace_the_defaults():
    from pyplatform.risk import NoStops, all_in

    m = RiskManager(RiskConfig(), SimClock(0), sizer=all_in, stops=NoStops())
    m.on_trade("X.US", D(3))
    assert m.size("a", "X.US", D(1000)) == D("333.33333333")  # 1000 / 3 floored at 1e-8
    assert m.size("a", "X.US", D(0)) == 0 and m.size("a", "NOPRICE.US", D(1000)) == 0
    m.sync_position("a", "X.US", D(100), D(3), 0)
    assert m.on_trade("X.US", D(1), 1) == [] and m.stops.tracked("a", "X.US") is None
    # the default sizer: min(2% of 1000 over a 5% stop at 3 = 133.3, 30% concentration = 100) -> 100 shares
    assert RiskManager(RiskConfig(), SimClock(0)).size("a", "X.US", D(1000), price=D(3)) == 100


def test_node_builds_its_risk_manager_with_the_sizer_and_stops_it_is_given():
    from pyplatform.execution.node import TradingNode
    from pyplatform.risk import NoStops, all_in

    stops = NoStops()
    node = TradingNode(None, {}, SimClock(0), "paper", sizer=all_in, stops=stops)
    assert node.risk.sizer is all_in and node.risk.stops is stops
    with pytest.raises(ValueError, match="pass sizer/stops to that RiskManager"):
        TradingNode(None, {}, SimClock(0), "paper", risk=RiskManager(RiskConfig(), SimClock(0)), stops=stops)
