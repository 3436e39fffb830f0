"""Deployer and CLI without a server (the session is a recording stand-in: a pure unit)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pyplatform.dolphindb import sql as dsql
from pyplatform.dolphindb.layout import migration_script
from pyplatform.dolphindb.deployer import DeployCheckError, Deployer, deploy_plan, status_script, undeploy_plan
from pyplatform.dolphindb.dos_parse import parse_calls
from pyplatform.dolphindb.plan import signature_problems
from pyplatform.dolphindb.render import DeployConfig, FactorMetric, RenderedScript, render_publish
from pyplatform.dolphindb.preflight import preflight_script, snapshot_dir_script
from pyplatform.dolphindb.subscriber import persistence_meta_script
from pyplatform.dolphindb.signatures import ENGINE_FUNCTIONS, SIGNATURES

CFG = DeployConfig()
METRICS = [FactorMetric("ma3", "mavg(close, 3)"), FactorMetric("spread", "ask - bid", "ticks")]


class RecordingSession:
    """Stands in for dolphindb.Session: records scripts, fails on a chosen one."""

    def __init__(self, fail_on: str | None = None, result=None):
        self.scripts: list[str] = []
        self.fail_on, self.result = fail_on, result

    def run(self, script, *args):
        if self.fail_on and self.fail_on in script:
            raise RuntimeError("Server response: 'createTimeSeriesEngine: engine name conflict'")
        self.scripts.append(script)
        return self.result


def test_deploy_runs_each_file_once_in_order():
    s = RecordingSession()
    done = Deployer(s, CFG, METRICS).deploy(preflight=False)  # the preflight: test_dolphindb_wire
    assert done == ["00_helpers", "10_databases", "20_stream_tables", "30_bar_engines", "40_factor_engine",
                    "45_tick_factor_engine", "50_subscriptions"]
    assert [x.splitlines()[0] for x in s.scripts] == [
        f"// rendered by pyplatform from dolphindb_scripts/{n}.dos -- edit the template, not this file" for n in done]


def test_a_server_error_names_the_file_and_what_ran_before():
    s = RecordingSession(fail_on="createTimeSeriesEngine")
    with pytest.raises(RuntimeError, match=r"30_bar_engines.dos failed on the server: .*name conflict.*"
                                           r"\['00_helpers', '10_databases', '20_stream_tables'\]"):
        Deployer(s, CFG, METRICS).deploy(preflight=False)


def test_scripts_failing_their_checks_are_never_sent():
    s = RecordingSession()
    bad = [FactorMetric("ma3", "mavg(close, 3)"), FactorMetric("ma3", "mavg(close, 5)")]
    with pytest.raises(ValueError, match=r"unique, duplicated: \['ma3'\]"):
        Deployer(s, CFG, bad).deploy(preflight=False)
    assert s.scripts == []


def test_undeploy_keeps_data_unless_asked():
    s = RecordingSession()
    assert Deployer(s, CFG, METRICS).undeploy() == ["00_helpers", "90_teardown_subscriptions", "91_teardown_engines"]
    assert Deployer(s, CFG, METRICS).undeploy(drop_data=True)[-2:] == [
        "92_teardown_stream_tables", "93_teardown_databases"]


def test_publish_routes_by_input_and_refuses_running_names():
    s = RecordingSession()
    d = Deployer(s, CFG, list(METRICS))
    script = d.publish([FactorMetric("mom", "close - prev(close)"), FactorMetric("mid", "(ask + bid) / 2", "ticks")])
    calls = [c for c in parse_calls(script) if c.name == "addReactiveMetrics"]
    assert [(c.name, c.arg("name").literal) for c in calls] == [
        ("addReactiveMetrics", "pp_factor_engine"), ("addReactiveMetrics", "pp_tick_factor_engine")]
    assert s.scripts == [script]
    with pytest.raises(ValueError, match=r"\['mom'\] already run in the engine"):
        d.publish([FactorMetric("mom", "close")])


def test_status_reads_the_three_lists():
    s = RecordingSession(result=(["pp_ticks"], ["pp_bar_1m_engine"], [True, False, False, True, False]))
    got = Deployer(s, CFG, METRICS).status()
    assert got == {"stream tables": ["pp_ticks"], "engines": ["pp_bar_1m_engine"],
                   "databases": ["dfs://pp_ticks", "dfs://pp_factors"]}


def test_every_documented_signature_is_used_and_every_use_is_documented():
    """The signature table is exactly what the platform calls (engine functions aside,
    which are there for whatever the factor compiler emits)."""
    texts = [s.text for s in deploy_plan(CFG, METRICS) + undeploy_plan(CFG, METRICS, True, True)]
    texts.append(deploy_plan(DeployConfig(sessions=(("09:30:00", "16:00:00"),), session_timezone="UTC"), METRICS)[3].text)
    texts += [render_publish(CFG, METRICS), status_script(CFG),
              dsql.read_sql(CFG, "ticks", ["A.US"], 0, 1, None),
              dsql.latest_sql(CFG, "bars_1m", None, 0, 1, None),
              dsql.resample_sql(CFG, "ticks", 60_000_000_000, None, None, None),
              dsql.resample_sql(CFG, "bars_1m", 60_000_000_000, None, None, None),
              dsql.asof_script(CFG, "bars_1m", None, ["A.US"], None, 1), dsql.symbols_sql(CFG, "factors"),
              persistence_meta_script("pp_signals"), preflight_script(CFG), snapshot_dir_script(CFG),
              migration_script(CFG)]
    scripts = [RenderedScript(f"s{i}", t) for i, t in enumerate(texts)]
    assert signature_problems(scripts) == []
    used = {c.name for t in texts for c in parse_calls(t)}
    unused = sorted(n for n in SIGNATURES if n not in used and n not in ENGINE_FUNCTIONS)
    assert unused == []


def test_cli_render_writes_checked_scripts(tmp_path, monkeypatch):
    from pyplatform.cli.dolphindb import app

    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(tmp_path / "data"))
    from pyplatform.config import reset_settings_cache

    reset_settings_cache()
    out = tmp_path / "rendered"
    result = CliRunner().invoke(app, ["render", "--out", str(out), "--prefix", "qa"])
    assert result.exit_code == 0, result.output
    assert "signatures, deploy order, guards and teardown OK" in result.output
    assert 'createNarrowReactiveStateEngine(name="qa_factor_engine"' in (out / "40_factor_engine.dos").read_text()
    bad = CliRunner().invoke(app, ["render", "--out", str(out), "--session", "16:00", "--session-tz", "UTC"])
    assert bad.exit_code != 0 and "HH:MM:SS-HH:MM:SS" in bad.output


def test_cli_without_a_server_says_how_to_configure_one():
    from pyplatform.cli.dolphindb import app
    from pyplatform.config import reset_settings_cache

    reset_settings_cache()
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2 and "PYPLATFORM_DOLPHINDB_URI" in result.output
    refuse = CliRunner().invoke(app, ["undeploy", "--drop-data"])
    assert refuse.exit_code == 2 and "--yes" in refuse.output


def test_bench_command_is_registered_and_prints_both_comparisons():
    from pyplatform.cli.bench import app

    result = CliRunner().invoke(app, ["dolphindb", "--rows", "2000", "--repeat", "1"])
    assert result.exit_code == 0, result.output
    assert "vs itertuples + per-row checks" in result.output and "vs itertuples -> list of dicts" in result.output
