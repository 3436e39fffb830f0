"""The dashboard's context takes its clock from the builder (issue 19: no silent wall time in the core)."""

from __future__ import annotations

import pytest

from pyplatform.clock import LiveClock, SimClock
from pyplatform.dashboard import create_app
from pyplatform.dashboard.context import AppContext
from pyplatform.dashboard.live_buffer import LiveBuffer


def test_context_without_a_clock_is_a_type_error(market_settings):
    with pytest.raises(TypeError):
        AppContext(settings=market_settings, bars=None, live=LiveBuffer())


def test_create_app_passes_the_given_clock_and_picks_wall_time_only_when_none(market_settings):
    clock = SimClock(1_700_000_000_000_000_000)
    app = create_app(market_settings, bars=None, factors=None, backtests=None, clock=clock)
    assert app.pyplatform.clock is clock
    assert app.pyplatform.clock.now_ns() == 1_700_000_000_000_000_000
    edge = create_app(market_settings, bars=None, factors=None, backtests=None)
    assert isinstance(edge.pyplatform.clock, LiveClock)
