"""Offline natural-language strategy drafts: understood phrasings and refusals."""

import pytest

from pyplatform.research.drafting import DraftError, draft_strategy

UNDERSTOOD = [
    ("buy when the 5-day moving average of EURUSD crosses above the 20-day moving average, "
     "sell on the reverse cross, 2% position per trade, stop-loss at 100 points",
     {"symbols": ("EURUSD.GB",), "entry_long": "cross(mavg(close, 5), mavg(close, 20)) == 1",
      "exit_long": "cross(mavg(close, 5), mavg(close, 20)) == -1", "position_pct": 0.02,
      "stop_loss_points": 100.0}),
    ("Go long AAPL when RSI(14) falls below 30; exit when RSI(14) rises above 70; take profit at 5%",
     {"symbols": ("AAPL.US",), "entry_long": "rsi(close, 14) < 30", "exit_long": "rsi(close, 14) > 70",
      "take_profit_pct": 0.05}),
    ("buy BTCUSDT when the close crosses above the upper Bollinger band, trailing stop of 3%",
     {"symbols": ("BTCUSDT.BA",), "entry_long": "cross(close, bbUpper(close, 20, 2)) == 1",
      "trailing_stop_pct": 0.03}),
    ("short EURUSD when the 10-day EMA crosses below the 30-day EMA, cover on the reverse cross, stop loss 2%",
     {"entry_short": "cross(ema(close, 10), ema(close, 30)) == -1",
      "exit_short": "cross(ema(close, 10), ema(close, 30)) == 1", "stop_loss_pct": 0.02}),
    ("buy when the macd crosses above the signal line, sell on the reverse cross",
     {"entry_long": "cross(macd(close, 12, 26, 9), macdSignal(close, 12, 26, 9)) == 1"}),
]


@pytest.mark.parametrize("text,expected", UNDERSTOOD)
def test_understood(text, expected):
    d = draft_strategy(text)
    assert d.ok, d.unparsed
    for k, v in expected.items():
        assert getattr(d, k) == v, k
    cfg = d.to_config()
    assert cfg["kind"] == "rule"
    assert cfg["rules"]["entry_long" if d.entry_long else "entry_short"]


REFUSED = [
    "buy when the CEO tweets about dogs",
    "buy tsla when the price is above the 200-day moving average, buy on full moon",
    "sell when it feels expensive",
    "buy EURUSD when the 5-day moving average crosses above the 20-day moving average, 150% position per trade",
    "purchase lots of stuff",
]


@pytest.mark.parametrize("text", REFUSED)
def test_refused_not_guessed(text):
    d = draft_strategy(text)
    assert not d.ok
    assert d.unparsed
    with pytest.raises(DraftError, match="not understood"):
        d.to_config()


def test_stop_in_points_uses_price_precision():
    d = draft_strategy("buy EURUSD when the close crosses above the 20-day moving average, stop-loss at 100 points")
    assert d.stop_loss_distance("EURUSD.GB") == pytest.approx(0.001)
    assert "Strategy draft" in d._repr_html_()


def test_empty_rejected():
    with pytest.raises(DraftError):
        draft_strategy("   ")
