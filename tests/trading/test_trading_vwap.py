"""VWAP slicing of large orders."""

from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyplatform.execution.messages import OrdType, Side, SubmitOrder
from pyplatform.execution.vwap import SliceScheduler, needs_slicing, vwap_slices

M = 60_000_000_000


def parent(qty):
    return SubmitOrder("P", "acc", "AAPL.US", Side.BUY, D(qty), OrdType.LIMIT, D(100), ts=1000)


def test_threshold_is_10_percent_of_last_minute_volume():
    assert not needs_slicing(D(1000), 10_000)
    assert needs_slicing(D(1001), 10_000)
    assert vwap_slices(parent(1000), 10_000) == [parent(1000)]


def test_uniform_schedule_keeps_each_child_under_participation():
    kids = vwap_slices(parent(4500), 10_000, lot=D(100))
    assert [k.quantity for k in kids] == [D(900)] * 5
    assert [k.ts for k in kids] == [1000 + i * M for i in range(5)]
    assert all(k.parent_id == "P" and k.client_order_id == f"P.{i + 1}" for i, k in enumerate(kids))


def test_profile_weights_and_lot_rounding():
    kids = vwap_slices(parent(10_000), 1000, profile=np.array([3, 1, 1, 5]), lot=D(100))
    assert [k.quantity for k in kids] == [D(3000), D(1000), D(1000), D(5000)]
    kids = vwap_slices(parent(1000), 10, profile=np.array([1, 1, 1]), lot=D(100))
    assert [k.quantity for k in kids] == [D(400), D(300), D(300)]


@settings(max_examples=100, deadline=None)
@given(st.integers(101, 100_000), st.lists(st.floats(0.1, 100), min_size=1, max_size=20))
def test_children_sum_exactly_to_parent(qty, profile):
    kids = vwap_slices(parent(qty), 1000, profile=np.array(profile), lot=D(100))
    assert sum(k.quantity for k in kids) == qty
    assert all(k.quantity > 0 for k in kids)


def test_bad_profile_is_named():
    with pytest.raises(ValueError, match="profile"):
        vwap_slices(parent(5000), 1000, profile=np.array([0.0, 0.0]))


def test_scheduler_releases_by_time():
    s = SliceScheduler()
    s.add(vwap_slices(parent(3000), 10_000, lot=D(100)))
    assert [c.client_order_id for c in s.due(1000)] == ["P.1"]
    assert s.due(1000 + M - 1) == []
    assert [c.client_order_id for c in s.due(1000 + 2 * M)] == ["P.2", "P.3"]
    assert len(s) == 0
