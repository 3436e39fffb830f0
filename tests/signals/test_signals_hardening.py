"""Issue #18 findings as tests: hostile tokens and frames get refusals, secrets rotate live, queues bound bytes."""

from __future__ import annotations

import jwt
import pytest

from signals_support import SECRET
from pyplatform.signals.auth import AuthError, Claims, KeyRing, SecretKeys, TokenIssuer, TokenVerifier, load_master_secret
from pyplatform.signals.fanout import Subscriber
from pyplatform.signals.protocol import Close, Session
from pyplatform.signals.wire import JsonCodec

NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def _forge(ring: KeyRing, **claims) -> str:
    kid = ring.current_kid(T0)
    base = {"iss": "pyplatform", "aud": "pyplatform-signals", "sub": "u", "jti": "j", "exp": T0 // NS + 60,
            "topics": ["*"], "symbols": ["*"]}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, ring.key(kid), algorithm="HS256",
                      headers={"kid": kid})


@pytest.mark.parametrize("claims, why", [({"exp": "abc"}, "integer"), ({"iss": None}, "iss"),
                                         ({"aud": "other-service"}, "(?i)audience"), ({"iss": "someone"}, "(?i)issuer"),
                                         ({"sub": ["x"]}, "(?i)sub")])
def test_validly_signed_hostile_claims_are_refused_with_a_reason(claims, why):
    ring = KeyRing(SECRET)
    with pytest.raises(AuthError, match=why):
        TokenVerifier(ring).verify(_forge(ring, **claims), T0)


def test_secret_file_change_is_picked_up_with_grace_then_old_tokens_retired(tmp_path):
    path = tmp_path / "jwt.secret"
    path.write_bytes(b"a" * 40)
    keys = SecretKeys(lambda: load_master_secret(path, env={}), path, secret_grace_s=60, poll_s=0)
    verifier = TokenVerifier(keys)
    old = TokenIssuer(keys.current).issue("u", topics=["*"], symbols=["*"], now_ns=T0)
    claims = verifier.verify(old, T0)
    path.write_bytes(b"b" * 41)  # what `tokens init-secret --force` does
    new = TokenIssuer(KeyRing(b"b" * 41)).issue("u", topics=["*"], symbols=["*"], now_ns=T0)
    assert verifier.verify(new, T0 + NS).subject == "u"  # new secret accepted without a restart
    assert verifier.verify(old, T0 + 2 * NS).subject == "u"  # old one inside its 60 s grace
    assert verifier.retired(claims, T0 + 30 * NS) is None
    with pytest.raises(AuthError, match="signature is invalid"):
        verifier.verify(old, T0 + 62 * NS)
    assert "rotated" in verifier.retired(claims, T0 + 62 * NS)


def _session():
    return Session(Claims("u", "j", T0 + 600 * NS, ("*",), ("*",)), T0)


@pytest.mark.parametrize("text", ["[" * 60_000, '{"type":"subscribe","topics":["quotes"],"from_seq":' + "9" * 5001 + "}"])
def test_deep_or_huge_json_closes_1007_with_a_reason(text):
    actions = _session().receive_text(text, T0)
    assert len(actions) == 1 and isinstance(actions[0], Close)
    assert actions[0].code == 1007 and actions[0].reason


def test_queue_is_bounded_in_bytes_not_only_frames():
    lagged = []
    sub = Subscriber("c1", JsonCodec(), max_frames=1_000, max_bytes=1_000, on_lag=lambda: lagged.append(1))
    sub.push(b"x" * 600, "quotes", 1)
    assert sub.queued_bytes == 600 and not sub.lagged
    sub.push(b"y" * 600, "quotes", 2)  # 1,200 bytes > 1,000: dropped though only 2 frames
    assert sub.lagged and lagged == [1] and sub.queued_bytes == 0 and not sub.queue


from hypothesis import given, settings, strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _json.map(__import__("json").dumps),
                 st.fixed_dictionaries({"type": st.sampled_from(["subscribe", "unsubscribe", "ping"])},
                                       optional={"topics": _json, "symbols": _json, "from_seq": _json, "id": _json})
                 .map(__import__("json").dumps)))
def test_fuzzed_frames_never_raise_and_never_close_1011(text):
    for action in _session().receive_text(text, T0):
        if isinstance(action, Close):
            assert action.code in (1007, 1008) and action.reason


def test_two_authorization_headers_get_400_not_500(tables, verifier, issuer, clock):
    import asyncio
    from signals_support import make_service, run, token

    async def main():
        svc = await make_service(tables, verifier, clock)
        try:
            tok = token(issuer, clock)
            r, w = await asyncio.open_connection("127.0.0.1", svc.port)
            w.write((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     f"Authorization: Bearer {tok}\r\nAuthorization: Bearer {tok}\r\n\r\n").encode())
            await w.drain()
            status = await asyncio.wait_for(r.readline(), 5)
            w.close()
            assert status.split()[1] == b"400", status
        finally:
            await svc.stop()

    run(main())


def test_demo_feed_tables_continue_sequence_numbers_after_restart(tmp_path):
    import numpy as np
    from pyplatform.cli.serve import _open_tables
    from pyplatform.config import get_settings

    settings = get_settings(data_dir=tmp_path)
    batch = {"ts": np.array([1, 2], dtype=np.int64), "symbol": ["A.US", "B.US"], "mom_20": [0.1, 0.2],
             "zscore_20": [0.0, 0.0]}
    first = _open_tables(settings, 2)["factors"].append(batch)
    again = _open_tables(settings, 2)["factors"].append(batch)  # a restarted `serve --demo-feed`
    assert first == (0, 1) and again == (2, 3)
