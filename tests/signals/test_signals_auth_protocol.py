"""Pure units: token issue/verify/rotation/revocation, and the sans-I/O session rules."""

from __future__ import annotations

import json

import jwt
import pytest

from pyplatform.signals.auth import AuthError, Claims, KeyRing, RevocationList, TokenIssuer, TokenVerifier, load_master_secret
from pyplatform.signals.protocol import Close, SendControl, Session, SessionConfig, Subscribe, Unsubscribe
from pyplatform.signals.topics import parse_topic

NS = 10**9
T0 = 1_800_000_000 * NS
KEYS = KeyRing(b"k" * 40, rotation_s=86_400, grace_s=3_600)


def test_issue_and_verify_carry_entitlements_and_key_id():
    tok = TokenIssuer(KEYS).issue("alice", topics=["factors:*"], symbols=["AAPL.US"], now_ns=T0, ttl_s=600)
    assert jwt.get_unverified_header(tok)["kid"] == KEYS.current_kid(T0)
    c = TokenVerifier(KEYS).verify(tok, T0 + 599 * NS)
    assert (c.subject, c.topics, c.symbols, c.expires_ns) == ("alice", ("factors:*",), ("AAPL.US",), T0 + 600 * NS)
    with pytest.raises(AuthError, match="expired"):
        TokenVerifier(KEYS).verify(tok, T0 + 700 * NS)


def test_rotation_accepts_previous_key_only_during_grace():
    boundary = (T0 // NS // 86_400 + 1) * 86_400 * NS
    old = TokenIssuer(KEYS).issue("bob", topics=["*"], symbols=["*"], now_ns=boundary - 60 * NS, ttl_s=7_200)
    v = TokenVerifier(KEYS)
    assert v.verify(old, boundary - NS).subject == "bob"
    assert v.verify(old, boundary + 3_000 * NS).subject == "bob"  # previous key, inside grace
    with pytest.raises(AuthError, match="not current"):
        v.verify(old, boundary + 3_700 * NS)
    new = TokenIssuer(KEYS).issue("bob", topics=["*"], symbols=["*"], now_ns=boundary + 3_700 * NS)
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert v.verify(new, boundary + 3_701 * NS)


def test_forged_tampered_and_wrong_algorithm_tokens_are_refused():
    v = TokenVerifier(KEYS)
    forged = TokenIssuer(KeyRing(b"z" * 40)).issue("eve", topics=["*"], symbols=["*"], now_ns=T0)
    with pytest.raises(AuthError, match="signature"):
        v.verify(forged, T0)
    none_alg = jwt.encode({"sub": "eve", "exp": T0 // NS + 60, "jti": "x", "topics": ["*"], "symbols": ["*"]}, None,
                          algorithm="none", headers={"kid": KEYS.current_kid(T0)})
    with pytest.raises(AuthError, match="algorithm"):
        v.verify(none_alg, T0)
    with pytest.raises(AuthError, match="malformed"):
        v.verify("not.a.jwt", T0)


def test_revocation_list_is_shared_through_its_file(tmp_path):
    path = tmp_path / "revoked.json"
    tok = TokenIssuer(KEYS).issue("carol", topics=["*"], symbols=["*"], now_ns=T0)
    reader = TokenVerifier(KEYS, RevocationList(path))
    claims = reader.verify(tok, T0)
    RevocationList(path).revoke(claims.token_id, claims.expires_ns // NS, T0)  # another process
    with pytest.raises(AuthError, match="revoked"):
        reader.verify(tok, T0)
    RevocationList(path).revoke("other", 0, T0 + 10**6 * NS)  # prunes entries already expired
    assert json.loads(path.read_text()) == {"other": 0}


def test_secret_loading_errors_are_clear(tmp_path):
    with pytest.raises(AuthError, match="PYPLATFORM_JWT_SECRET_FILE"):
        load_master_secret(None, env={})
    with pytest.raises(AuthError, match="does not exist"):
        load_master_secret(tmp_path / "missing", env={})
    (tmp_path / "short").write_text("abc")
    with pytest.raises(AuthError, match="at least 32"):
        load_master_secret(tmp_path / "short", env={})
    assert load_master_secret(None, env={"PYPLATFORM_JWT_SECRET": "s" * 32}) == b"s" * 32


def _session(topics=("*",), symbols=("*",), **cfg):
    claims = Claims("u", "j", T0 + 60 * NS, tuple(topics), tuple(symbols))
    return Session(claims, T0, SessionConfig(**cfg))


def test_session_subscribe_actions_and_field_errors():
    s = _session()
    acts = s.receive_text(json.dumps({"type": "subscribe", "topics": ["factors:mom", "quotes"], "symbols": ["AAPL.US"],
                                      "from_seq": {"quotes": 5}, "id": 9}), T0)
    assert acts == [Subscribe(parse_topic("factors:mom"), frozenset({"AAPL.US"}), None, 9),
                    Subscribe(parse_topic("quotes"), frozenset({"AAPL.US"}), 5, 9)]
    assert s.receive_text('{"type":"unsubscribe","topic":"quotes"}', T0) == [Unsubscribe(parse_topic("quotes"), None)]
    for req, words in [({"type": "subscribe"}, "field 'topics'"), ({"type": "subscribe", "topics": ["x"]}, "unknown topic 'x'"),
                       ({"type": "subscribe", "topics": ["quotes"], "from_seq": -1}, "field 'from_seq'"),
                       ({"type": "subscribe", "topics": ["quotes"], "symbols": []}, "field 'symbols'"),
                       ({"type": "dance"}, "field 'type'")]:
        (act,) = s.receive_text(json.dumps(req), T0)
        assert isinstance(act, SendControl) and act.message["code"] == "bad_request" and words in act.message["message"]
    assert not s.closed


def test_session_entitlements_rate_limit_expiry_and_bad_frames():
    s = _session(topics=["quotes"], symbols=["AAPL.US"])
    (act,) = s.receive_text('{"type":"subscribe","topics":["bars"],"symbols":["AAPL.US"]}', T0)
    assert act.message["code"] == "forbidden" and act.message["topics"] == ["bars"]
    (act,) = s.receive_text('{"type":"subscribe","topics":["quotes"],"symbols":["MSFT.US"]}', T0)
    assert act.message["code"] == "forbidden" and act.message["symbols"] == ["MSFT.US"]
    assert _session().receive_text("{oops", T0) == [Close(1007, "invalid JSON at position 1: Expecting property name enclosed in double quotes")]
    assert _session().receive_bytes(b"x", T0)[0].code == 1003
    r = _session(requests_per_s=1, burst=3)
    outs = [r.receive_text('{"type":"ping"}', T0) for _ in range(4)]
    assert [type(o[0]).__name__ for o in outs] == ["SendControl"] * 3 + ["Close"]
    assert outs[-1][0].code == 1008 and r.receive_text('{"type":"ping"}', T0) == []
    r2 = _session(requests_per_s=1, burst=1)
    assert isinstance(r2.receive_text('{"type":"ping"}', T0)[0], SendControl)
    assert isinstance(r2.receive_text('{"type":"ping"}', T0 + 2 * NS)[0], SendControl)  # the bucket refilled
    e = _session()
    assert e.tick(T0 + 59 * NS) == []
    assert e.tick(T0 + 60 * NS)[0] == Close(1008, "token expired; reconnect with a fresh token")


def test_wildcard_topic_is_all_of_a_kind_and_entitlement_patterns_cover_it():
    assert parse_topic("factors:*") == parse_topic("factors")
    c = Claims("u", "j", T0, ("factors:*", "signals:momo"), ("*",))
    assert c.allows_topic(parse_topic("factors:*")) and c.allows_topic(parse_topic("factors:mom"))
    assert c.allows_topic(parse_topic("signals:momo"))
    assert not c.allows_topic(parse_topic("signals")) and not c.allows_topic(parse_topic("signals:*"))
    assert not c.allows_topic(parse_topic("quotes"))
    assert not Claims("u", "j", T0, ("factors:mom",), ("*",)).allows_topic(parse_topic("factors"))
