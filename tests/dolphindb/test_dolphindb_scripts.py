"""The deploy scripts, checked without a server: documented signatures, order, guards, teardown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyplatform.dolphindb.deployer import check_scripts, deploy_plan, undeploy_plan
from pyplatform.dolphindb.dos_parse import parse_calls
from pyplatform.dolphindb.plan import signature_problems, simulate
from pyplatform.dolphindb.render import (
    SCRIPTS_DIR, DeployConfig, FactorMetric, RenderedScript, render_publish, render_scripts, validate_metric,
)
from pyplatform.dolphindb.signatures import SIGNATURES, check_call, parse_signature
from pyplatform.factors import parse, to_dolphindb

GOLDEN = Path(__file__).parent / "golden"

# The factor examples of DESIGN.md, compiled by the factor language's DolphinDB runtime.
EXAMPLES = {
    "sma_20": "mavg(close, 20)",
    "macd_line": "ema(close, 12) - ema(close, 26)",
    "zscore_20": "(close - mavg(close, 20)) / mstd(close, 20)",
    "rsi_14": "rsi(close, 14)",
    "vwap_30": "msum(close * volume, 30) / msum(volume, 30)",
}
TICK_EXAMPLES = {"spread_bps": "(ask - bid) / ((ask + bid) / 2) * 10000"}


@pytest.fixture(scope="module")
def metrics() -> list[FactorMetric]:
    return ([FactorMetric(n, to_dolphindb(parse(e))) for n, e in EXAMPLES.items()]
            + [FactorMetric(n, to_dolphindb(parse(e)), "ticks") for n, e in TICK_EXAMPLES.items()])


@pytest.fixture(scope="module")
def config() -> DeployConfig:
    return DeployConfig()


def test_every_template_is_in_a_plan():
    from pyplatform.dolphindb.render import DEPLOY_ORDER, DROP_DATA, DROP_STREAMS, UNDEPLOY_ORDER

    on_disk = sorted(p.stem for p in SCRIPTS_DIR.glob("*.dos"))
    assert on_disk == sorted(set(DEPLOY_ORDER + UNDEPLOY_ORDER + (DROP_STREAMS, DROP_DATA)))


def test_rendered_scripts_have_no_placeholders_left(config, metrics):
    for s in render_scripts(config, metrics):
        assert "{{" not in s.text and "}}" not in s.text, s.name


@pytest.mark.parametrize("stem", sorted(p.stem for p in SCRIPTS_DIR.glob("*.dos")))
def test_golden_rendered_scripts(stem, config, metrics):
    """The scripts rendered for the design's example factors are pinned; a change to a
    template or to the factor compiler shows up here (UPDATE_GOLDEN_DOLPHINDB=1 rewrites)."""
    text = render_scripts(config, metrics, (stem,))[0].text
    path = GOLDEN / f"{stem}.dos"
    if os.environ.get("UPDATE_GOLDEN_DOLPHINDB") == "1":
        path.write_text(text)
    assert text == path.read_text()


def test_factor_engine_metrics_come_from_the_factor_language(config, metrics):
    text = render_scripts(config, metrics, ("40_factor_engine",))[0].text
    call = next(c for c in parse_calls(text) if c.name == "createNarrowReactiveStateEngine")
    assert call.arg("metricNames").text == '["sma_20", "macd_line", "zscore_20", "rsi_14", "vwap_30"]'
    body = call.arg("metrics").text
    assert body.startswith("[<ts>, <mavg(close, 20)>, <ema(close, 12) - ema(close, 26)>")
    assert "<msum(close * volume, 30) / msum(volume, 30)>" in body


def test_every_call_matches_its_documented_signature(config, metrics):
    deploy = deploy_plan(config, metrics)
    teardown = undeploy_plan(config, metrics, drop_streams=True, drop_data=True)
    publish = RenderedScript("publish", render_publish(config, metrics[:1]))
    assert signature_problems(deploy + teardown + [publish]) == []
    used = {c.name for s in deploy + teardown for c in parse_calls(s.text)}
    # the scripts really exercise the engines and subscriptions the issue asks for
    assert {"createTimeSeriesEngine", "createNarrowReactiveStateEngine", "subscribeTable",
            "enableTableShareAndPersistence", "createPartitionedTable", "getSnapshotMsgId",
            "unsubscribeTable", "dropStreamEngine", "dropStreamTable", "dropDatabase"} <= used


def test_signature_checker_catches_bad_calls(config, metrics):
    deploy = deploy_plan(config, metrics)
    bad = [RenderedScript(s.name, s.text.replace("persistOffset=true", "persistOffsets=true")) for s in deploy]
    problems = signature_problems(bad)
    assert problems and all("persistOffsets" in p for p in problems)
    assert "subscribeTable" in problems[0] and "50_subscriptions" in problems[0]
    missing = signature_problems([RenderedScript("x", 'subscribeTable(tableName="t", actionName="a")')])
    assert missing == ["x:1: subscribeTable: required parameter(s) ['handler'] not supplied"]
    unknown = signature_problems([RenderedScript("x", "createCrossSectionalEngine(name=1)")])
    assert "not in the documented-signature table" in unknown[0]


def test_check_call_counts_positions_and_methods():
    assert check_call("loadTable", 2, []) == []
    assert check_call("loadTable", 5, []) == ["loadTable: 5 positional arguments, documented 4"]
    assert check_call("existsTable", 1, [], method=True) == []
    assert "given both" in check_call("loadTable", 1, ["database", "tableName"])[0]
    assert check_call("appendMsg", 1, [], partial=True) == []
    sig = parse_signature("f(a, [b=1], [c|d])", "x")
    assert sig.params == ("a", "b", "c") and sig.required == {"a"} and sig.alt_keywords == {"d"}
    assert all(s.source.startswith("https://docs.dolphindb.cn/") for s in SIGNATURES.values())


def test_deploy_creates_before_use_and_redeploy_changes_nothing(config, metrics):
    deploy = deploy_plan(config, metrics)
    objects, problems = simulate(deploy)
    assert problems == []
    p = config.prefix
    assert {f"stream:{p}_{t}" for t in ("ticks", "bars_1m", "bars_1d", "factors", "signals", "orders", "fills")} <= set(objects)
    assert {f"engine:{p}_bar_1m_engine", f"engine:{p}_bar_1d_engine", f"engine:{p}_factor_engine"} <= set(objects)
    assert f"table:dfs://{p}_ticks/ticks" in objects
    assert objects[f"sub:{p}_ticks/{p}_bar_1m_engine"] == (f"stream:{p}_ticks", f"engine:{p}_bar_1m_engine")
    assert objects[f"engine:{p}_tick_factor_engine"] == (f"stream:{p}_ticks", f"stream:{p}_factors")
    again, problems = simulate(deploy, objects)
    assert problems == [] and again == objects


def test_out_of_order_deploy_is_caught(config, metrics):
    deploy = deploy_plan(config, metrics)
    swapped = [deploy[0], deploy[1], deploy[3], deploy[2]] + deploy[4:]  # engines before streams
    _, problems = simulate(swapped)
    assert any("30_bar_engines" in x and "uses stream:pp_ticks before it is created" in x for x in problems)


def test_unguarded_create_is_caught(config, metrics):
    deploy = deploy_plan(config, metrics)
    text = deploy[2].text.replace('if(!ppStreamTableExists("pp_fills")) {', "if(true) {")
    _, problems = simulate(deploy[:2] + [RenderedScript(deploy[2].name, text)])
    assert problems == ["20_stream_tables:28: enableTableShareAndPersistence creates stream:pp_fills without an existence check (not idempotent)"]


def test_teardown_reverses_deploy(config, metrics):
    deployed, _ = simulate(deploy_plan(config, metrics))
    kept, problems = simulate(undeploy_plan(config, metrics), deployed)
    assert problems == []
    assert not any(o.startswith(("sub:", "engine:")) for o in kept)  # data is kept by default
    assert {o for o in deployed if o.startswith(("stream:", "db:", "table:"))} == set(kept)
    gone, problems = simulate(undeploy_plan(config, metrics, drop_streams=True, drop_data=True), deployed)
    assert problems == [] and gone == {}


def test_teardown_in_the_wrong_order_is_caught(config, metrics):
    deployed, _ = simulate(deploy_plan(config, metrics))
    steps = undeploy_plan(config, metrics)
    _, problems = simulate([steps[0], steps[2], steps[1]], deployed)  # engines before subscriptions
    assert any("drops engine:pp_factor_engine while ['sub:pp_bars_1m/pp_factor_engine'] still need it" in p
               for p in problems)


def test_check_scripts_is_clean_for_variants(metrics):
    assert check_scripts(DeployConfig(), metrics) == []
    assert check_scripts(DeployConfig(prefix="qa", time_type="NANOTIMESTAMP",
                                      sessions=(("09:30:00", "11:30:00"), ("13:00:00", "15:00:00")),
                                      session_timezone="UTC"), metrics) == []


def test_bar_engine_late_and_quiet_symbol_options_are_rendered_in_the_time_unit(metrics):
    # one at a time: createTimeSeriesEngine documents that acceptedDelay excludes forceTriggerTime
    for cfg, key, want in ((DeployConfig(bar_accepted_delay_ms=500, time_type="NANOTIMESTAMP"), "acceptedDelay",
                            "500000000"),
                           (DeployConfig(bar_force_trigger_ms=2000, time_type="NANOTIMESTAMP"), "forceTriggerTime",
                            "2000000000")):
        text = render_scripts(cfg, metrics, ("30_bar_engines",))[0].text
        call = next(c for c in parse_calls(text) if c.name == "createTimeSeriesEngine")
        other = {"acceptedDelay": "forceTriggerTime", "forceTriggerTime": "acceptedDelay"}[key]
        assert call.arg(key).text == want and call.arg(other) is None
    with pytest.raises(ValueError, match="cannot both be set"):
        DeployConfig(bar_accepted_delay_ms=500, bar_force_trigger_ms=2000)
    plain = render_scripts(DeployConfig(), metrics, ("30_bar_engines",))[0].text
    plain_call = next(c for c in parse_calls(plain) if c.name == "createTimeSeriesEngine")
    assert plain_call.arg("acceptedDelay") is None and plain_call.arg("forceTriggerTime") is None
    with pytest.raises(ValueError, match="bar_accepted_delay_ms"):
        DeployConfig(bar_accepted_delay_ms=-1)


def test_sessions_must_be_declared_utc():
    # issue 15, item 6: 09:30-16:00 given as New York hours would keep 09:30-16:00 UTC
    with pytest.raises(ValueError, match="ts, which is UTC"):
        DeployConfig(sessions=(("09:30:00", "16:00:00"),))
    with pytest.raises(ValueError, match="America/New_York"):
        DeployConfig(sessions=(("09:30:00", "16:00:00"),), session_timezone="America/New_York")
    assert DeployConfig(sessions=(("14:30:00", "21:00:00"),), session_timezone="UTC").sessions


def test_stock_sessions_use_the_daily_engine_and_ns_scales_windows(metrics):
    cfg = DeployConfig(time_type="NANOTIMESTAMP", sessions=(("09:30:00", "16:00:00"),), session_timezone="UTC")
    text = render_scripts(cfg, metrics, ("30_bar_engines",))[0].text
    call = next(c for c in parse_calls(text) if c.name == "createDailyTimeSeriesEngine")
    assert call.arg("windowSize").text == "60000000000"
    assert call.arg("sessionBegin").text == "09:30:00.000000000"
    assert call.arg("sessionEnd").text == "16:00:00.000000000"


@pytest.mark.parametrize("name,text,message", [
    ("bad name", "mavg(close, 5)", "identifier"),
    ("f", "talib2(close, 5)", "'talib2' is not a documented reactive-state-engine function"),
    ("f", "mavg(price, 5)", "'price' is not a column of bars"),
    ("f", 'mavg(close, 5)>, <close', "'>' at column 14 outside nullCompare"),
    ("f", 'iif(close, "x", 0)', "literal"),
    ("f", "iif(nullCompare(==, close, open), 1, 0)", "nullCompare(==, ...) is not documented"),
    ("f", "mavg(close, 5); dropDatabase(x)", "';'"),
    ("f", "mavg(close, 5", "unbalanced"),
])
def test_bad_metrics_are_rejected(name, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_metric(name, text)


@pytest.mark.parametrize("kw,message", [
    ({"prefix": "p-x"}, "prefix"), ({"cache_size": 0}, "cache_size"), ({"time_type": "DATE"}, "time_type"),
    ({"snapshot_dir": '/x";drop'}, "snapshot_dir"), ({"sessions": (("16:00:00", "09:30:00"),)}, r"sessions\[0\]"),
    ({"first_month": "2020-01"}, "first_month"),
])
def test_bad_deploy_config_is_rejected(kw, message):
    with pytest.raises(ValueError, match=message):
        DeployConfig(**kw)


def test_render_refuses_unknown_placeholder_and_empty_factor_list(tmp_path, config, metrics):
    (tmp_path / "x.dos").write_text("a = {{nope}}\n")
    with pytest.raises(KeyError, match=r"x.dos:1: no value for placeholder \{\{nope\}\}"):
        render_scripts(config, metrics, ("x",), scripts_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one metric"):
        render_scripts(config, [], ("00_helpers",))


def test_publish_script_adds_metrics_to_the_running_engine(config):
    m = FactorMetric("mom_10", to_dolphindb(parse("close - prev(close)")))
    text = render_publish(config, [m])
    call = parse_calls(text)[0]
    assert call.name == "addReactiveMetrics"
    assert call.arg("name").literal == "pp_factor_engine"
    assert call.arg("metricNames").text == '["mom_10"]'
    assert call.arg("metrics").text == "[<close - prev(close)>]"


# ---------------------------------------------------------------- the built-in library
@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from pyplatform.config import Settings
    from pyplatform.dolphindb.render import library_metrics

    return library_metrics(Settings(data_dir=tmp_path_factory.mktemp("empty")))


def test_library_factors_render_and_pass_every_check(library):
    from pyplatform.factors import load_library

    defs = load_library()
    assert [m.name for m in library] == [d.name for d in defs]
    assert {m.input for m in library} == {d.input for d in defs}
    assert check_scripts(DeployConfig(), library) == []


@pytest.mark.parametrize("stem", ["40_factor_engine", "45_tick_factor_engine"])
def test_golden_library_factor_engines(stem, library):
    """The factor engines rendered for the whole built-in library are pinned."""
    text = render_scripts(DeployConfig(), library, (stem,))[0].text
    path = GOLDEN / f"library_{stem}.dos"
    if os.environ.get("UPDATE_GOLDEN_DOLPHINDB") == "1":
        path.write_text(text)
    assert text == path.read_text()
    engine = next(c for c in parse_calls(text) if c.name == "createNarrowReactiveStateEngine")
    wanted = [m.name for m in library if m.input == ("ticks" if stem.startswith("45") else "bars")]
    assert engine.arg("metricNames").text == "[" + ", ".join(f'"{n}"' for n in wanted) + "]"


def test_published_factors_follow_the_library_in_publication_order(tmp_path):
    from pyplatform.config import Settings
    from pyplatform.dolphindb.render import library_metrics
    from pyplatform.registry.factors import FactorRegistry

    settings = Settings(data_dir=tmp_path)
    reg = FactorRegistry.from_settings(settings)
    reg.add_version("my_mid_gap", "(ask + bid) / 2 - price", "ana")
    reg.add_version("my_range", "high - low", "ana")
    reg.add_version("gone", "close", "ana")
    reg.retire("gone")
    got = library_metrics(settings)
    assert [(m.name, m.input) for m in got[-2:]] == [("my_mid_gap", "ticks"), ("my_range", "bars")]
    assert "gone" not in {m.name for m in got}
    assert check_scripts(DeployConfig(), got) == []


def test_cli_daily_close_after_ms_reaches_the_daily_engine(tmp_path):
    from typer.testing import CliRunner

    from pyplatform.cli.dolphindb import app

    def engine_call(*extra):
        out = tmp_path / "_".join(extra or ("default",))
        r = CliRunner().invoke(app, ["render", "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        text = (out / "30_bar_engines.dos").read_text()
        return next(line for line in text.splitlines() if "createDailyTimeSeriesEngine(" in line)

    assert "forceTriggerSessionEndTime=60000)" in engine_call()  # the documented default, 60 s
    assert "forceTriggerSessionEndTime=5000)" in engine_call("--daily-close-after-ms", "5000")
    assert "forceTriggerSessionEndTime" not in engine_call("--daily-close-after-ms", "0")
    r = CliRunner().invoke(app, ["render", "--out", str(tmp_path / "neg"), "--daily-close-after-ms", "-1"])
    assert r.exit_code != 0
