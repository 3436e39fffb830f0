"""``pyplatform tokens`` (in-process CLI) and ``pyplatform serve`` (a real subprocess on a real socket)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from signals_support import free_port, run
from pyplatform.cli.tokens import app as tokens_app
from pyplatform.client import SignalClient
from pyplatform.config import reset_settings_cache


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("PYPLATFORM_JWT_SECRET", raising=False)
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYPLATFORM_JWT_SECRET_FILE", str(tmp_path / "jwt.secret"))
    monkeypatch.setenv("PYPLATFORM_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody listens: file only
    reset_settings_cache()
    yield dict(os.environ)
    reset_settings_cache()


def test_tokens_issue_verify_revoke_and_serve_demo_feed(tmp_path, env):
    cli = CliRunner()
    out = cli.invoke(tokens_app, ["init-secret"])
    assert out.exit_code == 0, out.output
    assert oct((tmp_path / "jwt.secret").stat().st_mode & 0o777) == "0o600"
    assert cli.invoke(tokens_app, ["init-secret"]).exit_code != 0  # never silently replaced
    tok = cli.invoke(tokens_app, ["issue", "--subject", "nb", "--topic", "factors:*", "--symbol", "SYM0001.US"]).output.strip()
    checked = cli.invoke(tokens_app, ["verify", tok])
    assert checked.exit_code == 0 and '"subject": "nb"' in checked.output and "SYM0001.US" in checked.output

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from pyplatform.cli.serve import app; app()", "--port", str(port),
                             "--no-redis", "--demo-feed", "5", "--rate", "20"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        banner = proc.stdout.readline()
        assert f"ws://127.0.0.1:{port}" in banner, banner
        assert "subscribe_forever" in proc.stdout.readline()  # the one-line example

        async def first_rows():
            rows = []
            client = SignalClient(f"ws://127.0.0.1:{port}", tok, ["factors:mom_20"], ["SYM0001.US"], max_attempts=20)
            async for msg in client:
                rows.append(msg)
                if len(rows) >= 3:
                    await client.close()
            return rows

        rows = run(first_rows())
        assert {m.row["symbol"] for m in rows} == {"SYM0001.US"} and set(rows[-1].row) == {"seq", "ts", "symbol", "mom_20"}
        revoked = cli.invoke(tokens_app, ["revoke", tok])
        assert revoked.exit_code == 0 and "revoked" in revoked.output and "Redis unreachable" in revoked.output
        refused = cli.invoke(tokens_app, ["verify", tok])
        assert refused.exit_code == 1 and "revoked" in refused.output
    finally:
        proc.terminate()
        proc.wait(10)
