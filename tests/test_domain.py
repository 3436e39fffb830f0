from decimal import Decimal

import pytest

from pyplatform.clock import SimClock
from pyplatform.domain import AssetClass, Instrument, asset_class_of, round_price


@pytest.mark.parametrize("sym,cls", [("AAPL.US", AssetClass.STOCK), ("EURUSD.GB", AssetClass.FOREX),
                                     ("BTCUSDT.BA", AssetClass.CRYPTO), ("SPX.IDX", AssetClass.INDEX)])
def test_asset_class_of(sym, cls):
    assert asset_class_of(sym) is cls


@pytest.mark.parametrize("bad", ["AAPL", "AAPL.XX"])
def test_asset_class_of_bad(bad):
    with pytest.raises(ValueError, match=bad.split(".")[-1]):
        asset_class_of(bad)


def test_precision():
    assert round_price(1.234567891, AssetClass.FOREX) == Decimal("1.23457")
    assert round_price(101.005, AssetClass.STOCK) == Decimal("101.00")  # half-even
    assert round_price(0.123456789, AssetClass.CRYPTO) == Decimal("0.12345679")
    assert Instrument("EURUSD.GB", AssetClass.FOREX).lot_size == 100_000
    assert Instrument("AAPL.US", AssetClass.STOCK).tick_size == pytest.approx(0.01)


def test_sim_clock_monotonic():
    c = SimClock(10)
    assert c.advance(5) == 15
    with pytest.raises(ValueError):
        c.set(3)
