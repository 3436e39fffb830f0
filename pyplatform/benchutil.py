"""Timing helper shared by the ``pyplatform bench`` commands."""

from __future__ import annotations

import statistics
import time
from typing import Callable

__all__ = ["median_time"]


def median_time(fn: Callable[[], object], repeat: int, warm: bool = False) -> float:
    """Median wall time in seconds of ``repeat`` calls of ``fn`` (after one untimed call if ``warm``)."""
    if warm:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
