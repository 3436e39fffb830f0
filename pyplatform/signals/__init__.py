"""Live signal service: authenticated WebSocket subscriptions with replay, snapshots and a Redis hot cache.

See ``docs/signals.md``. Pure parts: :mod:`protocol` (session rules), :mod:`fanout`
(encode once, bounded queues), :mod:`auth` (tokens), :mod:`wire`/:mod:`rowcodec`
(encodings). Adapters: :mod:`server` (websockets), :mod:`redis_cache` (Redis).
"""

from pyplatform._lazy import lazy_exports

_EXPORTS = {
    "AuditSink": "auditing",
    "AuthError": "auth",
    "Claims": "auth",
    "KeyRing": "auth",
    "RevocationList": "auth",
    "TokenIssuer": "auth",
    "TokenVerifier": "auth",
    "CloseCode": "protocol",
    "SessionConfig": "protocol",
    "ServiceConfig": "server",
    "SignalService": "server",
    "build_issuer": "service",
    "build_verifier": "service",
    "serve": "service",
    "subscribe_example": "service",
    "JSON_SUBPROTOCOL": "wire",
    "MSGPACK_SUBPROTOCOL": "wire",
    "decode_frame": "wire",
    "decode_messages": "wire",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "AuditSink", "AuthError", "Claims", "KeyRing", "RevocationList", "TokenIssuer", "TokenVerifier", "CloseCode",
    "SessionConfig", "ServiceConfig", "SignalService", "build_issuer", "build_verifier", "serve",
    "subscribe_example", "JSON_SUBPROTOCOL", "MSGPACK_SUBPROTOCOL", "decode_frame", "decode_messages",
]
