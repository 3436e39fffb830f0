"""Normalisation of timestamps and prices, including every kind of bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyplatform.clock import SimClock
from pyplatform.normalize import NormalizationError, detect_unit, ratio_price, to_ns, to_price

T = pd.Timestamp("2024-03-11 13:30:00.123456789")
NOW = SimClock(pd.Timestamp("2024-06-01").value)


@pytest.mark.parametrize("unit,div", [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_unix_units_detected_and_declared(unit, div):
    raw = np.array([T.value // div, T.value // div + 1], dtype=np.int64)
    expected = raw * div
    assert detect_unit(raw).tolist() == [unit, unit]
    np.testing.assert_array_equal(to_ns(raw, clock=NOW), expected)
    np.testing.assert_array_equal(to_ns(raw, unit=unit, clock=NOW), expected)


def test_float_seconds_and_numeric_text_keep_precision():
    np.testing.assert_array_equal(to_ns(np.array([1710163800.5]), clock=NOW), [1710163800_500_000_000])
    # nanosecond epochs as CSV text must not pass through float64
    assert to_ns(np.array([str(T.value)], dtype=object), clock=NOW)[0] == T.value


def test_iso_with_and_without_zone():
    got = to_ns(pd.Series(["2024-03-11T09:30:00-04:00", "2024-03-11T13:30:00Z", "2024-03-11 13:30:00"]),
                clock=NOW)
    assert (got == pd.Timestamp("2024-03-11 13:30").value).all()
    ny = to_ns(np.array(["2024-03-11 09:30:00"], dtype=object), assume_tz="America/New_York", clock=NOW)
    assert ny[0] == pd.Timestamp("2024-03-11 13:30").value
    assert to_ns(np.array(["2024-03-11T13:30:00.123456789Z"], dtype=object), clock=NOW)[0] == T.value


def test_datetime64_input():
    arr = np.array(["2024-03-11T13:30:00"], dtype="datetime64[s]")
    assert to_ns(arr, clock=NOW)[0] == pd.Timestamp("2024-03-11 13:30").value


def _only_error(exc: NormalizationError):
    assert len(exc.errors) == 1
    return exc.errors[0]


@pytest.mark.parametrize("values,row,reason", [
    (["2024-03-11T13:30:00Z", "yesterday"], 1, "not an ISO-8601"),
    (["2024-03-11T13:30:00Z", None], 1, "missing"),
    ([1710163800, 1710163800000], 1, "declare the unit"),
    ([1710163800, 123], 1, "before 1971"),
    ([1710163800, np.nan], 1, "not a finite"),
    ([pd.Timestamp("2024-06-03").value, pd.Timestamp("2024-06-01").value], 0, "in the future"),
])
def test_bad_timestamps_name_field_row_and_value(values, row, reason):
    with pytest.raises(NormalizationError) as info:
        to_ns(pd.Series(values, dtype=object if isinstance(values[0], str) else None), field="time", clock=NOW)
    e = _only_error(info.value)
    assert (e.field, e.row) == ("time", row)
    assert reason in e.reason
    assert "time[row" in str(info.value)


def test_far_future_limit_is_configurable():
    v = [pd.Timestamp("2024-06-03").value]
    assert to_ns(v, clock=NOW, max_future="7D")[0] == v[0]
    assert to_ns(v, clock=NOW, max_future=None)[0] == v[0]


def test_prices_from_every_form():
    np.testing.assert_allclose(to_price([12345, 100], scale=2), [123.45, 1.0])
    np.testing.assert_allclose(to_price(np.array(["1.10001", " 2.5 "], dtype=object)), [1.10001, 2.5])
    np.testing.assert_allclose(to_price([1.234567], decimals=2), [1.23])
    np.testing.assert_allclose(ratio_price([3237, 1], [32, 8]), [101.15625, 0.125])
    np.testing.assert_allclose(to_price(np.array(["", "1.5"], dtype=object), allow_missing=True), [np.nan, 1.5])


@pytest.mark.parametrize("values,row,reason", [
    (np.array(["1.5", "abc"], dtype=object), 1, "not a number"),
    (np.array([1.5, np.nan]), 1, "NaN"),
    (np.array(["1.5", "nan"], dtype=object), 1, "NaN"),
    (np.array([1.5, -0.01]), 1, "negative"),
    (np.array([np.inf, 1.0]), 0, "infinite"),
    (np.array(["1.5", ""], dtype=object), 1, "missing"),
])
def test_bad_prices_name_field_row_and_value(values, row, reason):
    with pytest.raises(NormalizationError) as info:
        to_price(values, field="close")
    e = _only_error(info.value)
    assert (e.field, e.row) == ("close", row)
    assert reason in e.reason


def test_zero_denominator_and_all_errors_reported():
    with pytest.raises(NormalizationError, match="zero denominator"):
        ratio_price([1, 2], [4, 0])
    with pytest.raises(NormalizationError) as info:
        to_price(np.array(["x", "-1", "2", "nan"], dtype=object), field="p")
    assert [e.row for e in info.value.errors] == [0, 1, 3]
