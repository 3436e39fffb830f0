from typer.testing import CliRunner

from pyplatform.cli.main import app


def test_cli_publish_retire(market_settings, monkeypatch):
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(market_settings.data_dir))
    from pyplatform.config import reset_settings_cache

    reset_settings_cache()
    r = CliRunner()
    try:
        out = r.invoke(app, ["factors", "publish", "mom3", "close / move(close, 3) - 1", "-d", "momentum",
                             "--author", "ana"])
        assert out.exit_code == 0, out.output
        assert "published mom3 v1" in out.output and "stream == batch" in out.output
        bad = r.invoke(app, ["factors", "publish", "bad", "mavg(close,"])
        assert bad.exit_code == 1 and "not published" in bad.output
        lst = r.invoke(app, ["factors", "published"])
        assert "mom3" in lst.output and "bad" not in lst.output
        assert r.invoke(app, ["factors", "retire", "mom3"]).exit_code == 0
        assert r.invoke(app, ["factors", "retire", "ghost"]).exit_code == 1
        assert "True" in r.invoke(app, ["factors", "published"]).output
    finally:
        reset_settings_cache()
