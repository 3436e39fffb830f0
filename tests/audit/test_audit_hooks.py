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


def test_live_node_records_orders_cancels_refusals_and_the_kill_switch(tmp_path):
    from decimal import Decimal as D

    import pyarrow as pa

    from pyplatform.clock import SimClock
    from pyplatform.config import Settings
    from pyplatform.domain.schemas import QUOTES
    from pyplatform.execution.messages import OrdType, Side, SubmitOrder
    from pyplatform.execution.node import TradingNode
    from pyplatform.stream import StreamTable

    t0 = 1_767_600_000_000_000_000
    s = Settings(data_dir=tmp_path)
    quotes = StreamTable("quotes", QUOTES, clock=SimClock())
    quotes.append(pa.table({"ts": [t0], "symbol": ["AAPL.US"], "last": [100.0], "open": [100.0], "high": [100.0],
                            "low": [100.0], "volume": [1e6], "turnover": [1e8], "bid": [99.99], "ask": [100.01],
                            "bid_size": [1e6], "ask_size": [1e6]}, schema=QUOTES))
    node = TradingNode(s, {"quotes": quotes}, SimClock(t0), "paper", account="acct")
    node.step()
    far = SubmitOrder("o-far", "acct", "AAPL.US", Side.BUY, D(10), OrdType.LIMIT, D("97.00"), ts=t0, reason="test")
    first = node.submit(far)
    assert not first.refused, first.refused
    node.cancel("o-far", "changed my mind")
    node.kill("halt", "drill")
    report = node.submit(SubmitOrder("o-late", "acct", "AAPL.US", Side.BUY, D(10), OrdType.LIMIT, D("90.00"), ts=t0))
    assert report.refused
    node.kill("off", "drill over")
    node.close()
    assert verify_file(s.audit_path).ok
    f = read_audit(s.audit_path)
    assert f["kind"].tolist() == ["order.submit", "order.cancel", "killswitch.engage", "risk.refused",
                                  "killswitch.release"]
    assert f["subject"].tolist() == ["o-far", "o-far", "acct", "o-late", "acct"]
    assert set(f["actor"]) == {"oms:acct"} and (f["datetime"] == "2026-01-05 08:00:00").all()
    assert f.iloc[0]["details"] == {"symbol": "AAPL.US", "side": "BUY", "quantity": "10", "price": "97.00",
                                    "type": "limit", "reason": "test"}
    assert f.iloc[3]["outcome"] == "refused" and f.iloc[3]["details"]["rule"] == "kill_switch"
