"""The one token bucket, as both of its users rely on it (order risk and signal sessions)."""

import pytest

from pyplatform.ratelimit import TokenBucket
from pyplatform.risk import TokenBucket as RiskBucket
from pyplatform.signals.protocol import Session, SessionConfig
from pyplatform.signals.auth import Claims

S = 1_000_000_000


def test_both_layers_use_the_same_class():
    assert RiskBucket is TokenBucket
    claims = Claims("u", "j", 10**18, ("*",), ("*",))
    assert type(Session(claims, 0, SessionConfig())._bucket) is TokenBucket


def test_burst_then_one_token_per_interval():
    b = TokenBucket(2.0, 3, now_ns=0)
    assert [b.try_take(0) for _ in range(4)] == [True, True, True, False]
    assert not b.try_take(S // 2 - 1)  # 0.999999998 of a token: not yet
    assert b.try_take(S // 2)
    assert b.available(100 * S) == 3.0  # refill stops at the capacity


def test_a_token_earned_exactly_on_time_is_granted_despite_float_rounding():
    # 0.1 token/s asked once a second: ten refills of 0.1 sum to 0.9999999999999999 in floating
    # point, yet the token is earned at 10 s and must be granted then, not a second later
    b = TokenBucket(0.1, 1, now_ns=0)
    assert b.try_take(0)
    assert [b.try_take(k * S) for k in range(1, 11)] == [False] * 9 + [True]


def test_time_going_back_credits_nothing_twice():
    b = TokenBucket(1.0, 1, now_ns=10 * S)
    assert b.try_take(10 * S)
    assert not b.try_take(5 * S)  # the clock stepped back: nothing earned
    assert not b.try_take(10 * S + S // 2)  # half a token since 10 s, not 5.5 tokens since 5 s
    assert b.try_take(11 * S)


def test_refused_take_takes_nothing_and_fractional_takes():
    b = TokenBucket(1.0, 2, now_ns=0)
    assert not b.try_take(0, n=2.5)
    assert b.available(0) == 2.0
    assert b.try_take(0, n=1.5) and b.available(0) == pytest.approx(0.5)


@pytest.mark.parametrize("rate,cap", [(0, 1), (-1, 5), (1, 0.5), (float("nan"), 1), (1, float("nan"))])
def test_a_bucket_that_could_never_grant_is_refused(rate, cap):
    with pytest.raises(ValueError, match="rate_per_s > 0 and capacity >= 1"):
        TokenBucket(rate, cap)
