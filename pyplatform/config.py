"""Platform configuration.

Settings come from, in increasing priority: defaults, an optional TOML/ENV file named by
``PYPLATFORM_CONFIG_FILE`` (or ``./pyplatform.env``), and ``PYPLATFORM_*`` environment
variables. Secrets are ``SecretStr`` so they never print by accident, and every printed or
logged form of the settings goes through one masking function (:func:`mask_value`), which
also covers credentials that hide inside plain strings: the password in a URI's user-info
(``dolphindb://admin:pw@host``), secret query parameters (``redis://host/0?password=pw``)
and fields derived from them (``effective_backend``).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "masked", "mask_value", "redact", "secret_values", "MASK",
           "ITICK_WS_PATHS", "reset_settings_cache", "configured_port"]

#: What a credential is replaced with in every printed form.
MASK = "***"

#: iTick's documented WebSocket endpoint per asset class (docs.itick.org). The older
#: ``/sws``, ``/fws``, ``/iws``, ``/cws`` names (itick-org/free-stock-api ``start/address.md``)
#: are recognised too; see :func:`pyplatform.feeds.runner.endpoints_for`.
ITICK_WS_PATHS: dict[str, str] = {"stock": "/stock", "forex": "/forex", "indices": "/indices", "crypto": "/crypto"}

# A query parameter whose name contains one of these carries a credential.
_SECRET_KEY = re.compile(r"pass|pwd|token|secret|key|auth|credential|signature|sig$|session", re.I)
# scheme://userinfo@ inside any text (error messages, log lines): the user-info is masked.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]*)@")
# name=value pairs in a query string or free text whose name says "credential".
_QUERY_SECRET = re.compile(r"(?P<name>[?&;\s]?[A-Za-z0-9_.\-]*(?:pass|pwd|token|secret|key|auth|credential)"
                           r"[A-Za-z0-9_.\-]*)=(?P<value>[^&#\s'\"]+)", re.I)


def _env_file() -> str | None:
    explicit = os.environ.get("PYPLATFORM_CONFIG_FILE")
    if explicit:
        return explicit
    return "pyplatform.env" if Path("pyplatform.env").exists() else None


class Settings(BaseSettings):
    """Effective configuration of one platform process.

    Parameters
    ----------
    data_dir : Path
        Root of the history store, stream-table logs, registries and run results.
    backend : str
        ``"embedded"`` or a DolphinDB URI such as ``dolphindb://host:8848``.
    itick_ws_paths : dict
        WebSocket path per asset class (``stock``, ``forex``, ``indices``, ``crypto``);
        iTick's documented names by default (:data:`ITICK_WS_PATHS`). Set as JSON, e.g.
        ``PYPLATFORM_ITICK_WS_PATHS='{"stock": "/sws", "forex": "/fws"}'``.
    jwt_secret, dolphindb_password, itick_token : SecretStr
        Credentials; shown as ``***`` by every printed form of the settings.
    audit_log : Path, optional
        The audit log file (default ``data_dir/audit/audit.log``).

    Notes
    -----
    ``repr(settings)`` and ``str(settings)`` are masked like :func:`masked`.
    """

    model_config = SettingsConfigDict(
        env_prefix="PYPLATFORM_", env_file=_env_file(), extra="ignore", frozen=True,
        # a refused value may be a URI with its password: validation errors must not echo it
        hide_input_in_errors=True,
    )

    data_dir: Path = Path("./data")
    backend: str = "embedded"
    dolphindb_uri: str | None = None
    dolphindb_user: str = "admin"
    dolphindb_password: SecretStr | None = None
    dolphindb_password_file: Path | None = None

    redis_url: str = "redis://127.0.0.1:6379/0"
    signal_host: str = "127.0.0.1"
    signal_port: int = 8765
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8766
    dash_host: str = "127.0.0.1"
    dash_port: int = 8050
    fix_port: int = 9878
    #: Outside FIX venue for ``trade run --broker fix`` (a quickfix session file or HOST:PORT);
    #: unset means the internal exchange simulator.
    fix_venue: str | None = None

    itick_ws_url: str = "wss://api.itick.org/stock"
    itick_rest_url: str = "https://api.itick.org"
    itick_token: SecretStr | None = None
    itick_ws_paths: dict[str, str] = dict(ITICK_WS_PATHS)

    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    audit_log: Path | None = None

    fsync: Literal["always", "batch", "never"] = "batch"
    log_level: str = "INFO"
    inference_device: Literal["cpu", "gpu", "auto"] = "cpu"

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, v: str) -> str:
        if v != "embedded" and not v.startswith("dolphindb://"):
            # the refused value may itself carry a password: the error shows it masked
            raise ValueError(f"backend must be 'embedded' or a dolphindb:// URI, got {mask_value(v)!r}")
        return v

    @field_validator("itick_ws_paths")
    @classmethod
    def _check_paths(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(ITICK_WS_PATHS))
        if unknown:
            raise ValueError(f"itick_ws_paths: unknown asset class {unknown}; expected keys of {sorted(ITICK_WS_PATHS)}")
        for kind, path in v.items():
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"itick_ws_paths[{kind!r}] must be a path starting with '/', got {path!r}")
        # a partial mapping overrides only the classes it names
        return {**ITICK_WS_PATHS, **v}

    @property
    def effective_backend(self) -> str:
        """``embedded`` unless a DolphinDB URI is configured (by backend or dolphindb_uri).

        This is the raw URI (credentials included) for the code that connects; printed
        forms go through :func:`masked`.
        """
        if self.backend.startswith("dolphindb://"):
            return self.backend
        return self.dolphindb_uri or "embedded"

    @property
    def audit_path(self) -> Path:
        """Where the audit log lives (``audit_log`` or ``data_dir/audit/audit.log``)."""
        return Path(self.audit_log) if self.audit_log is not None else self.path("audit", "audit.log")

    def path(self, *parts: str) -> Path:
        """A path under the data directory (created on demand by the caller)."""
        return Path(self.data_dir).joinpath(*parts)

    def __repr_args__(self):
        # pydantic's default repr would print URIs with their passwords
        return list(masked(self, derived=False).items())


def mask_value(value: Any) -> Any:
    """``value`` with any credential it carries replaced by ``'***'``.

    Parameters
    ----------
    value : object
        A ``SecretStr`` (masked whole), a string (user-info of every ``scheme://user:pw@``
        and every secret-named ``name=value`` pair masked, e.g. ``?password=``,
        ``&token=``, ``api_key=``) or anything else (returned as is; ``Path`` as ``str``).

    Returns
    -------
    object
        The masked value.

    Examples
    --------
    >>> mask_value("redis://user:pw@localhost:6379/0?password=x")
    'redis://***@localhost:6379/0?password=***'
    """
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@" if m["userinfo"] else m[0], value)
    return _QUERY_SECRET.sub(lambda m: f"{m['name']}={MASK}", out)


def secret_values(settings: Settings) -> list[str]:
    """Every credential the settings carry, in clear (for :func:`redact` and log filters).

    SecretStr values, passwords and user-info in URIs, secret query parameters, and the
    contents of no file (secret files are read by their users, not here).
    """
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            if parts.password:
                found.append(parts.password)
            found.extend(v for k, v in parse_qsl(parts.query) if v and _SECRET_KEY.search(k))
    # longest first so a secret containing another is replaced whole
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def redact(text: str, settings: Settings | None = None) -> str:
    """``text`` with every known credential removed (for log lines and error messages).

    Applies :func:`mask_value` (URI user-info, secret-named parameters) and then replaces
    each value of :func:`secret_values` found verbatim, so a password that escaped its URI
    (``"connect failed for pw"``) is caught too.
    """
    out = mask_value(str(text))
    for s in secret_values(settings or get_settings()):
        out = out.replace(s, MASK)
    return out


def masked(settings: Settings, derived: bool = True) -> dict[str, Any]:
    """The settings as a plain dict with every credential replaced by ``'***'``.

    Parameters
    ----------
    settings : Settings
    derived : bool
        Also include the derived fields (``effective_backend``, ``audit_path``), masked
        by the same function as the fields they come from.
    """
    out: dict[str, Any] = {name: mask_value(getattr(settings, name)) for name in type(settings).model_fields}
    if derived:
        out["effective_backend"] = mask_value(settings.effective_backend)
        out["audit_path"] = str(settings.audit_path)
    return out


def configured_port(settings: Settings, name: str) -> int | None:
    """The port ``name`` (``signal_port``, ``dash_port``...) if the user set it, else ``None``.

    The demo runs every service on a free port unless one was configured (environment,
    settings file or an override): then that port, even when it equals the default.
    """
    if name not in type(settings).model_fields or not name.endswith("_port"):
        raise ValueError(f"{name!r} is not a port setting")
    return int(getattr(settings, name)) if name in settings.model_fields_set else None


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with per-call ``overrides``."""
    if overrides:
        return Settings(**overrides)
    return _cached()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment)."""
    _cached.cache_clear()
