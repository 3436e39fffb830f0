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


# -- masking that cannot leak (issue 18, item 3) ---------------------------------------------
import logging  # noqa: E402
import types  # noqa: E402
import typing  # noqa: E402

from pydantic import SecretStr  # noqa: E402

from pyplatform.config import ITICK_WS_PATHS, mask_value, redact, secret_values  # noqa: E402

# distinct, greppable secrets: one per place a credential can hide
_S = {k: f"S3CR3T{k.upper()}x9" for k in ("userinfo", "query", "secretstr", "qtoken", "user")}


def _is(annotation, kind) -> bool:
    # ``kind`` or ``kind | None`` (not ``dict[str, str]``, whose args also name str)
    if annotation is kind:
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and kind in typing.get_args(annotation)


def _every_credential_env(monkeypatch) -> None:
    """Put a known secret in every setting that can carry one: every SecretStr field, and every
    plain string field as a URI with a password in its user-info and in its query string."""
    from pyplatform.config import Settings

    for name, field in Settings.model_fields.items():
        env = f"PYPLATFORM_{name.upper()}"
        if _is(field.annotation, SecretStr):
            monkeypatch.setenv(env, _S["secretstr"] + name)
        elif _is(field.annotation, str):
            uri = (f"dolphindb://{_S['user']}:{_S['userinfo']}@db.example:8848/"
                   f"?password={_S['query']}&token={_S['qtoken']}&db=1")
            monkeypatch.setenv(env, uri)
    # the fixed-vocabulary ones must stay valid
    for name in ("fsync", "inference_device"):
        monkeypatch.delenv(f"PYPLATFORM_{name.upper()}", raising=False)


def _assert_clean(text: str) -> None:
    for s in _S.values():
        assert s not in text, f"secret {s} leaked in: {text[:400]}"
    assert "S3CR3TSECRETSTR" not in text


def test_every_credential_is_masked_in_every_printed_form(monkeypatch, caplog):
    from pyplatform.cli.main import app
    from pyplatform.config import Settings, reset_settings_cache

    _every_credential_env(monkeypatch)
    reset_settings_cache()
    try:
        s = Settings()
        # the secrets really are configured (the test could fail) ...
        assert _S["userinfo"] in s.effective_backend and _S["query"] in s.redis_url
        assert s.itick_token.get_secret_value().startswith("S3CR3TSECRETSTR")
        runner = CliRunner()
        as_json = runner.invoke(app, ["config", "--json"])
        as_table = runner.invoke(app, ["config"], env={"COLUMNS": "400"})
        assert as_json.exit_code == 0 and as_table.exit_code == 0, as_json.output + as_table.output
        # ... and appear in none of the printed forms, derived fields included
        for text in (as_json.output, as_table.output, repr(s), str(s), f"{s}", str(masked(s))):
            _assert_clean(text)
        data = json.loads(as_json.output)
        assert data["effective_backend"].startswith("dolphindb://***@db.example:8848/")
        assert "password=***" in data["redis_url"] and "token=***" in data["redis_url"]
        assert data["itick_token"] == data["jwt_secret"] == data["dolphindb_password"] == "***"
        # a log line that formats the settings object
        with caplog.at_level(logging.INFO):
            logging.getLogger("pyplatform.test").info("settings: %s / %r", s, s)
        _assert_clean(caplog.text)
        assert "db.example" in caplog.text
        # free text naming a secret that escaped its URI
        _assert_clean(redact(f"connect to {s.effective_backend} failed, password was {_S['userinfo']}", s))
    finally:
        reset_settings_cache()


def test_secret_values_lists_each_credential():
    from pyplatform.config import Settings

    s = Settings(dolphindb_uri="dolphindb://admin:dbpw1@h:8848", redis_url="redis://h:6379/0?password=rpw22",
                 itick_token="tok333", jwt_secret="j" * 40)
    assert set(secret_values(s)) == {"dbpw1", "rpw22", "tok333", "j" * 40}


@pytest.mark.parametrize("raw, expected", [
    ("redis://user:pw@localhost:6379/0", "redis://***@localhost:6379/0"),
    ("redis://:pw@localhost:6379/0", "redis://***@localhost:6379/0"),
    ("redis://localhost:6379/0?password=pw&db=2", "redis://localhost:6379/0?password=***&db=2"),
    ("https://h/x?api_key=k1&access_token=k2&q=1", "https://h/x?api_key=***&access_token=***&q=1"),
    ("dolphindb://h:8848", "dolphindb://h:8848"),
    ("wss://api.itick.org/stock", "wss://api.itick.org/stock"),
    ("embedded", "embedded"),
    (SecretStr("x"), "***"),
    (SecretStr(""), ""),
    (8765, 8765),
])
def test_mask_value_cases(raw, expected):
    assert mask_value(raw) == expected


def test_refused_backend_error_does_not_echo_its_password():
    with pytest.raises(ValueError, match="backend must be") as err:
        Settings(backend="postgres://u:hunter22@db/x")
    assert "hunter22" not in str(err.value)


def test_itick_ws_paths_defaults_partial_override_and_errors(monkeypatch):
    assert Settings().itick_ws_paths == ITICK_WS_PATHS == {
        "stock": "/stock", "forex": "/forex", "indices": "/indices", "crypto": "/crypto"}
    monkeypatch.setenv("PYPLATFORM_ITICK_WS_PATHS", '{"stock": "/sws", "forex": "/fws"}')
    assert Settings().itick_ws_paths == {"stock": "/sws", "forex": "/fws", "indices": "/indices", "crypto": "/crypto"}
    with pytest.raises(ValueError, match="unknown asset class"):
        Settings(itick_ws_paths={"bonds": "/bonds"})
    with pytest.raises(ValueError, match="starting with '/'"):
        Settings(itick_ws_paths={"stock": "stock"})


def test_audit_path_default_and_override(tmp_path):
    assert Settings(data_dir=tmp_path).audit_path == tmp_path / "audit" / "audit.log"
    assert Settings(audit_log=tmp_path / "a.log").audit_path == tmp_path / "a.log"


def test_configured_port_only_when_set(monkeypatch):
    from pyplatform.config import configured_port

    assert configured_port(Settings(), "signal_port") is None
    monkeypatch.setenv("PYPLATFORM_SIGNAL_PORT", "8765")  # the default value, but chosen
    assert configured_port(Settings(), "signal_port") == 8765
    assert configured_port(Settings(dash_port=7001), "dash_port") == 7001
    assert configured_port(Settings(), "simulator_port") is None
    with pytest.raises(ValueError, match="not a port"):
        configured_port(Settings(), "data_dir")
