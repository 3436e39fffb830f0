"""Tokens for the signal service: short-lived JWTs signed by rotating keys.

Keys are derived from one master secret (file or environment, never code) per rotation
period: ``kid = "k<period index>"`` and ``key = HMAC-SHA256(master, kid)``. Every service
process derives the same keys without coordination, a key rotates every
``rotation_s`` (daily by default), and the previous key stays accepted for ``grace_s``
after a rotation so tokens issued just before it keep working until they expire.
A leaked signing key is good for one period only. The master secret is re-read while
the service runs (:class:`SecretKeys` polls the file): tokens signed under the replaced
secret stay accepted for ``secret_grace_s`` after the change was noticed, then are refused
and connections using them are closed (``grace 0`` invalidates them at once).
Every token carries ``iss`` and ``aud`` and both are verified.

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
from collections.abc import Callable
from typing import Any

import jwt

from pyplatform.fsio import atomic_write
from pyplatform.signals.topics import Topic

__all__ = ["AuthError", "Claims", "KeyRing", "RevocationList", "SecretKeys", "TokenIssuer", "TokenVerifier",
           "load_master_secret", "ISSUER", "AUDIENCE"]

log = logging.getLogger(__name__)
_ALG = "HS256"
_NS = 1_000_000_000
MIN_SECRET_BYTES = 32
ISSUER = "pyplatform"  # ``iss`` of every token this platform issues
AUDIENCE = "pyplatform-signals"  # ``aud``: a token for another service of ours is refused here


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

    @property
    def fingerprint(self) -> str:
        """Short, non-secret id of the master secret (which secret signed a connection's token)."""
        return hashlib.sha256(b"pyplatform-fp/" + self.master).hexdigest()[:12]

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
    kid: str = ""  # key period the token was signed with
    key_fp: str = ""  # fingerprint of the master secret that signed it


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
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "jti": uuid.uuid4().hex, "iat": now_s, "nbf": now_s, "exp": now_s + int(ttl_s),
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

    def entries(self) -> dict[str, int]:
        """This host's revocations ``{jti: exp_seconds}`` (re-written to Redis after it restarts)."""
        self._load()
        return dict(self._revoked)

    def revoke(self, token_id: str, expires_s: int, now_ns: int) -> None:
        """Add ``token_id``; prune entries already expired at ``now_ns``."""
        self._load()
        now_s = now_ns // _NS
        kept = {k: v for k, v in self._revoked.items() if v >= now_s}
        kept[token_id] = int(expires_s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # atomic and durable: readers never see a half-written list, and a revocation that
        # returned survives a crash of this host
        atomic_write(self.path, json.dumps(kept, indent=1, sort_keys=True))
        self._mtime = None
        self._load()


class SecretKeys:
    """Key rings of the master secret, re-read when its file changes.

    Parameters
    ----------
    load : callable
        ``() -> bytes``, the current master secret (:func:`load_master_secret`).
    path : path, optional
        The secret file; its (mtime, size, inode) is polled at most every ``poll_s`` of
        ``now_ns``. ``None`` (secret from the environment) never reloads.
    rotation_s, grace_s : int
        Per-period key rotation, as :class:`KeyRing`.
    secret_grace_s : int
        How long after a changed secret was noticed tokens signed by the previous one are
        still accepted (0: refused at once, e.g. after a leak).

    A secret file that becomes unreadable or invalid keeps the last good secret (logged):
    a half-written file must not lock everybody out.
    """

    def __init__(self, load: Callable[[], bytes], path: Path | None = None, *, rotation_s: int = 86_400,
                 grace_s: int = 3_600, secret_grace_s: int = 300, poll_s: float = 1.0) -> None:
        if secret_grace_s < 0:
            raise ValueError(f"secret_grace_s must be >= 0, got {secret_grace_s}")
        self._load, self.path = load, None if path is None else Path(path)
        self.rotation_s, self.grace_s, self.secret_grace_s = rotation_s, grace_s, secret_grace_s
        self._poll_ns = int(poll_s * _NS)
        self.current = KeyRing(load(), rotation_s, grace_s)
        self._retired: list[tuple[KeyRing, int]] = []  # (ring, accepted until ns)
        self._stamp = self._file_stamp()
        self._checked_ns: int | None = None
        self.reloads = 0

    @classmethod
    def static(cls, ring: KeyRing) -> "SecretKeys":
        """A fixed ring (tests, benchmarks, a secret from the environment)."""
        return cls(lambda: ring.master, None, rotation_s=ring.rotation_s, grace_s=ring.grace_s)

    def _file_stamp(self) -> tuple | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self, now_ns: int, *, force: bool = False) -> bool:
        """Re-read the secret if its file changed; returns whether the secret changed."""
        if self.path is None:
            return False
        if not force and self._checked_ns is not None and now_ns - self._checked_ns < self._poll_ns:
            return False
        self._checked_ns = now_ns
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            master = self._load()
        except (AuthError, OSError) as exc:
            log.error("jwt secret %s changed but cannot be used (%s); keeping the previous secret", self.path, exc)
            return False
        self._stamp = stamp
        if master == self.current.master:
            return False
        self._retired.append((self.current, now_ns + self.secret_grace_s * _NS))
        self.current = KeyRing(master, self.rotation_s, self.grace_s)
        self.reloads += 1
        log.warning("jwt master secret changed: tokens signed by the previous one are accepted for %d s more",
                    self.secret_grace_s)
        return True

    def rings(self, now_ns: int) -> list[KeyRing]:
        """The current ring first, then replaced ones still inside their grace."""
        self.refresh(now_ns)
        self._retired = [(r, until) for r, until in self._retired if until > now_ns]
        return [self.current] + [r for r, _ in self._retired]


class TokenVerifier:
    """Checks signature, key id, issuer, audience, expiry, revocation and the entitlement claims.

    ``keys`` is a fixed :class:`KeyRing` or a :class:`SecretKeys` that follows the secret file.
    """

    def __init__(self, keys: KeyRing | SecretKeys, revocations: RevocationList | None = None, leeway_s: int = 5,
                 *, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.secrets = keys if isinstance(keys, SecretKeys) else SecretKeys.static(keys)
        self.revocations = revocations
        self.leeway_s = leeway_s
        self.issuer, self.audience = issuer, audience

    @property
    def keys(self) -> KeyRing:
        """The current key ring (backward compatible attribute)."""
        return self.secrets.current

    def verify(self, token: str, now_ns: int) -> Claims:
        """Verified claims of ``token`` at time ``now_ns``; raises :class:`AuthError` saying why not.

        Never raises anything else: every hostile token (bad base64, wrong claim types,
        huge numbers) is a refusal with a reason.
        """
        if not isinstance(token, str) or len(token) > 8192:
            raise AuthError("malformed token: not a string of at most 8192 characters")
        try:
            return self._verify(token, now_ns)
        except AuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - anything unexpected in a hostile token is a refusal
            raise AuthError(f"malformed token ({type(exc).__name__})") from None

    def _verify(self, token: str, now_ns: int) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        kid = header.get("kid")
        if header.get("alg") != _ALG:
            raise AuthError(f"token algorithm {str(header.get('alg'))[:20]!r} not accepted (expected {_ALG})")
        rings = self.secrets.rings(now_ns)
        accepted = rings[0].accepted_kids(now_ns)
        if not isinstance(kid, str) or kid not in accepted:
            raise AuthError(f"token key id {str(kid)[:20]!r} is not current (accepted: {', '.join(accepted)}); "
                            "get a new token")
        payload: dict[str, Any] | None = None
        used = rings[0]
        for ring in rings:  # the current secret first, then replaced ones still in their grace
            try:
                # PyJWT would read the wall clock for exp/nbf: we check them against now_ns below
                payload = jwt.decode(
                    token, ring.key(kid), algorithms=[_ALG], issuer=self.issuer, audience=self.audience,
                    options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                             "require": ["exp", "sub", "jti", "iss", "aud", "topics", "symbols"]},
                )
                used = ring
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as exc:
                raise AuthError(f"invalid token: {exc}") from None
        if payload is None:
            raise AuthError("token signature is invalid")
        for name in ("exp", "nbf"):
            v = payload.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**40:
                raise AuthError(f"token claim {name!r} must be an integer number of seconds")
        for name in ("sub", "jti"):
            if not isinstance(payload[name], str) or not payload[name] or len(payload[name]) > 256:
                raise AuthError(f"token claim {name!r} must be a non-empty string of at most 256 characters")
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
                      topics=tuple(topics), symbols=tuple(symbols), kid=kid, key_fp=used.fingerprint)

    def retired(self, claims: Claims, now_ns: int) -> str | None:
        """Why an open connection's key is no longer accepted (``None`` while it still is).

        Claims without a key id (built by hand, not by :meth:`verify`) are never retired.
        """
        if not claims.kid:
            return None
        rings = self.secrets.rings(now_ns)
        if claims.kid not in rings[0].accepted_kids(now_ns):
            return f"signing key {claims.kid} retired; reconnect with a fresh token"
        if claims.key_fp and claims.key_fp not in {r.fingerprint for r in rings}:
            return "signing secret rotated; reconnect with a fresh token"
        return None


def decode_unverified(token: str) -> dict[str, Any]:
    """Claims of a token without checking it (for ``tokens revoke`` given a whole token)."""
    return jwt.decode(token, options={"verify_signature": False})
