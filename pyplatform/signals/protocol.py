"""The signal-service session protocol, sans I/O.

A :class:`Session` is fed what a client sent (text or binary frames) and the time, and
returns actions for the adapter to perform: send a control message, subscribe,
unsubscribe, or close with a code. It never touches a socket, a clock or asyncio, so
every rule (request schema, entitlements, rate limits, token expiry) is unit-testable.

Client requests (JSON text frames)::

    {"type": "subscribe", "topics": ["factors:mom_20"], "symbols": ["AAPL.US"],
     "from_seq": 1234, "id": 1}
    {"type": "unsubscribe", "topics": ["factors:mom_20"], "id": 2}
    {"type": "ping", "id": 3}

``topic`` may replace ``topics``; ``from_seq`` is an int (all topics) or
``{topic: seq}``; without it the subscriber gets a snapshot of the latest row per
symbol, then the live stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Union

from pyplatform.ratelimit import TokenBucket
from pyplatform.signals.auth import Claims
from pyplatform.signals.topics import Topic, TopicError, parse_topic, validate_symbol

__all__ = ["CloseCode", "SessionConfig", "Session", "SendControl", "Subscribe", "Unsubscribe", "Close", "Action"]


class CloseCode:
    """WebSocket close codes the service uses (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002  # raised by the websockets layer on broken framing
    UNSUPPORTED_DATA = 1003  # a binary frame where JSON requests are expected
    INVALID_PAYLOAD = 1007  # a text frame that is not valid JSON / UTF-8
    POLICY_VIOLATION = 1008  # rate limit, expired or revoked token
    MESSAGE_TOO_BIG = 1009  # raised by the websockets layer past max_size
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # slow consumer dropped; resume by sequence


@dataclass(frozen=True)
class SessionConfig:
    """Per-connection limits.

    Parameters
    ----------
    requests_per_s, burst : float
        Token bucket for client requests (:class:`pyplatform.ratelimit.TokenBucket`, the
        one the risk layer uses for orders); exceeding it closes with 1008.
    max_subscriptions : int
        Topics one connection may hold at once.
    max_symbols : int
        Symbols one subscribe request may name.
    """

    requests_per_s: float = 20.0
    burst: float = 40.0
    max_subscriptions: int = 64
    max_symbols: int = 5_000


@dataclass(frozen=True)
class SendControl:
    message: dict[str, Any]


@dataclass(frozen=True)
class Subscribe:
    topic: Topic
    symbols: frozenset[str] | None  # None: every symbol
    from_seq: int | None  # None: snapshot then live
    request_id: Any = None


@dataclass(frozen=True)
class Unsubscribe:
    topic: Topic
    request_id: Any = None


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


Action = Union[SendControl, Subscribe, Unsubscribe, Close]


class Session:
    """Protocol state of one authenticated connection."""

    def __init__(self, claims: Claims, now_ns: int, config: SessionConfig | None = None) -> None:
        self.claims = claims
        self.config = config or SessionConfig()
        self.topics: set[str] = set()
        self.closed = False
        self._bucket = TokenBucket(self.config.requests_per_s, self.config.burst, now_ns)

    # ------------------------------------------------------------------ inputs
    def receive_bytes(self, data: bytes, now_ns: int) -> list[Action]:
        return self._close(CloseCode.UNSUPPORTED_DATA, "requests must be JSON text frames, got a binary frame")

    def receive_text(self, text: str, now_ns: int) -> list[Action]:
        """Handle one client text frame."""
        if self.closed:
            return []
        expired = self.tick(now_ns)
        if expired:
            return expired
        if not self._bucket.try_take(now_ns):
            return self._close(CloseCode.POLICY_VIOLATION,
                               f"rate limit exceeded: more than {self.config.requests_per_s:g} requests/s")
        try:
            req = json.loads(text)
        except json.JSONDecodeError as exc:
            return self._close(CloseCode.INVALID_PAYLOAD, f"invalid JSON at position {exc.pos}: {exc.msg}")
        except RecursionError:  # e.g. 60,000 '[': refused, not a crash
            return self._close(CloseCode.INVALID_PAYLOAD, "invalid JSON: nested too deeply")
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            return self._close(CloseCode.INVALID_PAYLOAD, f"invalid JSON: {exc}"[:120])
        if not isinstance(req, dict):
            return self._close(CloseCode.INVALID_PAYLOAD, f"a request must be a JSON object, got {type(req).__name__}")
        rid = req.get("id")
        if not (rid is None or (isinstance(rid, str) and len(rid) <= 64)
                or (isinstance(rid, int) and not isinstance(rid, bool) and -2**53 <= rid <= 2**53)):
            # the id is echoed in replies: keep it something every client can decode
            return [SendControl({"type": "error", "code": "bad_request", "id": None,
                                 "message": "field 'id': expected a string of at most 64 characters or an integer"})]
        kind = req.get("type")
        try:
            if kind == "subscribe":
                return self._subscribe(req, rid)
            if kind == "unsubscribe":
                return self._unsubscribe(req, rid)
            if kind == "ping":
                return [SendControl({"type": "pong", "id": rid})]
            raise TopicError(f"field 'type': unknown request type {kind!r} (expected subscribe, unsubscribe, ping)")
        except TopicError as exc:
            return [SendControl({"type": "error", "code": "bad_request", "id": rid, "message": str(exc)})]

    def tick(self, now_ns: int) -> list[Action]:
        """Periodic check: a connection whose token expired is closed (the client refreshes and resumes)."""
        if not self.closed and now_ns >= self.claims.expires_ns:
            return self._close(CloseCode.POLICY_VIOLATION, "token expired; reconnect with a fresh token")
        return []

    def revoke(self) -> list[Action]:
        return self._close(CloseCode.POLICY_VIOLATION, "token revoked")

    def close_retired(self, why: str) -> list[Action]:
        """The token's signing key was retired (rotation past its grace, or a new master secret)."""
        return self._close(CloseCode.POLICY_VIOLATION, why)

    # ------------------------------------------------------------------ helpers
    def _close(self, code: int, reason: str) -> list[Action]:
        self.closed = True
        return [Close(code, reason[:120])]  # a close reason must fit in a control frame

    @staticmethod
    def _topics(req: dict[str, Any]) -> list[Topic]:
        raw = req.get("topics", req.get("topic"))
        if raw is None:
            raise TopicError("field 'topics': missing (a list of topic names)")
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise TopicError(f"field 'topics': expected a non-empty list of strings, got {raw!r}"[:200])
        return [parse_topic(t) for t in raw]

    def _subscribe(self, req: dict[str, Any], rid: Any) -> list[Action]:
        topics = self._topics(req)
        raw_syms = req.get("symbols", "*")
        if raw_syms == "*" or raw_syms == ["*"]:
            symbols: frozenset[str] | None = None
        else:
            if not isinstance(raw_syms, list) or not raw_syms:
                raise TopicError("field 'symbols': expected a non-empty list of symbols or '*'")
            if len(raw_syms) > self.config.max_symbols:
                raise TopicError(f"field 'symbols': {len(raw_syms)} symbols, at most {self.config.max_symbols} per request")
            checked = [validate_symbol(s) for s in raw_syms]
            symbols = None if "*" in checked else frozenset(checked)
        from_seq = req.get("from_seq")
        seqs: dict[str, int | None] = {}
        for t in topics:
            v = from_seq.get(t.name) if isinstance(from_seq, dict) else from_seq
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63):
                raise TopicError(f"field 'from_seq' for {t.name}: expected a non-negative integer, got {v!r}")
            seqs[t.name] = v
        # entitlements are checked for the whole request before anything is subscribed
        denied = [t.name for t in topics if not self.claims.allows_topic(t)]
        if denied:
            return [SendControl({"type": "error", "code": "forbidden", "id": rid, "topics": denied,
                                 "message": f"token does not entitle topics {denied}"})]
        bad_syms = self.claims.forbidden_symbols(symbols)
        if bad_syms:
            return [SendControl({"type": "error", "code": "forbidden", "id": rid, "symbols": bad_syms[:50],
                                 "message": f"token does not entitle symbols {bad_syms[:10]}"})]
        new = {t.name for t in topics} - self.topics
        if len(self.topics) + len(new) > self.config.max_subscriptions:
            raise TopicError(f"too many subscriptions: at most {self.config.max_subscriptions} topics per connection")
        self.topics |= new
        return [Subscribe(t, symbols, seqs[t.name], rid) for t in topics]

    def _unsubscribe(self, req: dict[str, Any], rid: Any) -> list[Action]:
        topics = self._topics(req)
        out: list[Action] = []
        for t in topics:
            self.topics.discard(t.name)
            out.append(Unsubscribe(t, rid))
        return out
