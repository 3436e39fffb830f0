"""Trading calendars: exchange holidays, DST, the forex week, crypto's 24x7."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyplatform.calendars import CRYPTO, FOREX, NYSE, calendar_for, get_calendar


def ns(text: str) -> int:
    return pd.Timestamp(text).value


def test_nyse_sessions_skip_weekends_and_holidays():
    s = NYSE.sessions("2024-01-01", "2025-01-01")
    assert len(s) == 252  # NYSE traded 252 days in 2024
    days = set(pd.to_datetime(s["session"]).dt.date.astype(str))
    for closed in ["2024-01-01", "2024-03-29", "2024-07-04", "2024-11-28", "2024-12-25", "2024-03-09"]:
        assert closed not in days
    assert "2024-07-05" in days
    assert [str(d) for d in NYSE.holidays_between("2024-03-01", "2024-04-01")] == ["2024-03-29"]


def test_nyse_session_times_follow_dst():
    s = NYSE.sessions("2024-03-08", "2024-03-12").set_index("session")
    assert s.loc["2024-03-08", "open_ns"] == ns("2024-03-08 14:30")  # EST: UTC-5
    assert s.loc["2024-03-11", "open_ns"] == ns("2024-03-11 13:30")  # EDT from 10 March
    assert s.loc["2024-03-11", "close_ns"] == ns("2024-03-11 20:00")


def test_nyse_minutes_and_is_open():
    m = NYSE.minutes("2024-03-11", "2024-03-12")
    assert len(m) == 390 and m[0] == ns("2024-03-11 13:30") and m[-1] == ns("2024-03-11 19:59")
    probe = np.array([ns("2024-03-11 13:29"), ns("2024-03-11 13:30"), ns("2024-03-11 19:59:59"),
                      ns("2024-03-11 20:00"), ns("2024-07-04 15:00")])
    assert NYSE.is_open(probe).tolist() == [False, True, True, False, False]
    assert len(NYSE.minutes("2024-03-11", "2024-03-12", freq="5min")) == 78


def test_forex_week_opens_sunday_and_closes_friday_new_york_17h():
    # summer (EDT): 17:00 New York = 21:00 UTC
    probe = np.array([ns("2024-06-07 20:59"), ns("2024-06-07 21:00"), ns("2024-06-08 12:00"),
                      ns("2024-06-09 20:59"), ns("2024-06-09 21:00"), ns("2024-06-10 03:00")])
    assert FOREX.is_open(probe).tolist() == [True, False, False, False, True, True]
    # Sunday evening belongs to Monday's session
    assert str(FOREX.session_date(np.array([ns("2024-06-09 21:00")]))[0]) == "2024-06-10"
    # winter (EST): 22:00 UTC
    assert FOREX.is_open(np.array([ns("2024-01-07 21:30"), ns("2024-01-07 22:00")])).tolist() == [False, True]
    assert len(FOREX.minutes("2024-06-10", "2024-06-15")) == 5 * 1440


def test_crypto_never_closes():
    m = CRYPTO.minutes("2024-06-08", "2024-06-10")  # a weekend
    assert len(m) == 2 * 1440
    assert CRYPTO.is_open(m).all()
    assert np.all(np.diff(m) == 60 * 10**9)


def test_lookup_by_symbol_class_and_name():
    assert calendar_for("AAPL.US") is NYSE
    assert calendar_for("EURUSD.GB") is FOREX
    assert calendar_for("BTCUSDT.BA") is CRYPTO
    assert get_calendar("nyse") is NYSE and get_calendar("crypto") is CRYPTO
    with pytest.raises(ValueError, match="unknown calendar"):
        get_calendar("LSE")
