"""Live signal service: authenticated WebSocket subscriptions with replay, snapshots and a Redis hot cache.

See ``docs/signals.md``. Pure parts: :mod:`protocol` (session rules), :mod:`fanout`
(encode once, bounded queues), :mod:`auth` (tokens), :mod:`wire`/:mod:`rowcodec`
(encodings). Adapters: :mod:`server` (websockets), :mod:`redis_cache` (Redis).
"""

from pyplatform.signals.auth import AuthError, Claims, KeyRing, RevocationList, TokenIssuer, TokenVerifier
from pyplatform.signals.protocol import CloseCode, SessionConfig
from pyplatform.signals.server import ServiceConfig, SignalService
from pyplatform.signals.service import build_issuer, build_verifier, serve, subscribe_example
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, decode_frame, decode_messages

__all__ = [
    "AuthError", "Claims", "KeyRing", "RevocationList", "TokenIssuer", "TokenVerifier", "CloseCode",
    "SessionConfig", "ServiceConfig", "SignalService", "build_issuer", "build_verifier", "serve",
    "subscribe_example", "JSON_SUBPROTOCOL", "MSGPACK_SUBPROTOCOL", "decode_frame", "decode_messages",
]
