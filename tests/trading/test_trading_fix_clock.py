"""The FIX broker and the simulated venue read time only from the clock they are given."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from pyplatform.clock import SimClock
from pyplatform.execution.fix import codec
from pyplatform.execution.fix.exchange import FixExchange
from pyplatform.execution.fix.initiator import FixBroker
from pyplatform.execution.fix.session import FixSessionConfig, free_port
from pyplatform.execution.messages import OrdType, Side, SubmitOrder, VenueNotice

T = 1_767_225_600_123_000_000  # 2026-01-01 00:00:00.123 UTC, a millisecond time as FIX carries it


def test_the_broker_needs_a_clock_and_stamps_its_notices_with_it(tmp_path):
    cfg = FixSessionConfig(tmp_path / "fix", "initiator", free_port())
    with pytest.raises(TypeError):
        FixBroker(config=cfg)  # no silent wall time
    clock = SimClock(T)
    broker = FixBroker(config=cfg, clock=clock)
    broker._notice("logon", "refused by the venue")
    clock.advance(5_000_000)
    broker._notice("logon", "refused again")
    notices = [e for e in broker.poll() if isinstance(e, VenueNotice)]
    assert [n.ts for n in notices] == [T, T + 5_000_000]


def test_the_venue_needs_a_clock_and_stamps_what_arrives_with_it(tmp_path):
    with pytest.raises(TypeError):
        FixExchange(tmp_path / "venue")  # no silent wall time
    ex = FixExchange(tmp_path / "venue", clock=SimClock(T))
    sent = []
    ex._send = sent.append  # no session: keep what the venue would send
    order = SubmitOrder("c1", "main", "AAPL.US", Side.BUY, D(10), OrdType.LIMIT, D(100), ts=T - 60 * 10**9)
    ex._on_app(codec.new_order_single(order))
    assert sent and all(codec._parse_time(m.getField(codec.TRANSACT_TIME)) == T for m in sent)
