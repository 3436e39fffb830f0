"""Token bucket for order submissions (clock-driven, pure)."""

from __future__ import annotations

__all__ = ["TokenBucket"]

_NS = 1_000_000_000


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate_per_s``; one token per submission.

    Time comes in as integer nanoseconds, so a backtest replays the same decisions.
    """

    def __init__(self, rate_per_s: float, capacity: int, now_ns: int = 0) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError(f"TokenBucket needs rate_per_s > 0 and capacity >= 1, got {rate_per_s}, {capacity}")
        self.rate, self.capacity = float(rate_per_s), float(capacity)
        self.tokens = float(capacity)
        self.last_ns = int(now_ns)

    def _refill(self, now_ns: int) -> None:
        if now_ns > self.last_ns:
            self.tokens = min(self.capacity, self.tokens + (now_ns - self.last_ns) * self.rate / _NS)
            self.last_ns = now_ns

    def available(self, now_ns: int) -> float:
        self._refill(now_ns)
        return self.tokens

    def try_take(self, now_ns: int, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are enough; False (and nothing taken) otherwise."""
        self._refill(now_ns)
        if self.tokens + 1e-12 >= n:
            self.tokens = max(0.0, self.tokens - n)
            return True
        return False
