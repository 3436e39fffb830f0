"""What every ``pyplatform bench`` command shares: medians of timed runs, ratios, Markdown
tables and the machine line printed above the figures.

Standard library only: this module is imported when the CLI starts (through the bench
modules' ``register``), so it must not pull NumPy or pandas in.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["median_time", "median_rate", "ratio", "markdown_table", "cpu_name", "machine_line"]


def median_time(fn: Callable[..., object], repeat: int, warm: bool = False,
                setup: Callable[[], Any] | None = None, teardown: Callable[[Any], None] | None = None) -> float:
    """Median wall time in seconds of ``repeat`` calls of ``fn``.

    Parameters
    ----------
    fn : callable
        Called with no argument, or with what ``setup`` returned when ``setup`` is given.
    repeat : int
        Timed calls.
    warm : bool
        Make one untimed call first (imports, caches, compiled kernels).
    setup, teardown : callable, optional
        Run before / after each timed call, outside the timing (e.g. open a fresh table,
        then close it).

    Returns
    -------
    float
        The median of the ``repeat`` wall times, in seconds.
    """
    if warm:
        fn(setup()) if setup is not None else fn()
    times = []
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        fn(arg) if setup is not None else fn()
        times.append(time.perf_counter() - t0)
        if teardown is not None:
            teardown(arg)
    return statistics.median(times)


def median_rate(fn: Callable[[], object], n: int, repeat: int) -> float:
    """``n`` items divided by the median wall time of ``repeat`` calls of ``fn`` (items/s)."""
    return n / median_time(fn, repeat)


def ratio(baseline: float, ours: float) -> float:
    """How many times ``ours`` beats ``baseline`` (``baseline / ours``; NaN when ``ours`` is 0)."""
    return baseline / ours if ours else float("nan")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> list[str]:
    """Lines of a Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences
        Cells, already formatted (``str()`` is applied).
    align : str, optional
        One character per column, ``l`` (``---``) or ``r`` (``---:``); all ``---`` by default.
    """
    align = align or "l" * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def cpu_name() -> str:
    """The CPU model and logical CPU count (``/proc/cpuinfo``; ``unknown CPU`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return "unknown CPU"


def machine_line() -> str:
    """The line every bench prints first: architecture, OS, CPU, Python and load average.

    Figures from a shared machine are only comparable with their load, so it is printed
    with them.
    """
    try:
        load = "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    except OSError:  # not available on this platform
        load = "load average unknown"
    return (f"machine: {platform.machine()} {platform.system()}, {cpu_name()}, "
            f"Python {platform.python_version()}, {load}")
