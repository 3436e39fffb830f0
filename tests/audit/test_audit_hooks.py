"""Operations of other packages that write audit records (the token CLI)."""

from __future__ import annotations

from typer.testing import CliRunner

from pyplatform.audit import read_audit, verify_file
from pyplatform.config import get_settings, reset_settings_cache


def test_token_cli_records_secret_issue_and_revoke(tmp_path, monkeypatch):
    from pyplatform.cli.tokens import app as tokens_app
    from pyplatform.signals.auth import decode_unverified

    monkeypatch.delenv("PYPLATFORM_JWT_SECRET", raising=False)
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYPLATFORM_JWT_SECRET_FILE", str(tmp_path / "jwt.secret"))
    monkeypatch.setenv("PYPLATFORM_REDIS_URL", "redis://127.0.0.1:1/0")  # nobody listens: file only
    monkeypatch.setenv("USER", "alice")
    reset_settings_cache()
    try:
        cli = CliRunner()
        assert cli.invoke(tokens_app, ["init-secret"]).exit_code == 0
        tok = cli.invoke(tokens_app, ["issue", "--subject", "nb", "--topic", "factors:*"]).output.strip()
        jti = decode_unverified(tok)["jti"]
        assert cli.invoke(tokens_app, ["revoke", tok]).exit_code == 0
        path = get_settings().audit_path
        assert verify_file(path).ok
        f = read_audit(path)
        assert f["kind"].tolist() == ["secret.rotate", "token.issue", "token.revoke"]
        assert f["actor"].unique().tolist() == ["cli:alice"]
        assert f["subject"].tolist()[1:] == ["nb", jti]
        assert f.iloc[1]["details"]["jti"] == jti and f.iloc[1]["details"]["topics"] == ["factors:*"]
        assert tok not in path.read_text()  # the token itself is never recorded
        # a tampered log makes issuing fail: no token leaves without its record
        path.write_text(path.read_text().replace('"nb"', '"mallory"'))
        from pyplatform.audit import query

        query._logs.clear()  # a fresh process
        out = cli.invoke(tokens_app, ["issue", "--subject", "eve"])
        assert out.exit_code == 2 and "audit log refused" in out.output and "eyJ" not in out.output
    finally:
        reset_settings_cache()


def test_factor_publish_and_retire_are_recorded(market_settings):
    import pyplatform as pp

    s = market_settings
    v = pp.publish("mom5", "close / move(close, 5) - 1", author="ana", description="five-day momentum", settings=s)
    pp.retire("mom5", "superseded", settings=s)
    assert verify_file(s.audit_path).ok
    f = read_audit(s.audit_path)
    assert f["kind"].tolist() == ["factor.publish", "factor.retire"]
    assert f["subject"].tolist() == ["mom5", "mom5"] and f.iloc[0]["actor"] == "user:ana"
    assert f.iloc[0]["details"] == {"version": v.version, "expression": v.expression}
    assert f.iloc[1]["details"] == {"reason": "superseded"}
