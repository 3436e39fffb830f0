"""The ``pyplatform trade`` commands, run through Typer's test runner."""

import json

from typer.testing import CliRunner

from pyplatform.cli.trade import app
from pyplatform.config import reset_settings_cache
from pyplatform.execution.states import render_markdown

runner = CliRunner()


def test_transitions_prints_the_table():
    r = runner.invoke(app, ["transitions"])
    assert r.exit_code == 0 and r.output.strip() == render_markdown().strip()


def test_run_status_and_kill(tmp_path, monkeypatch):
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    try:
        r = runner.invoke(app, ["run", "--symbols", "2", "--minutes", "90", "--strategy", "ma_cross"])
        assert r.exit_code == 0, r.output
        assert "account main after 90 minutes (paper)" in r.output and "kill switch OFF" in r.output
        r = runner.invoke(app, ["status", "--json"])
        assert r.exit_code == 0, r.output
        status = json.loads(r.output)
        assert status["orders"] > 0
        r = runner.invoke(app, ["kill", "reduce_only", "--reason", "drill"])
        assert r.exit_code == 0
        kill = json.loads((tmp_path / "trading" / "main" / "kill.json").read_text())
        assert kill["mode"] == "reduce_only" and kill["reason"] == "drill"
        r = runner.invoke(app, ["run", "--symbols", "2", "--minutes", "30"])
        assert r.exit_code == 0 and "REDUCE_ONLY drill" in r.output
        r = runner.invoke(app, ["kill", "sideways"])
        assert r.exit_code != 0 and "sideways" in r.output
    finally:
        reset_settings_cache()


def test_status_without_journal_names_the_path(tmp_path):
    r = runner.invoke(app, ["status", "--journal", str(tmp_path / "none.journal")])
    assert r.exit_code != 0 and "none.journal" in r.output


def test_run_with_a_bad_venue_says_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path))
    reset_settings_cache()
    try:
        r = runner.invoke(app, ["run", "--broker", "fix", "--venue", "nowhere", "--minutes", "1"])
        assert r.exit_code != 0 and "HOST:PORT" in r.output
        r = runner.invoke(app, ["run", "--venue", "127.0.0.1:1", "--minutes", "1"])
        assert r.exit_code != 0 and "--venue needs --broker fix" in r.output
    finally:
        reset_settings_cache()


def test_fix_venue_setting_is_used_when_no_venue_flag(tmp_path, monkeypatch):
    # PYPLATFORM_FIX_VENUE stands in for --venue; a malformed one is refused naming the form
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PYPLATFORM_FIX_VENUE", "nowhere")
    reset_settings_cache()
    try:
        r = runner.invoke(app, ["run", "--broker", "fix", "--minutes", "1"])
        assert r.exit_code != 0 and "HOST:PORT" in r.output
    finally:
        reset_settings_cache()
