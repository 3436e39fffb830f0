"""The signal service reads time only from the clock it is given (issue 19 item 4): no silent wall clock."""

from __future__ import annotations

import pytest

from pyplatform.bench.naive_fanout import NaiveFanout, NaiveSignalService
from pyplatform.clock import SimClock
from pyplatform.domain.schemas import factor_schema
from pyplatform.signals.auth import KeyRing, TokenVerifier
from pyplatform.signals.fanout import Fanout
from pyplatform.signals.server import ServiceConfig, SignalService
from pyplatform.stream import StreamTable


def _args():
    table = StreamTable("factors", factor_schema(["mom"]), memory_rows=100, clock=SimClock())
    return {"factors": table}, TokenVerifier(KeyRing(b"k" * 32)), ServiceConfig(port=0)


def test_service_without_a_clock_is_a_type_error():
    with pytest.raises(TypeError, match="clock"):
        SignalService(*_args())


def test_service_keeps_the_clock_it_is_given():
    clock = SimClock(start_ns=1_700_000_000_000_000_000)
    svc = SignalService(*_args(), clock=clock)
    assert svc.clock is clock and type(svc.fanout) is Fanout


def test_the_bench_baseline_is_a_subclass_not_a_flag():
    svc = NaiveSignalService(*_args(), clock=SimClock())
    assert type(svc.fanout) is NaiveFanout and isinstance(svc, SignalService)


def test_serve_without_a_clock_is_a_type_error():
    import asyncio

    from pyplatform.config import Settings
    from pyplatform.signals.service import serve

    tables, _, _ = _args()
    with pytest.raises(TypeError, match="clock"):
        serve(Settings(), tables, asyncio.Event())  # argument binding fails before any coroutine exists
