"""Trading calendars: when each asset class trades.

Three kinds, all vectorised over dates and timestamps (NumPy/pandas, no per-row Python):

- :class:`ExchangeCalendar` for stocks and indices: one session a business day between a
  local open and close time in the exchange's time zone, minus the exchange holidays from
  the ``holidays`` package's financial calendars (NYSE by default). DST is handled by
  localising every session in the exchange zone, so 09:30 New York is 14:30 UTC in winter
  and 13:30 UTC in summer.
- :class:`ForexCalendar`: 24x5. The session dated D (Monday..Friday) runs from 17:00 New
  York on the previous day to 17:00 New York on D, so the week opens Sunday 17:00 and
  closes Friday 17:00 New York.
- :class:`CryptoCalendar`: 24x7; the session dated D is the UTC day D.

Every calendar answers :meth:`~Calendar.sessions` (one row per session between two dates),
:meth:`~Calendar.minutes` (bar-start timestamps inside the sessions), :meth:`~Calendar.is_open`
and :meth:`~Calendar.session_date` for arrays of int64 nanosecond UTC timestamps. The
Dash app uses ``minutes``/``is_open`` to remove non-trading gaps from charts; the
synthetic market uses them to place bars.

Early closes (e.g. the day after Thanksgiving) are not modelled: the ``holidays``
package lists closures only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

from pyplatform.domain.instruments import AssetClass, asset_class_of

__all__ = [
    "Calendar", "ExchangeCalendar", "ForexCalendar", "CryptoCalendar",
    "get_calendar", "calendar_for", "NYSE", "FOREX", "CRYPTO",
]

_NS_PER_DAY = 86_400 * 1_000_000_000
DateLike = "str | date | pd.Timestamp | np.datetime64"


def _to_day(d) -> np.datetime64:
    """A date-like as ``datetime64[D]`` (timestamps are floored to their UTC date)."""
    return np.datetime64(pd.Timestamp(d).tz_localize(None) if pd.Timestamp(d).tzinfo is None
                         else pd.Timestamp(d).tz_convert("UTC").tz_localize(None), "D")


def _local_to_utc_ns(days: np.ndarray, at: time, tz: str, day_offset: int = 0) -> np.ndarray:
    """UTC ns of local wall time ``at`` on each of ``days`` (+``day_offset``) in zone ``tz``."""
    local = (days + np.timedelta64(day_offset, "D")).astype("datetime64[ns]") + np.timedelta64(
        (at.hour * 3600 + at.minute * 60 + at.second), "s"
    )
    idx = pd.DatetimeIndex(local).tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    return idx.tz_convert("UTC").asi8


@dataclass(frozen=True)
class Calendar:
    """Base class: subclasses implement :meth:`sessions`."""

    name: str

    def sessions(self, start, end) -> pd.DataFrame:
        """Sessions whose date is in ``[start, end)``.

        Returns
        -------
        pandas.DataFrame
            Columns ``session`` (datetime64[D]-like dates), ``open_ns`` and ``close_ns``
            (int64 ns UTC, close exclusive).
        """
        raise NotImplementedError

    def minutes(self, start, end, freq: str = "1min") -> np.ndarray:
        """Bar-start timestamps (int64 ns UTC) every ``freq`` inside the sessions dated in ``[start, end)``."""
        s = self.sessions(start, end)
        return _grid(s["open_ns"].to_numpy(), s["close_ns"].to_numpy(), pd.Timedelta(freq).value)

    def minutes_with_session(self, start, end, freq: str = "1min") -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`minutes`, plus the index of the session (row of :meth:`sessions`) of each stamp."""
        s = self.sessions(start, end)
        step = pd.Timedelta(freq).value
        opens, closes = s["open_ns"].to_numpy(), s["close_ns"].to_numpy()
        counts = np.maximum((closes - opens + step - 1) // step, 0)
        return _grid(opens, closes, step), np.repeat(np.arange(len(s)), counts)

    def is_open(self, ts_ns) -> np.ndarray:
        """Whether each timestamp (int64 ns UTC) falls inside a session."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        if ts.size == 0:
            return np.zeros(0, dtype=bool)
        s = self._sessions_covering(ts)
        opens, closes = s["open_ns"].to_numpy(), s["close_ns"].to_numpy()
        i = np.searchsorted(opens, ts, side="right") - 1
        ok = i >= 0
        out = np.zeros(ts.shape, dtype=bool)
        out[ok] = ts[ok] < closes[i[ok]]
        return out

    def session_date(self, ts_ns) -> np.ndarray:
        """Session date (datetime64[D]) of each timestamp; ``NaT`` where the market is closed."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        out = np.full(ts.shape, np.datetime64("NaT"), dtype="datetime64[D]")
        if ts.size == 0:
            return out
        s = self._sessions_covering(ts)
        opens, closes = s["open_ns"].to_numpy(), s["close_ns"].to_numpy()
        days = s["session"].to_numpy().astype("datetime64[D]")
        i = np.searchsorted(opens, ts, side="right") - 1
        ok = i >= 0
        ok[ok] = ts[ok] < closes[i[ok]]
        out[ok] = days[i[ok]]
        return out

    def _sessions_covering(self, ts: np.ndarray) -> pd.DataFrame:
        lo = np.datetime64(int(ts.min()), "ns").astype("datetime64[D]") - np.timedelta64(2, "D")
        hi = np.datetime64(int(ts.max()), "ns").astype("datetime64[D]") + np.timedelta64(3, "D")
        return self.sessions(lo, hi)


def _grid(opens: np.ndarray, closes: np.ndarray, step: int) -> np.ndarray:
    """Concatenated ``arange(open, close, step)`` for every session, without a Python loop."""
    counts = np.maximum((closes - opens + step - 1) // step, 0).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(opens, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return starts + (np.arange(total, dtype=np.int64) - first) * step


def _day_range(start, end) -> np.ndarray:
    a, b = _to_day(start), _to_day(end)
    if b <= a:
        return np.zeros(0, dtype="datetime64[D]")
    return np.arange(a, b, dtype="datetime64[D]")


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday=0 .. Sunday=6 (1970-01-01 was a Thursday)."""
    return (days.astype(np.int64) + 3) % 7


@lru_cache(maxsize=32)
def _holiday_days(market: str, first_year: int, last_year: int) -> np.ndarray:
    h = holidays.financial_holidays(market, years=range(first_year, last_year + 1))
    return np.array(sorted(h.keys()), dtype="datetime64[D]")


@dataclass(frozen=True)
class ExchangeCalendar(Calendar):
    """A stock exchange: one session per business day that is not an exchange holiday.

    Parameters
    ----------
    tz : str
        IANA zone of the exchange (``America/New_York``).
    open, close : datetime.time
        Local session open and close.
    market : str
        Financial-holiday calendar name understood by ``holidays.financial_holidays``.
    """

    tz: str = "America/New_York"
    open: time = time(9, 30)
    close: time = time(16, 0)
    market: str = "NYSE"

    def holidays_between(self, start, end) -> np.ndarray:
        """Exchange holidays (datetime64[D]) in ``[start, end)``."""
        days = _day_range(start, end)
        if days.size == 0:
            return days
        years = days.astype("datetime64[Y]").astype(int) + 1970
        h = _holiday_days(self.market, int(years.min()), int(years.max()))
        return h[(h >= days[0]) & (h <= days[-1])]

    def sessions(self, start, end) -> pd.DataFrame:
        days = _day_range(start, end)
        days = days[_weekday(days) < 5]
        if days.size:
            days = days[~np.isin(days, self.holidays_between(days[0], days[-1] + np.timedelta64(1, "D")))]
        return pd.DataFrame({
            "session": days,
            "open_ns": _local_to_utc_ns(days, self.open, self.tz),
            "close_ns": _local_to_utc_ns(days, self.close, self.tz),
        })


@dataclass(frozen=True)
class ForexCalendar(Calendar):
    """24x5: session D (Mon..Fri) runs from 17:00 New York on D-1 to 17:00 New York on D."""

    tz: str = "America/New_York"
    roll: time = time(17, 0)

    def sessions(self, start, end) -> pd.DataFrame:
        days = _day_range(start, end)
        days = days[_weekday(days) < 5]
        return pd.DataFrame({
            "session": days,
            "open_ns": _local_to_utc_ns(days, self.roll, self.tz, day_offset=-1),
            "close_ns": _local_to_utc_ns(days, self.roll, self.tz),
        })


@dataclass(frozen=True)
class CryptoCalendar(Calendar):
    """24x7: session D is the UTC day D."""

    def sessions(self, start, end) -> pd.DataFrame:
        days = _day_range(start, end)
        opens = days.astype("datetime64[ns]").astype(np.int64)
        return pd.DataFrame({"session": days, "open_ns": opens, "close_ns": opens + _NS_PER_DAY})


NYSE = ExchangeCalendar("NYSE")
FOREX = ForexCalendar("FOREX")
CRYPTO = CryptoCalendar("CRYPTO")

_BY_CLASS = {
    AssetClass.STOCK: NYSE, AssetClass.INDEX: NYSE,
    AssetClass.FOREX: FOREX, AssetClass.CRYPTO: CRYPTO,
}


def get_calendar(name: str | AssetClass) -> Calendar:
    """A calendar by name (``NYSE``, ``FOREX``, ``CRYPTO``) or by asset class.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(name, AssetClass):
        return _BY_CLASS[name]
    key = str(name).upper()
    for cal in (NYSE, FOREX, CRYPTO):
        if cal.name == key:
            return cal
    try:
        return _BY_CLASS[AssetClass(str(name).lower())]
    except ValueError:
        raise ValueError(f"unknown calendar {name!r}: expected NYSE, FOREX, CRYPTO or an asset class") from None


def calendar_for(symbol: str) -> Calendar:
    """The calendar a platform symbol trades on (from its region suffix)."""
    return _BY_CLASS[asset_class_of(symbol)]
