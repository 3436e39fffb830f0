import json

import pytest
from typer.testing import CliRunner

from pyplatform.config import Settings, masked


def test_env_prefix_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PYPLATFORM_SIGNAL_PORT", "9999")
    s = Settings()
    assert s.data_dir == tmp_path
    assert s.signal_port == 9999
    assert s.effective_backend == "embedded"


def test_bad_backend_rejected():
    with pytest.raises(ValueError, match="backend must be"):
        Settings(backend="postgres://x")


def test_config_file(monkeypatch, tmp_path):
    f = tmp_path / "pp.env"
    f.write_text("PYPLATFORM_DASH_PORT=7777\n")
    s = Settings(_env_file=str(f))
    assert s.dash_port == 7777


def test_secrets_masked(monkeypatch):
    monkeypatch.setenv("PYPLATFORM_ITICK_TOKEN", "supersecret")
    monkeypatch.setenv("PYPLATFORM_REDIS_URL", "redis://user:pw@localhost:6379/0")
    from pyplatform.config import reset_settings_cache

    reset_settings_cache()
    from pyplatform.cli.main import app

    out = CliRunner().invoke(app, ["config", "--json"])
    reset_settings_cache()
    assert out.exit_code == 0, out.output
    assert "supersecret" not in out.output and "pw@" not in out.output
    data = json.loads(out.output)
    assert data["itick_token"] == "***"
    assert data["redis_url"] == "redis://***@localhost:6379/0"


def test_masked_plain():
    m = masked(Settings())
    assert m["backend"] == "embedded"
