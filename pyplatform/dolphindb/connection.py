"""Where the DolphinDB server is and how to log in: from configuration, never from code.

The server comes from ``PYPLATFORM_DOLPHINDB_URI`` (or ``PYPLATFORM_BACKEND``) as
``dolphindb://host:port``; the user from ``PYPLATFORM_DOLPHINDB_USER`` (default admin)
and the password from ``PYPLATFORM_DOLPHINDB_PASSWORD`` or a file named by
``PYPLATFORM_DOLPHINDB_PASSWORD_FILE``. Credentials written into the URI
(``dolphindb://user:pass@host:port``) are accepted too, since the URI itself comes from
the environment, and are never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from pyplatform.config import Settings, get_settings

__all__ = ["DolphinDBTarget", "target_from_settings", "parse_uri", "connect", "reachable"]

DEFAULT_PORT = 8848


@dataclass(frozen=True)
class DolphinDBTarget:
    """A DolphinDB node to connect to.

    Parameters
    ----------
    host, port : str, int
        Data node (or controller-routed data node) address.
    user : str
        Login user.
    password : SecretStr
        Login password (never shown by ``repr``).
    """

    host: str
    port: int
    user: str = "admin"
    password: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)

    def __str__(self) -> str:
        return f"dolphindb://{self.user}@{self.host}:{self.port}"


def parse_uri(uri: str) -> tuple[str, int, str | None, str | None]:
    """Split ``dolphindb://[user[:password]@]host[:port]`` into its parts.

    Raises
    ------
    ValueError
        Naming the URI (password masked) and what is wrong with it.
    """
    parts = urlsplit(uri)
    shown = uri if parts.password is None else uri.replace(parts.password, "***")
    if parts.scheme != "dolphindb":
        raise ValueError(f"DolphinDB URI must start with dolphindb://, got {shown!r}")
    if not parts.hostname:
        raise ValueError(f"DolphinDB URI has no host: {shown!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"DolphinDB URI must be dolphindb://host:port, got {shown!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"DolphinDB URI has a bad port: {shown!r}") from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, user, password


def target_from_settings(settings: Settings | None = None) -> DolphinDBTarget:
    """The configured DolphinDB node.

    Raises
    ------
    ValueError
        When no ``dolphindb://`` URI is configured.
    """
    settings = settings or get_settings()
    uri = settings.effective_backend
    if not uri.startswith("dolphindb://"):
        raise ValueError("no DolphinDB server configured: set PYPLATFORM_DOLPHINDB_URI=dolphindb://host:port "
                         "(credentials in PYPLATFORM_DOLPHINDB_USER / PYPLATFORM_DOLPHINDB_PASSWORD)")
    host, port, uri_user, uri_password = parse_uri(uri)
    password = uri_password
    if password is None and settings.dolphindb_password is not None:
        password = settings.dolphindb_password.get_secret_value()
    pw_file = os.environ.get("PYPLATFORM_DOLPHINDB_PASSWORD_FILE")
    if password is None and pw_file:
        try:
            password = Path(pw_file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"PYPLATFORM_DOLPHINDB_PASSWORD_FILE={pw_file!r} cannot be read: {exc}") from None
    return DolphinDBTarget(host, port, uri_user or settings.dolphindb_user, SecretStr(password or ""))


def reachable(target: DolphinDBTarget, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing answers at ``target`` (a TCP connect with a deadline).

    The client's own connect, with ``reconnect=True``, keeps retrying an unreachable node;
    this check runs first so a wrong URI or a stopped server is an error in seconds.

    Raises
    ------
    ConnectionError
        Naming the server and the setting to check.
    """
    import socket

    try:
        socket.create_connection((target.host, target.port), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"cannot reach {target} within {timeout_s:g} s ({exc}); is the server running and "
                              "is PYPLATFORM_DOLPHINDB_URI=dolphindb://host:port right?") from None


def connect(target: DolphinDBTarget, *, keep_alive_s: int = 30, reconnect: bool = True, timeout_s: float = 5.0):
    """An open ``dolphindb.Session`` logged in to ``target``.

    Raises
    ------
    ConnectionError
        Naming the server (never the password) when it cannot be reached within
        ``timeout_s`` or the login fails.
    """
    import dolphindb as ddb  # optional extra: imported only when a server is configured

    reachable(target, timeout_s)
    session = ddb.Session()
    try:
        ok = session.connect(target.host, target.port, target.user, target.password.get_secret_value(),
                             keepAliveTime=keep_alive_s, reconnect=reconnect)
    except Exception as exc:  # the API raises RuntimeError with the server's message
        raise ConnectionError(f"cannot connect to {target}: {exc}") from None
    if not ok:
        raise ConnectionError(f"cannot connect to {target}: the server refused the connection")
    return session
