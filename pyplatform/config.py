"""Platform configuration.

Settings come from, in increasing priority: defaults, an optional TOML/ENV file named by
``PYPLATFORM_CONFIG_FILE`` (or ``./pyplatform.env``), and ``PYPLATFORM_*`` environment
variables. Secrets are ``SecretStr`` so they never print by accident.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "masked"]


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
    """

    model_config = SettingsConfigDict(
        env_prefix="PYPLATFORM_", env_file=_env_file(), extra="ignore", frozen=True
    )

    data_dir: Path = Path("./data")
    backend: str = "embedded"
    dolphindb_uri: str | None = None
    dolphindb_user: str = "admin"
    dolphindb_password: SecretStr | None = None

    redis_url: str = "redis://127.0.0.1:6379/0"
    signal_host: str = "127.0.0.1"
    signal_port: int = 8765
    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8766
    dash_host: str = "127.0.0.1"
    dash_port: int = 8050
    fix_port: int = 9878

    itick_ws_url: str = "wss://api.itick.org/stock"
    itick_rest_url: str = "https://api.itick.org"
    itick_token: SecretStr | None = None

    jwt_secret_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    fsync: Literal["always", "batch", "never"] = "batch"
    log_level: str = "INFO"
    inference_device: Literal["cpu", "gpu", "auto"] = "cpu"

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, v: str) -> str:
        if v != "embedded" and not v.startswith("dolphindb://"):
            raise ValueError(f"backend must be 'embedded' or a dolphindb:// URI, got {v!r}")
        return v

    @property
    def effective_backend(self) -> str:
        """``embedded`` unless a DolphinDB URI is configured (by backend or dolphindb_uri)."""
        if self.backend.startswith("dolphindb://"):
            return self.backend
        return self.dolphindb_uri or "embedded"

    def path(self, *parts: str) -> Path:
        """A path under the data directory (created on demand by the caller)."""
        return Path(self.data_dir).joinpath(*parts)


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as a plain dict with every secret replaced by ``'***'``."""
    out: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            out[name] = "***" if value.get_secret_value() else ""
        elif isinstance(value, str) and "://" in value and "@" in value:
            # credentials embedded in a URL: keep scheme and host only
            scheme, rest = value.split("://", 1)
            out[name] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        else:
            out[name] = str(value) if isinstance(value, Path) else value
    out["effective_backend"] = settings.effective_backend
    return out


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
