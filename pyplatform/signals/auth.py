"""Tokens for the signal service: short-lived JWTs signed by rotating keys.

Keys are derived from one master secret (file or environment, never code) per rotation
period: ``kid = "k<period index>"`` and ``key = HMAC-SHA256(master, kid)``. Every service
process derives the same keys without coordination, a key rotates every
``rotation_s`` (daily by default), and the previous key stays accepted for ``grace_s``
after a rotation so tokens issued just before it keep working until they expire.
A leaked signing key is good for one period only; rotating the master secret itself
invalidates every outstanding token.

Time is an input (``now_ns``) so expiry and rotation are testable without sleeping.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from pyplatform.signals.topics import Topic

__all__ = ["AuthError", "Claims", "KeyRing", "RevocationList", "TokenIssuer", "TokenVerifier", "load_master_secret"]

log = logging.getLogger(__name__)
_ALG = "HS256"
_NS = 1_000_000_000
MIN_SECRET_BYTES = 32


class AuthError(Exception):
    """A token was refused; ``str(err)`` says why (expired, bad signature, revoked...)."""


def load_master_secret(secret_file: Path | None = None, env: dict[str, str] | None = None) -> bytes:
    """The JWT master secret from ``PYPLATFORM_JWT_SECRET`` or ``secret_file``.

    Raises
    ------
    AuthError
        When neither is set, or the secret is shorter than 32 bytes.
    """
    env = os.environ if env is None else env
    raw: bytes | None = None
    if env.get("PYPLATFORM_JWT_SECRET"):
        raw = env["PYPLATFORM_JWT_SECRET"].encode()
    elif secret_file is not None:
        path = Path(secret_file)
        if not path.exists():
            raise AuthError(f"jwt_secret_file {str(path)!r} does not exist (create it with `pyplatform tokens init-secret`)")
        if path.stat().st_mode & 0o077:
            log.warning("jwt secret file %s is readable by group/others; chmod 600 it", path)
        raw = path.read_bytes().strip()
    if raw is None:
        raise AuthError("no JWT signing secret: set PYPLATFORM_JWT_SECRET_FILE (or PYPLATFORM_JWT_SECRET)")
    if len(raw) < MIN_SECRET_BYTES:
        raise AuthError(f"JWT secret is {len(raw)} bytes; at least {MIN_SECRET_BYTES} are required")
    return raw


@dataclass(frozen=True)
class KeyRing:
    """Signing keys derived per rotation period from a master secret.

    Parameters
    ----------
    master : bytes
        The master secret.
    rotation_s : int
        Length of a key period (default one day).
    grace_s : int
        How long after a rotation the previous period's key is still accepted.
    """

    master: bytes = field(repr=False)
    rotation_s: int = 86_400
    grace_s: int = 3_600

    def __post_init__(self) -> None:
        if self.rotation_s <= 0 or self.grace_s < 0 or self.grace_s > self.rotation_s:
            raise ValueError(f"need rotation_s > 0 and 0 <= grace_s <= rotation_s, got {self.rotation_s}, {self.grace_s}")

    def period(self, now_ns: int) -> int:
        return (now_ns // _NS) // self.rotation_s

    def current_kid(self, now_ns: int) -> str:
        return f"k{self.period(now_ns)}"

    def key(self, kid: str) -> bytes:
        return hmac.new(self.master, b"pyplatform-signals-jwt/" + kid.encode(), hashlib.sha256).digest()

    def accepted_kids(self, now_ns: int) -> tuple[str, ...]:
        p = self.period(now_ns)
        since_rotation = now_ns // _NS - p * self.rotation_s
        if since_rotation < self.grace_s:
            return (f"k{p}", f"k{p - 1}")
        return (f"k{p}",)


@dataclass(frozen=True)
class Claims:
    """The verified content of a token: who, until when, and what it may receive."""

    subject: str
    token_id: str
    expires_ns: int
    topics: tuple[str, ...]
    symbols: tuple[str, ...]

    def allows_topic(self, topic: Topic) -> bool:
        """Topic patterns use shell wildcards: ``factors:*`` allows every factor, one by one or all at once."""
        names = [topic.name] if topic.arg is not None else [topic.name, f"{topic.kind}:*"]
        return any(fnmatch.fnmatchcase(n, pat) for pat in self.topics for n in names)

    def forbidden_symbols(self, symbols: frozenset[str] | None) -> list[str]:
        """Symbols of a request outside the entitlement (``None`` = all symbols)."""
        if "*" in self.symbols:
            return []
        if symbols is None:
            return ["*"]
        allowed = set(self.symbols)
        return sorted(s for s in symbols if s not in allowed)


class TokenIssuer:
    """Issues tokens signed with the current period's key."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def issue(self, subject: str, *, topics: list[str], symbols: list[str], now_ns: int, ttl_s: int = 900) -> str:
        """A signed token valid for ``ttl_s`` seconds from ``now_ns``.

        Parameters
        ----------
        subject : str
            Who the token is for (appears in logs and the subscription registry).
        topics, symbols : list of str
            Entitlements; topic patterns may use ``*`` (``factors:*``), ``"*"`` symbol = all.
        """
        if not subject:
            raise ValueError("subject must not be empty")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        if not topics or not symbols:
            raise ValueError("a token needs at least one topic and one symbol entitlement")
        now_s = now_ns // _NS
        kid = self.keys.current_kid(now_ns)
        payload = {"sub": subject, "jti": uuid.uuid4().hex, "iat": now_s, "nbf": now_s, "exp": now_s + int(ttl_s),
                   "topics": list(topics), "symbols": list(symbols)}
        return jwt.encode(payload, self.keys.key(kid), algorithm=_ALG, headers={"kid": kid})


class RevocationList:
    """Revoked token ids in a JSON file ``{jti: exp_seconds}`` shared by service processes.

    The file is re-read when its modification time changes; entries are dropped once the
    token would have expired anyway. Processes on other hosts share revocations through
    Redis (``pp:revoked``), merged in with :meth:`set_remote`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mtime: float | None = None
        self._revoked: dict[str, int] = {}
        self._remote: frozenset[str] = frozenset()  # ids shared through Redis by other hosts

    def set_remote(self, token_ids: frozenset[str]) -> None:
        """Replace the ids learnt from the shared store (see ``RedisHotCache.revoked``)."""
        self._remote = frozenset(token_ids)

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._revoked, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        try:
            data = json.loads(self.path.read_text() or "{}")
        except json.JSONDecodeError as exc:
            # keep the last good list rather than silently accepting revoked tokens
            log.error("revocation list %s is not valid JSON (%s); keeping previous list", self.path, exc)
            return
        self._revoked = {str(k): int(v) for k, v in data.items()}
        self._mtime = mtime

    def is_revoked(self, token_id: str) -> bool:
        self._load()
        return token_id in self._revoked or token_id in self._remote

    def current(self) -> frozenset[str]:
        """Every revoked id (one reload check for a sweep over many connections)."""
        self._load()
        return frozenset(self._revoked) | self._remote

    def revoke(self, token_id: str, expires_s: int, now_ns: int) -> None:
        """Add ``token_id``; prune entries already expired at ``now_ns``."""
        self._load()
        now_s = now_ns // _NS
        kept = {k: v for k, v in self._revoked.items() if v >= now_s}
        kept[token_id] = int(expires_s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept, indent=1, sort_keys=True))
        os.replace(tmp, self.path)  # atomic: readers never see a half-written list
        self._mtime = None
        self._load()


class TokenVerifier:
    """Checks signature, key id, expiry, revocation and the entitlement claims."""

    def __init__(self, keys: KeyRing, revocations: RevocationList | None = None, leeway_s: int = 5) -> None:
        self.keys = keys
        self.revocations = revocations
        self.leeway_s = leeway_s

    def verify(self, token: str, now_ns: int) -> Claims:
        """Verified claims of ``token`` at time ``now_ns``; raises :class:`AuthError` saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        kid = header.get("kid")
        if header.get("alg") != _ALG:
            raise AuthError(f"token algorithm {header.get('alg')!r} not accepted (expected {_ALG})")
        accepted = self.keys.accepted_kids(now_ns)
        if not isinstance(kid, str) or kid not in accepted:
            raise AuthError(f"token key id {kid!r} is not current (accepted: {', '.join(accepted)}); get a new token")
        try:
            # PyJWT would read the wall clock for exp/nbf: we check them against now_ns below
            payload: dict[str, Any] = jwt.decode(
                token, self.keys.key(kid), algorithms=[_ALG],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["exp", "sub", "jti", "topics", "symbols"]},
            )
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is invalid") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        now_s = now_ns // _NS
        if int(payload["exp"]) + self.leeway_s <= now_s:
            raise AuthError(f"token expired at {payload['exp']} (now {now_s})")
        if int(payload.get("nbf", 0)) - self.leeway_s > now_s:
            raise AuthError(f"token not valid before {payload['nbf']}")
        if self.revocations is not None and self.revocations.is_revoked(str(payload["jti"])):
            raise AuthError(f"token {payload['jti']} has been revoked")
        topics, symbols = payload["topics"], payload["symbols"]
        if not (isinstance(topics, list) and all(isinstance(t, str) for t in topics)):
            raise AuthError("token claim 'topics' must be a list of strings")
        if not (isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)):
            raise AuthError("token claim 'symbols' must be a list of strings")
        return Claims(subject=str(payload["sub"]), token_id=str(payload["jti"]), expires_ns=int(payload["exp"]) * _NS,
                      topics=tuple(topics), symbols=tuple(symbols))


def decode_unverified(token: str) -> dict[str, Any]:
    """Claims of a token without checking it (for ``tokens revoke`` given a whole token)."""
    return jwt.decode(token, options={"verify_signature": False})
