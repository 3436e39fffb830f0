"""Wiring the signal service from :class:`~pyplatform.config.Settings`: keys, TLS, Redis.

``await serve(settings, tables, stop_event, clock=LiveClock())`` is what the demo and
``pyplatform serve`` run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl as ssl_mod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyplatform.clock import Clock
from pyplatform.config import Settings
from pyplatform.signals.auditing import audit_sink_from_settings
from pyplatform.signals.auth import KeyRing, RevocationList, SecretKeys, TokenIssuer, TokenVerifier, load_master_secret
from pyplatform.signals.server import ServiceConfig, SignalService

log = logging.getLogger(__name__)

__all__ = ["redis_password", "redis_password_path", "keyring_from_settings", "revocation_path", "build_verifier", "build_issuer", "secret_keys_from_settings", "tls_context", "serve",
           "subscribe_example"]


def keyring_from_settings(settings: Settings, *, rotation_s: int = 86_400, grace_s: int = 3_600) -> KeyRing:
    """Key ring from ``PYPLATFORM_JWT_SECRET`` or ``settings.jwt_secret_file``."""
    return KeyRing(load_master_secret(settings.jwt_secret_file), rotation_s=rotation_s, grace_s=grace_s)


def redis_password_path(settings: Settings) -> Path:
    """Where the Redis password is kept: ``DATA_DIR/secrets/redis.password`` (mode 600)."""
    return settings.path("secrets", "redis.password")


def redis_password(settings: Settings) -> str | None:
    """The Redis ``AUTH`` password from :func:`redis_password_path`, or ``None`` when there is no file.

    A secret file rather than the URL keeps the password out of the environment, of process
    listings and of ``pyplatform config`` (which would mask it anyway). Redis started with
    ``requirepass`` (or an ACL user's password) refuses clients without it, so nobody who can
    merely reach the port can inject snapshot rows or delete revocations.

    Raises
    ------
    ValueError
        The file exists but is empty.
    """
    path = redis_password_path(settings)
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not raw:
        raise ValueError(f"redis password file {str(path)!r} is empty")
    if path.stat().st_mode & 0o077:
        log.warning("redis password file %s is readable by group/others; chmod 600 it", path)
    return raw


def revocation_path(settings: Settings) -> Path:
    return settings.path("signals", "revoked.json")


def secret_keys_from_settings(settings: Settings, *, rotation_s: int = 86_400, grace_s: int = 3_600,
                              secret_grace_s: int = 300) -> SecretKeys:
    """Keys that follow ``jwt_secret_file`` while running (a secret from the environment is fixed)."""
    path = None if os.environ.get("PYPLATFORM_JWT_SECRET") else settings.jwt_secret_file
    return SecretKeys(lambda: load_master_secret(settings.jwt_secret_file), path, rotation_s=rotation_s,
                      grace_s=grace_s, secret_grace_s=secret_grace_s)


def build_verifier(settings: Settings, **key_kw: Any) -> TokenVerifier:
    """A verifier that re-reads the secret file when it changes (``secret_grace_s`` for the old one)."""
    return TokenVerifier(secret_keys_from_settings(settings, **key_kw), RevocationList(revocation_path(settings)))


def build_issuer(settings: Settings, **key_kw: Any) -> TokenIssuer:
    return TokenIssuer(keyring_from_settings(settings, **key_kw))


def tls_context(settings: Settings) -> ssl_mod.SSLContext | None:
    """A server TLS context when ``tls_cert`` (and ``tls_key``) are configured, else ``None``."""
    if settings.tls_cert is None:
        return None
    ctx = ssl_mod.create_default_context(ssl_mod.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls_cert), None if settings.tls_key is None else str(settings.tls_key))
    return ctx


def subscribe_example(url: str, topic: str = "factors:*", symbols: str = "AAPL.US") -> str:
    """A one-line shell command that subscribes and prints rows."""
    return (f"python -c \"from pyplatform.client import subscribe_forever; import os; subscribe_forever('{url}', "
            f"os.environ['PP_TOKEN'], ['{topic}'], ['{symbols}'], print)\"  "
            f"# PP_TOKEN from: pyplatform tokens issue --subject me")


async def serve(settings: Settings, tables: Mapping[str, Any], stop_event: asyncio.Event, *,
                clock: Clock, config: ServiceConfig | None = None, use_redis: bool = True,
                ready: Callable[[SignalService], None] | None = None, rotation_s: int = 86_400,
                grace_s: int = 3_600, secret_grace_s: int = 300, audit: bool = True) -> None:
    """Run the signal service until ``stop_event`` is set.

    Parameters
    ----------
    settings : Settings
        Host/port, ``jwt_secret_file``, ``redis_url``, ``tls_cert``/``tls_key``.
    tables : mapping
        Stream tables by name (``quotes``, ``bars``, ``factors``, ``signals``).
    stop_event : asyncio.Event
        Set it to stop the service.
    clock : Clock
        Time for token expiry and rate limits (required: ``LiveClock()`` is chosen by the
        callers at the edge, ``pyplatform serve`` and the demo).
    ready : callable, optional
        Called with the started :class:`SignalService` (its ``url``, ``health()``).
    audit : bool
        Record refused logins and entitlement refusals in ``settings.audit_path``
        (actor ``service:<host>:<port>``; ``docs/audit.md``).
    """
    cfg = config or ServiceConfig(host=settings.signal_host, port=settings.signal_port)
    sink = audit_sink_from_settings(settings, f"service:{cfg.host}:{cfg.port}") if audit else None
    service = SignalService(tables, build_verifier(settings, rotation_s=rotation_s, grace_s=grace_s,
                                                   secret_grace_s=secret_grace_s), cfg,
                            clock=clock, redis_url=settings.redis_url if use_redis else None,
                            redis_password=redis_password(settings) if use_redis else None,
                            ssl=tls_context(settings), audit=sink)
    try:
        await service.start()
        if ready is not None:
            ready(service)
        await stop_event.wait()
    finally:
        await service.stop()
        if sink is not None:
            await asyncio.to_thread(sink.close)
