"""Normalisation of raw market data into the platform's internal types, column at a time.

Timestamps become int64 nanoseconds UTC from any of: Unix seconds, milliseconds,
microseconds or nanoseconds (declared, or detected from each value's magnitude), ISO-8601
strings with or without a zone (a zone-less string is read in ``assume_tz``, UTC by default),
``datetime64`` values or pandas timestamps. Prices become float64 from integers with a
scale (``12345`` with ``scale=2`` is 123.45), floats, decimal strings, or numerator /
denominator pairs, optionally rounded to an asset class's precision.

Every function looks at whole columns with NumPy/pandas; a bad value raises
:class:`NormalizationError`, whose ``errors`` list every bad row (field, row, value, reason)
and whose message names the first few, so a caller can report all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pyplatform.clock import Clock

__all__ = [
    "BadValue", "NormalizationError", "to_ns", "to_price", "to_volume", "ratio_price",
    "detect_unit", "DEFAULT_MAX_FUTURE",
]

#: How far past "now" a timestamp may be before it is rejected as far in the future.
DEFAULT_MAX_FUTURE = pd.Timedelta("1D")

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# A Unix time in seconds below 1e11 is before the year 5138; in ms below 1e14, etc. Each
# class spans three decades, so any date between 1973 and 5138 has one unambiguous unit.
_UNIT_BOUNDS = [(1e11, "s"), (1e14, "ms"), (1e17, "us"), (np.inf, "ns")]
_MIN_VALID_NS = pd.Timestamp("1971-01-01").value  # anything earlier is a unit mistake
_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class BadValue:
    """One rejected value: which column, which row (0-based position), what, and why.

    The one record of a bad value, for a column being normalised, a frame the store
    checks and a file being imported (``file`` set: which file the row is in).

    Parameters
    ----------
    field : str
        The column, named as the caller's data names it (a file's own header on import).
    row : int
        0-based position in the column (a file's 0-based data row on import).
    value : object
        The rejected value as found.
    reason : str
        Why it was rejected.
    file : str, optional
        The file the value came from; ``None`` for in-memory data.
    """

    field: str
    row: int
    value: object
    reason: str
    file: str | None = None

    def __str__(self) -> str:
        where = (f"{self.field}[row {self.row}]" if self.file is None
                 else f"{self.file}: row {self.row}, column {self.field!r}")
        return f"{where} = {self.value!r}: {self.reason}"


class NormalizationError(ValueError):
    """Raised with every bad value found; ``errors`` is the list of :class:`BadValue`.

    The one "every bad value listed" error: the message names the first ``limit`` values
    and counts the rest, inline (one line, for an exception in a notebook or a log) or as a
    block (one value a line, for a command's report; :class:`~pyplatform.data.importer.ImportFailed`).

    Parameters
    ----------
    errors : list of BadValue
    limit : int
        How many values the message names.
    """

    #: the message's first words (before the count)
    lead = ""
    #: ``True``: one value a line, indented; ``False``: ``; ``-separated on one line
    block = False
    default_limit = 5

    def __init__(self, errors: list[BadValue], limit: int | None = None) -> None:
        self.errors = list(errors)
        super().__init__(self._message(limit or self.default_limit))

    def _message(self, limit: int) -> str:
        n, shown = len(self.errors), [str(e) for e in self.errors[:limit]]
        rest = n - limit
        head = f"{self.lead}{n} bad value(s):"
        if self.block:
            more = f"\n  ... and {rest} more" if rest > 0 else ""
            return head + "".join(f"\n  {s}" for s in shown) + more
        more = f" (and {rest} more)" if rest > 0 else ""
        return f"{head} {'; '.join(shown)}{more}"


def _bad(field: str, values, rows: np.ndarray, reason: str) -> list[BadValue]:
    vals = np.asarray(values, dtype=object)
    return [BadValue(field, int(r), _plain(vals[r]), reason) for r in rows[:1000]]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def detect_unit(values) -> np.ndarray:
    """The Unix-time unit (``s``, ``ms``, ``us``, ``ns``) each numeric value's magnitude implies."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    out = np.full(a.shape, "ns", dtype="<U2")
    for bound, unit in reversed(_UNIT_BOUNDS[:-1]):
        out[a < bound] = unit
    return out


def to_ns(values, field: str = "ts", unit: str = "auto", assume_tz: str = "UTC",
          clock: Clock | None = None, max_future: pd.Timedelta | str | None = DEFAULT_MAX_FUTURE,
          ) -> np.ndarray:
    """Timestamps of any supported form as int64 nanoseconds UTC.

    Parameters
    ----------
    values : array-like
        Numbers (Unix time), ISO-8601 strings, datetime64 or pandas timestamps.
    field : str
        Column name used in error messages.
    unit : {"auto", "s", "ms", "us", "ns", "iso"}
        Unit of numeric values; ``auto`` detects it from each value's magnitude and requires
        one unit for the whole column.
    assume_tz : str
        Zone for ISO strings and datetimes without one.
    clock : Clock
        Source of "now" for the far-future check; required unless ``max_future`` is None
        (``LiveClock()`` for wall time, a ``SimClock`` in a backtest or a test).
    max_future : Timedelta or str or None
        Reject timestamps later than now + this; ``None`` disables the check.

    Raises
    ------
    TypeError
        With the far-future check on and no clock: nothing here picks wall time silently.
    NormalizationError
        Naming each unparseable, missing, ambiguous-unit, pre-1971 or far-future value.
    """
    if clock is None and max_future is not None:
        raise TypeError("to_ns: the far-future check needs clock= (LiveClock() for wall time), "
                        "or max_future=None to skip it")
    raw = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    errors: list[BadValue] = []
    if raw.dtype.kind in "OUS" and unit != "iso":
        numeric = _numeric_text(raw)
        if numeric is not None:
            raw = numeric
        else:
            is_num = pd.Series(raw, dtype=object).astype(str).str.strip().str.fullmatch(
                r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?").to_numpy()
            if is_num.any():
                # epochs and ISO text in one column: each part by its own rules
                out = np.full(raw.shape, _NAT, dtype=np.int64)
                for mask, sub_unit in ((is_num, unit), (~is_num, "iso")):
                    rows = np.flatnonzero(mask)
                    try:
                        out[rows] = to_ns(raw[rows], field, sub_unit, assume_tz, clock, max_future)
                    except NormalizationError as exc:
                        errors += [replace(e, row=int(rows[e.row])) for e in exc.errors]
                if errors:
                    raise NormalizationError(sorted(errors, key=lambda e: e.row))
                return out
    if raw.dtype.kind in "iuf" and unit != "iso":
        out, errors = _numeric_ns(raw, field, unit)
    elif raw.dtype.kind == "M":
        idx = pd.DatetimeIndex(raw)
        out = _localise(idx, assume_tz)
        nat = np.flatnonzero(idx.isna())
        errors += _bad(field, raw, nat, "missing timestamp")
    else:
        out, errors = _text_ns(raw, field, assume_tz)
    ok = out != _NAT
    early = np.flatnonzero(ok & (out < _MIN_VALID_NS))
    errors += _bad(field, raw, early, "before 1971 (wrong unit?)")
    if max_future is not None:
        limit = clock.now_ns() + pd.Timedelta(max_future).value
        late = np.flatnonzero(ok & (out > limit))
        errors += _bad(field, raw, late, f"more than {pd.Timedelta(max_future)} in the future")
    if errors:
        raise NormalizationError(sorted(errors, key=lambda e: e.row))
    return out


def _numeric_text(raw: np.ndarray) -> np.ndarray | None:
    """Text that is all numbers (CSV epochs) as int64 (exact for ns) or float64, else None."""
    s = pd.Series(raw, dtype=object)
    text = s.astype(str).str.strip()
    if s.isna().any():
        return None
    if text.str.fullmatch(r"-?\d{1,19}").all():
        try:
            return text.to_numpy().astype(np.int64)
        except OverflowError:
            return None
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=np.float64)
    return None


def _localise(idx: pd.DatetimeIndex, assume_tz: str) -> np.ndarray:
    if idx.tz is None and assume_tz.upper() != "UTC":
        idx = idx.tz_localize(assume_tz)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8.copy()


def _numeric_ns(raw: np.ndarray, field: str, unit: str) -> tuple[np.ndarray, list[BadValue]]:
    errors: list[BadValue] = []
    f = raw.astype(np.float64)
    bad = ~np.isfinite(f)
    errors += _bad(field, raw, np.flatnonzero(bad), "not a finite number")
    if unit == "auto":
        units = detect_unit(np.where(bad, 1e9, f))
        good_units = units[~bad]
        if good_units.size and (good_units != good_units[0]).any():
            first = str(good_units[0])
            odd = np.flatnonzero(~bad & (units != first))
            errors += _bad(field, raw, odd, f"looks like unit {str(units[odd[0]])!r} while the column is in "
                                            f"{first!r}; declare the unit")
            bad[odd] = True
        unit = str(good_units[0]) if good_units.size else "ns"
    if unit not in _UNIT_NS:
        raise ValueError(f"{field}: unknown unit {unit!r}: expected auto, s, ms, us, ns or iso")
    mult = _UNIT_NS[unit]
    overflow = ~bad & (np.abs(f) * mult > 9.2e18)
    errors += _bad(field, raw, np.flatnonzero(overflow), f"out of range for unit {unit!r}")
    bad |= overflow
    if raw.dtype.kind in "iu":
        out = np.where(bad, 0, raw).astype(np.int64) * mult
    else:
        out = np.where(bad, 0, np.rint(f * mult)).astype(np.int64)
    out[bad] = _NAT
    return out, errors


def _text_ns(raw: np.ndarray, field: str, assume_tz: str) -> tuple[np.ndarray, list[BadValue]]:
    s = pd.Series(raw, dtype=object)
    missing = s.isna().to_numpy()
    text = s.astype(str).str.strip()
    # strings with a zone (Z or +hh:mm) are absolute; the others are wall time in assume_tz
    has_zone = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).to_numpy() & ~missing
    out = np.full(len(s), _NAT, dtype=np.int64)
    if has_zone.any():
        z = pd.to_datetime(text[has_zone], format="ISO8601", utc=True, errors="coerce")
        vals = z.dt.tz_localize(None).dt.as_unit("ns")
        out[has_zone] = np.where(vals.isna(), _NAT, vals.to_numpy().astype("datetime64[ns]").astype(np.int64))
    naive = ~has_zone & ~missing
    if naive.any():
        n = pd.DatetimeIndex(pd.to_datetime(text[naive], format="ISO8601", errors="coerce"))
        vals = _localise(n, assume_tz)
        vals[n.isna()] = _NAT
        out[naive] = vals
    nat = out == _NAT
    errors = _bad(field, raw, np.flatnonzero(missing), "missing timestamp")
    errors += _bad(field, raw, np.flatnonzero(nat & ~missing), "not an ISO-8601 timestamp")
    return out, errors


def to_price(values, field: str = "price", scale: int | None = None, decimals: int | None = None,
             allow_missing: bool = False) -> np.ndarray:
    """Prices of any supported form as float64.

    Parameters
    ----------
    values : array-like
        Floats, integers (with ``scale``: ``12345`` at scale 2 is 123.45) or decimal strings.
    scale : int, optional
        Number of implied decimals of integer prices.
    decimals : int, optional
        Round to this many decimals (the asset class's precision), half to even.
    allow_missing : bool
        Keep missing values as NaN instead of rejecting them (optional columns such as bid).

    Raises
    ------
    NormalizationError
        Naming each unparseable, missing, infinite or negative value.
    """
    raw = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    errors: list[BadValue] = []
    if raw.dtype.kind in "iufb":
        num = raw.astype(np.float64)
        unparsed = np.zeros(raw.shape, dtype=bool)
    else:
        s = pd.Series(raw, dtype=object)
        blank = s.isna() | (s.astype(str).str.strip() == "")
        num = pd.to_numeric(s.where(~blank).astype(str).str.strip().where(~blank), errors="coerce").to_numpy(
            dtype=np.float64)
        unparsed = np.isnan(num) & ~blank.to_numpy()
        # "nan" parses as NaN: report it as NaN, not as unparseable
        is_nan_text = s.astype(str).str.strip().str.lower().isin(["nan", "-nan"]).to_numpy()
        unparsed &= ~is_nan_text
        errors += _bad(field, raw, np.flatnonzero(unparsed), "not a number")
    if scale is not None:
        num = num / (10.0 ** int(scale))
    nan = np.isnan(num) & ~unparsed
    if not allow_missing:
        errors += _bad(field, raw, np.flatnonzero(nan), "missing or NaN")
    errors += _bad(field, raw, np.flatnonzero(np.isinf(num)), "infinite")
    errors += _bad(field, raw, np.flatnonzero(num < 0), "negative price")
    if errors:
        raise NormalizationError(sorted(errors, key=lambda e: e.row))
    return np.round(num, decimals) if decimals is not None else num


def ratio_price(numerator, denominator, field: str = "price", decimals: int | None = None) -> np.ndarray:
    """Prices given as numerator/denominator pairs (e.g. ``101 + 5/32`` quoted as 3237/32).

    Raises
    ------
    NormalizationError
        For a bad numerator or a zero, negative or missing denominator.
    """
    num = to_price(numerator, field=f"{field}.numerator")
    den_raw = denominator.to_numpy() if isinstance(denominator, (pd.Series, pd.Index)) else np.asarray(denominator)
    den = to_price(den_raw, field=f"{field}.denominator")
    zero = np.flatnonzero(den == 0)
    if zero.size:
        raise NormalizationError(_bad(f"{field}.denominator", den_raw, zero, "zero denominator"))
    out = num / den
    return np.round(out, decimals) if decimals is not None else out


def to_volume(values, field: str = "volume", allow_missing: bool = False) -> np.ndarray:
    """Volumes as float64 (same rules as prices: numbers or numeric strings, not negative)."""
    return to_price(values, field=field, allow_missing=allow_missing)
