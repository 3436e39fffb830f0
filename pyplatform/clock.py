"""Clocks: the only place that reads the wall clock.

Everything else takes a :class:`Clock` and calls ``now_ns()``, so a backtest and live
trading differ only in which clock they are handed.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "LiveClock", "SimClock"]


class Clock(Protocol):
    def now_ns(self) -> int: ...


class LiveClock:
    """Wall-clock time in integer nanoseconds UTC."""

    def now_ns(self) -> int:
        return time.time_ns()


class SimClock:
    """A clock moved by the caller (backtests, tests). It never goes backwards."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def set(self, t_ns: int) -> None:
        t_ns = int(t_ns)
        if t_ns < self._now:
            raise ValueError(f"SimClock cannot go backwards: {t_ns} < {self._now}")
        self._now = t_ns

    def advance(self, delta_ns: int) -> int:
        self.set(self._now + int(delta_ns))
        return self._now
