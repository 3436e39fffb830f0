"""Periods per year: how many bars of a given width an instrument's calendar holds in a year.

Annualised figures (return, volatility, Sharpe, Sortino, Calmar, turnover) scale per-bar
statistics by the number of bars in a year, and that number is the calendar's, not a
constant: a US stock trades 252 sessions of 390 minutes, a forex pair 260 sessions of 24
hours (Sunday 17:00 to Friday 17:00 New York), a crypto pair 365 days of 24 hours.

========  ==================  =============================
calendar  daily bars a year   1-minute bars a year
========  ==================  =============================
NYSE      252                 252 x 390 = 98,280
FOREX     260 (52 x 5)        260 x 1,440 = 374,400
CRYPTO    365                 365 x 1,440 = 525,600
========  ==================  =============================

Bars per session are read off the calendar itself (the length of a regular session divided
by the bar width), so another bar width follows without a new constant.

**Mixed runs.** A portfolio's equity curve has one row per bar of the *union* of its
symbols' timelines (a weekend minute exists as soon as one crypto pair trades in it), and
the calendars nest (every NYSE minute is a forex minute, every forex minute a crypto
minute). So a mixed run is annualised with the densest calendar among its symbols: stocks
with crypto count 365 days (525,600 minutes) a year, stocks with forex 260 (374,400). Then
``equity[-1] ** (periods_per_year / n_periods) - 1`` is the compound rate per calendar year
of the run, which a fixed 252 would not be.

:func:`periods_per_year_of_data` is the other way round: bars actually present per year of
elapsed time. It is exact for long runs (it sees the holidays the conventional 252 rounds)
and misleading for short ones (two sessions of minute bars, Tuesday and Wednesday, elapse
in 1.3 days), so it is opt-in (``BacktestConfig(periods_per_year="data")``).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from pyplatform.calendars import CRYPTO, FOREX, NYSE, Calendar, calendar_for

__all__ = ["SESSIONS_PER_YEAR", "calendar_periods_per_year", "periods_per_year", "periods_per_year_of_data"]

_NS_PER_DAY = 86_400_000_000_000
_NS_PER_YEAR = 365.25 * _NS_PER_DAY

#: Conventional sessions per year of each calendar (by calendar name).
SESSIONS_PER_YEAR: dict[str, float] = {NYSE.name: 252.0, FOREX.name: 260.0, CRYPTO.name: 365.0}

# A regular (not early-close, not DST-shifted) session of each calendar, to measure its length.
_SAMPLE_DAY = "2024-01-10"  # a Wednesday with every market open


def _bars_per_session(cal: Calendar, bar_ns: int) -> float:
    s = cal.sessions(_SAMPLE_DAY, "2024-01-11")
    length = int(s["close_ns"].iloc[0] - s["open_ns"].iloc[0])
    return max(1.0, float(-(-length // bar_ns)))  # a partial last bar is still a bar


def calendar_periods_per_year(cal: Calendar, bar_ns: int) -> float:
    """Bars of width ``bar_ns`` in a year of ``cal``: one per session for daily (or wider)
    bars, sessions x bars per session otherwise."""
    sessions = SESSIONS_PER_YEAR[cal.name]
    if bar_ns >= _NS_PER_DAY:
        return sessions
    return sessions * _bars_per_session(cal, bar_ns)


def periods_per_year(symbols: Iterable[str], bar_ns: int) -> float:
    """Periods per year of a run over ``symbols`` with bars ``bar_ns`` wide.

    Parameters
    ----------
    symbols : iterable of str
        Platform symbols (``AAPL.US``, ``EURUSD.GB``, ``BTCUSDT.BA``); each one's calendar comes
        from its asset class.
    bar_ns : int
        Bar width in nanoseconds (``60e9`` for 1-minute bars, ``86_400e9`` for daily bars).

    Returns
    -------
    float
        The densest calendar's figure among the symbols (see the module docstring for why a
        mixed run takes the densest); the NYSE figure when ``symbols`` is empty.

    Examples
    --------
    >>> periods_per_year(["AAPL.US"], 86_400_000_000_000)
    252.0
    >>> periods_per_year(["AAPL.US", "BTCUSDT.BA"], 60_000_000_000)
    525600.0
    """
    cals = {calendar_for(s).name: calendar_for(s) for s in symbols}
    if not cals:
        cals = {NYSE.name: NYSE}
    return max(calendar_periods_per_year(c, int(bar_ns)) for c in cals.values())


def periods_per_year_of_data(ts_ns: np.ndarray, bar_ns: int) -> float:
    """Bars actually present per year of elapsed time: ``distinct stamps / elapsed years``.

    ``elapsed`` runs from the first bar's start to the last bar's end. Reliable over months
    or more; over a few days the weekend or the overnight gap in the span dominates it.

    Raises
    ------
    ValueError
        With fewer than two distinct timestamps (no spacing to measure).
    """
    ts = np.unique(np.asarray(ts_ns, np.int64))
    if len(ts) < 2:
        raise ValueError("periods_per_year_of_data: need at least two distinct bar timestamps")
    elapsed = float(ts[-1] - ts[0] + int(bar_ns))
    return len(ts) / (elapsed / _NS_PER_YEAR)
