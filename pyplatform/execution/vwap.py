"""Splitting large orders into child orders on a VWAP schedule (pure)."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from pyplatform.execution.messages import SubmitOrder

__all__ = ["needs_slicing", "vwap_slices", "SliceScheduler"]

_MINUTE = 60_000_000_000


def needs_slicing(quantity: Decimal, last_minute_volume: float, max_participation: float = 0.10) -> bool:
    """True when the order is above ``max_participation`` of the symbol's last-minute volume."""
    if last_minute_volume <= 0:
        return False
    return float(quantity) > max_participation * last_minute_volume


def vwap_slices(parent: SubmitOrder, last_minute_volume: float, *, max_participation: float = 0.10,
                profile: np.ndarray | None = None, lot: Decimal = Decimal(1),
                bucket_ns: int = _MINUTE) -> list[SubmitOrder]:
    """Child orders whose sizes follow a volume profile.

    Parameters
    ----------
    parent : SubmitOrder
        The large order; children get ids ``<parent>.1``, ``<parent>.2``... and
        ``parent_id``; child ``i`` has ``ts = parent.ts + i x bucket_ns`` (its release time).
    last_minute_volume : float
        The symbol's traded volume in the last minute.
    profile : array, optional
        Expected volume per bucket (e.g. the average intraday minute-volume curve). Without
        it: the fewest equal buckets keeping each child at ``max_participation`` of the
        last-minute volume.
    lot : Decimal
        Children are whole lots; rounding remainders go to the buckets with the largest
        fractional share (largest remainder), so the children sum exactly to the parent.
    """
    if not needs_slicing(parent.quantity, last_minute_volume, max_participation):
        return [parent]
    if profile is None:
        n = math.ceil(float(parent.quantity) / (max_participation * last_minute_volume))
        profile = np.ones(n)
    profile = np.asarray(profile, dtype=np.float64)
    if profile.ndim != 1 or len(profile) == 0 or (profile < 0).any() or profile.sum() <= 0:
        raise ValueError("vwap_slices: profile must be a non-empty 1-d array of non-negative volumes with a "
                         "positive sum")
    lots_total = (parent.quantity / lot).to_integral_value(rounding=ROUND_FLOOR)
    odd = parent.quantity - lots_total * lot  # a non-lot remainder rides on the last child
    weights = [Decimal(repr(float(w))) for w in profile / profile.sum()]
    exact = [lots_total * w for w in weights]
    base = [e.to_integral_value(rounding=ROUND_FLOOR) for e in exact]
    short = int(lots_total - sum(base))
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:short]:
        base[i] += 1
    qtys = [b * lot for b in base]
    qtys[-1] += odd
    children = []
    for i, q in enumerate(qtys):
        if q <= 0:
            continue
        children.append(replace(parent, client_order_id=f"{parent.client_order_id}.{i + 1}", quantity=q,
                                ts=parent.ts + i * bucket_ns, parent_id=parent.client_order_id))
    return children


class SliceScheduler:
    """Holds child orders until their release time (``ts``)."""

    def __init__(self) -> None:
        self._pending: list[SubmitOrder] = []

    def add(self, children: list[SubmitOrder]) -> None:
        self._pending.extend(children)
        self._pending.sort(key=lambda c: c.ts)

    def due(self, now_ns: int) -> list[SubmitOrder]:
        """Children whose release time has come (removed from the schedule)."""
        k = 0
        while k < len(self._pending) and self._pending[k].ts <= now_ns:
            k += 1
        out, self._pending = self._pending[:k], self._pending[k:]
        return out

    def cancel_parent(self, parent_id: str) -> int:
        before = len(self._pending)
        self._pending = [c for c in self._pending if c.parent_id != parent_id]
        return before - len(self._pending)

    def cancel_symbol(self, symbol: str) -> int:
        before = len(self._pending)
        self._pending = [c for c in self._pending if c.symbol != symbol]
        return before - len(self._pending)

    def __len__(self) -> int:
        return len(self._pending)
