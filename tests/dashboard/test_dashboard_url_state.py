"""The Market page's URL state without a browser: what a link carries, what is dropped."""

from __future__ import annotations

from urllib.parse import parse_qs

import pandas as pd

from pyplatform.dashboard.pages.market import parse_query, state_query

SYMS = ["AAA.US", "BBB.US", "EURUSD.GB"]
LIB = {"sma_20": "sma(close, 20)", "rsi_14": "rsi(close, 14)"}


def test_a_link_round_trips_the_drawn_state():
    start, end = pd.Timestamp("2024-01-16").value, pd.Timestamp("2024-02-13 14:30").value
    view = {"symbol": "BBB.US", "tf": "1h", "start": start, "end": end}
    q = state_query(view, "1h", ["sma_20"], ["rsi_14"], ["AAA.US", "EURUSD.GB"], ["log"], "mavg(close, 5)")
    assert parse_qs(q[1:])["start"] == ["2024-01-16"] and parse_qs(q[1:])["end"] == ["2024-02-13T14:30"]
    got = parse_query(q, SYMS, LIB)
    assert got == {"symbol": "BBB.US", "tf": "1h", "start": start, "end": end, "overlays": ["sma_20"],
                   "panels": ["rsi_14"], "compare": ["AAA.US", "EURUSD.GB"], "log": True, "expr": "mavg(close, 5)"}


def test_the_whole_history_leaves_the_window_out():
    q = state_query({"symbol": "AAA.US", "start": None, "end": None}, "1d", [], [], [], [], "")
    assert parse_qs(q[1:]) == {"symbol": ["AAA.US"], "tf": ["1d"]}


def test_what_is_not_valid_here_is_dropped_not_guessed():
    q = ("?symbol=NOPE.US&tf=7x&start=yesterday&end=2024-01-01&overlays=sma_20,__import__&compare=BBB.US,ZZZ.US"
         "&log=yes&expr=" + "x" * 600)
    assert parse_query(q, SYMS, LIB) == {"overlays": ["sma_20"], "compare": ["BBB.US"]}
    # an end before the start is no window
    assert "start" not in parse_query("?start=2024-02-01&end=2024-01-01", SYMS, LIB)
    assert parse_query(None, SYMS, LIB) == {} and parse_query("", SYMS, LIB) == {}
