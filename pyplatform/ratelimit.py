"""The one token bucket: order submissions (``risk``) and client requests (``signals``).

A leaf module with no platform imports, so the risk layer and the signal service (which
must not depend on each other) share it without an import edge between them.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]

_NS = 1_000_000_000
# Refill adds elapsed_ns * rate / 1e9 in floating point: a bucket that has earned exactly one
# token can hold 0.9999999999999998 of one. The slack accepts that (a token earned on time is
# granted) and is far below what one nanosecond earns at any sane rate (1e-9 at 1/s).
_EPS = 1e-12


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate_per_s``; full when created.

    Time comes in as integer nanoseconds from the caller's clock, so a backtest replays the
    same decisions and the bucket itself never reads wall time. Time that goes backwards
    (a wall clock stepped back) refills nothing and does not move the bucket's last time
    back, so the same interval is never credited twice.

    Parameters
    ----------
    rate_per_s : float
        Tokens added per second (> 0).
    capacity : float
        The burst: most tokens the bucket holds (>= 1).
    now_ns : int
        The time the bucket is created (full) at.

    Raises
    ------
    ValueError
        For ``rate_per_s <= 0`` or ``capacity < 1`` (a bucket that could never grant).

    Examples
    --------
    >>> b = TokenBucket(1.0, 2, now_ns=0)
    >>> b.try_take(0), b.try_take(0), b.try_take(0)
    (True, True, False)
    >>> b.try_take(1_000_000_000)
    True
    """

    __slots__ = ("rate", "capacity", "tokens", "last_ns")

    def __init__(self, rate_per_s: float, capacity: float, now_ns: int = 0) -> None:
        if not rate_per_s > 0 or not capacity >= 1:
            raise ValueError(f"TokenBucket needs rate_per_s > 0 and capacity >= 1, got {rate_per_s}, {capacity}")
        self.rate, self.capacity = float(rate_per_s), float(capacity)
        self.tokens = float(capacity)
        self.last_ns = int(now_ns)

    def _refill(self, now_ns: int) -> None:
        if now_ns > self.last_ns:
            self.tokens = min(self.capacity, self.tokens + (now_ns - self.last_ns) * self.rate / _NS)
            self.last_ns = now_ns

    def available(self, now_ns: int) -> float:
        """Tokens held at ``now_ns`` (after refilling)."""
        self._refill(now_ns)
        return self.tokens

    def try_take(self, now_ns: int, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are enough at ``now_ns``; False (and nothing taken) otherwise."""
        self._refill(now_ns)
        if self.tokens + _EPS >= n:
            self.tokens = max(0.0, self.tokens - n)
            return True
        return False
