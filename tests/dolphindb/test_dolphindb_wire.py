"""The backend through the REAL ``dolphindb`` client against a loopback endpoint that records requests.

``ddb_wire.WireServer`` speaks enough of the API protocol (handshake, script, function call,
variable upload, replies) to accept the official client; it executes nothing. These tests
therefore prove what the platform SENDS -- the exact scripts, the function calls and the
types of their arguments, the writer's construction, the subscription request -- and check
them against the documented signatures and rules. They cannot prove what a server would do
with them (docs/dolphindb.md, "What the wire tests prove").
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from ddb_wire import WireServer  # noqa: E402  (tests/dolphindb is on sys.path under pytest's rootdir)
from pyplatform.dolphindb.connection import DolphinDBTarget, connect
from pyplatform.dolphindb.deployer import Deployer, deploy_plan, undeploy_plan
from pyplatform.dolphindb.dos_parse import parse_calls
from pyplatform.dolphindb.ingest import IngestError, TickWriter
from pyplatform.dolphindb.plan import signature_problems
from pyplatform.dolphindb.preflight import PreflightError, preflight_script, snapshot_dir_script
from pyplatform.dolphindb.render import DeployConfig, FactorMetric, RenderedScript, metacode_problems
from pyplatform.dolphindb import schema as dschema
from pyplatform.dolphindb import sql as dsql
from pyplatform.factors import load_library, to_dolphindb

pytest.importorskip("dolphindb")

CFG = DeployConfig()
T0 = pd.Timestamp("2024-03-04 09:30:00").value
_TYPE_INT = {"TIMESTAMP": 12, "NANOTIMESTAMP": 14, "SYMBOL": 17, "STRING": 18, "DOUBLE": 16, "CHAR": 2, "INT": 4}


def schema_reply(key: str, time_type: str = "TIMESTAMP", partitioned: bool = False) -> dict:
    """What ``schema(t)`` returns (colDefs: name, typeString, typeInt, extra, comment), as
    documented on the ``schema`` page; enough for the writer and appender to build."""
    cols = dschema.TABLES[key]
    types = [time_type if t == "TS" else t for _, t in cols]
    out = {"colDefs": {"__table__": {
        "name": [c for c, _ in cols], "typeString": types,
        "typeInt": {"__type__": "INT", "value": [_TYPE_INT[t] for t in types]},
        "extra": {"__type__": "INT", "value": [0] * len(cols)}, "comment": [""] * len(cols)}}}
    return out


GOOD_FACTS = {"version": "3.00.1.2 2024.06.30 LINUX x86_64", "persistenceDir": "/data/ddb/streams",
              "newValuePartitionPolicy": "add", "maxPartitionNumPerQuery": "65536", "logicOrIgnoreNull": "1",
              "snapshotDirExists": False, "isAdmin": True, "dbOwner": "allow"}


def preflight_rule(**changes) -> dict:
    return {"match": "ppPf = dict(STRING, ANY)", "reply": dict(GOOD_FACTS, **changes)}


def library_metrics() -> list[FactorMetric]:
    return [FactorMetric(d.name, to_dolphindb(d.expr), d.input) for d in load_library()]


@pytest.fixture
def wire(tmp_path, request):
    rules = getattr(request, "param", None) or []
    srv = WireServer(tmp_path, rules + [{"match": "version", "kind": "function", "reply": "3.00.1.2 2024.06.30"}])
    yield srv
    srv.close()


def _target(srv: WireServer) -> DolphinDBTarget:
    return DolphinDBTarget("127.0.0.1", srv.port, "admin", SecretStr("s3cret"))


def _metrics_of(script: str) -> list[str]:
    """The metric bodies of every engine creation and addReactiveMetrics call in ``script``
    (``<...>`` at bracket depth 0 of the metrics vector; ``>`` inside calls is an operator)."""
    out = []
    for c in parse_calls(script):
        if c.name in ("createNarrowReactiveStateEngine", "createReactiveStateEngine", "addReactiveMetrics"):
            text = c.arg("metrics").text.strip()[1:-1]
            depth, start = 0, None
            for i, ch in enumerate(text):
                if ch in "([":
                    depth += 1
                elif ch in ")]":
                    depth -= 1
                elif ch == "<" and depth == 0 and start is None:
                    start = i + 1
                elif ch == ">" and depth == 0 and start is not None:
                    out.append(text[start:i])
                    start = None
    return out


# ---------------------------------------------------------------- handshake, deploy, undeploy
def test_handshake_logs_in_and_never_records_the_password(wire):
    session = connect(_target(wire))
    session.run("1+1")
    session.close()
    first = wire.requests()[0]
    assert first["kind"] == "connect" and first["header"].startswith("API 0 ") and first["user"] == "admin"
    assert "s3cret" not in wire.log.read_text()
    assert wire.scripts() == ["1+1"]


@pytest.mark.parametrize("wire", [[preflight_rule()]], indirect=True)
def test_deploy_sends_exactly_the_rendered_scripts_and_each_call_is_documented(wire):
    metrics = library_metrics()
    session = connect(_target(wire))
    Deployer(session, CFG, metrics).deploy()
    session.close()
    sent = [s for s in wire.scripts()]
    assert sent[0] == preflight_script(CFG) and sent[1] == snapshot_dir_script(CFG)
    sent = sent[2:]
    expected = [s.text for s in deploy_plan(CFG, metrics)]
    assert sent == expected  # one request per file, in order, byte for byte
    assert signature_problems([RenderedScript(f"sent{i}", s) for i, s in enumerate(sent)]) == []
    engine_metrics = [m for s in sent for m in _metrics_of(s)]
    assert len(engine_metrics) == len(metrics) + 2  # + <ts> passthrough per engine
    for m in engine_metrics:
        assert metacode_problems(m) == [], m
    factor_script = next(s for s in sent if "pp_factor_engine" in s and "createNarrowReactiveStateEngine" in s)
    # the metacode items of issue 15, on the wire
    assert "nullCompare(==" not in factor_script and "nullCompare(!=" not in factor_script
    code = "\n".join(line for line in factor_script.splitlines() if not line.lstrip().startswith("//"))
    assert "--" not in code.replace(" ", "") and "0 * move(" not in code
    assert "max(high - low" in factor_script and "00F, max(high - low" in factor_script
    calls = [c for s in sent for c in parse_calls(s)]
    # concurrent writers need atomic='CHUNK' (database page); ms ticks are all kept (item 9)
    dbs = [c for c in calls if c.name == "database" and (c.arg("directory", 0).literal or "").startswith("dfs://")
           and c.arg("partitionType") is not None]
    assert len(dbs) == 5 and all(c.arg("atomic").literal == "CHUNK" for c in dbs)
    tables = {c.arg("tableName").literal: c for c in calls if c.name == "createPartitionedTable"}
    assert tables["ticks"].arg("keepDuplicates").text == "ALL"
    assert tables["factors"].arg("sortKeyMappingFunction").text == "[hashBucket{, 50}, hashBucket{, 20}]"


# The documented type of every createDailyTimeSeriesEngine parameter the platform passes,
# hand-copied from https://docs.dolphindb.cn/en/Functions/c/createDailyTimeSeriesEngine.html
# and the createTimeSeriesEngine page it inherits from: name STRING; windowSize, step positive
# integers in the time column's unit; metrics metacode; dummyTable/outputTable tables;
# timeColumn/keyColumn STRING; useSystemTime/useWindowStartTime/mergeSessionEnd BOOL;
# snapshotDir STRING; snapshotIntervalInMsgCount integer; sessionBegin/sessionEnd SECOND,
# TIME or NANOTIME "corresponding to the time column" (TIME for TIMESTAMP, NANOTIME for
# NANOTIMESTAMP); forceTriggerSessionEndTime a positive integer in the time column's unit.
_DAILY_DOC_TYPES = {
    "name": "STRING", "windowSize": "INT", "step": "INT", "metrics": "METACODE", "dummyTable": "TABLE",
    "outputTable": "TABLE", "timeColumn": "STRING", "useSystemTime": "BOOL", "keyColumn": "STRING",
    "useWindowStartTime": "BOOL", "snapshotDir": "STRING", "snapshotIntervalInMsgCount": "INT",
    "sessionBegin": "TIME", "sessionEnd": "TIME", "mergeSessionEnd": "BOOL", "forceTriggerSessionEndTime": "INT",
}


def _literal_type(text: str) -> str:
    """The DolphinDB type of one argument as written (literal forms of the language reference)."""
    t = text.strip()
    for kind, pattern in (("STRING", r'"[^"]*"'), ("BOOL", r"true|false"), ("INT", r"[1-9]\d*"),
                          ("NANOTIME", r"\d\d:\d\d:\d\d\.\d{9}"), ("TIME", r"\d\d:\d\d:\d\d\.\d{3}"),
                          ("SECOND", r"\d\d:\d\d:\d\d"), ("METACODE", r"<.*>"),
                          ("TABLE", r'objByName\("[A-Za-z0-9_]+"\)')):
        if re.fullmatch(pattern, t, re.DOTALL):
            return kind
    return f"unknown: {t[:40]}"


def _daily_engine_call(sent: list[str]):
    calls = [c for s in sent for c in parse_calls(s) if c.name == "createDailyTimeSeriesEngine"]
    return next(c for c in calls if c.arg("name").literal == "pp_bar_1d_engine")


@pytest.mark.parametrize("wire", [[preflight_rule()]], indirect=True)
def test_daily_bar_engine_call_on_the_wire_matches_the_documented_signature_and_types(wire):
    """Item 5: the daily bars are a createDailyTimeSeriesEngine with one 00:00:00-00:00:00
    session (the UTC day), emitted forceTriggerSessionEndTime after the day ends."""
    session = connect(_target(wire))
    Deployer(session, CFG, library_metrics()).deploy()
    session.close()
    call = _daily_engine_call(wire.scripts())
    assert call.positional == 0  # every argument by keyword, so each is bound to the documented name
    assert signature_problems([RenderedScript("daily", call.text)]) == []
    got = {a.keyword: _literal_type(a.text) for a in call.args}
    assert got == _DAILY_DOC_TYPES
    values = {a.keyword: a.text.strip() for a in call.args}
    assert values["windowSize"] == values["step"] == "86400000"  # one day in ms, the TIMESTAMP unit
    assert values["sessionBegin"] == values["sessionEnd"] == "00:00:00.000"  # midnight -> next midnight
    assert values["mergeSessionEnd"] == "false" and values["useWindowStartTime"] == "true"
    assert values["forceTriggerSessionEndTime"] == "60000"
    assert values["dummyTable"] == 'objByName("pp_bars_1m")' and values["outputTable"] == 'objByName("pp_bars_1d")'
    # keyPurgeDaily is not in the 2.00.12 / 3.00.1 manuals (the supported minimum): never sent
    assert "keyPurgeDaily" not in got and "roundTime" not in got
    assert not any(c.name == "createTimeSeriesEngine" and c.arg("name").literal == "pp_bar_1d_engine"
                   for s in wire.scripts() for c in parse_calls(s))


def test_daily_bar_engine_literals_follow_the_time_column_type():
    cfg = DeployConfig(time_type="NANOTIMESTAMP", daily_bar_close_after_ms=5_000)
    text = next(s.text for s in deploy_plan(cfg, library_metrics()) if s.name == "30_bar_engines")
    call = _daily_engine_call([text])
    assert _literal_type(call.arg("sessionBegin").text) == _literal_type(call.arg("sessionEnd").text) == "NANOTIME"
    assert call.arg("sessionEnd").text == "00:00:00.000000000"
    assert call.arg("windowSize").text == "86400000000000"
    assert call.arg("forceTriggerSessionEndTime").text == "5000000000"
    off = next(s.text for s in deploy_plan(DeployConfig(daily_bar_close_after_ms=0), library_metrics())
               if s.name == "30_bar_engines")
    assert _daily_engine_call([off]).arg("forceTriggerSessionEndTime") is None  # documented as positive
    with pytest.raises(ValueError, match="daily_bar_close_after_ms"):
        DeployConfig(daily_bar_close_after_ms=-1)


def test_undeploy_with_drop_data_calls_dropDatabase_as_documented(wire):
    session = connect(_target(wire))
    Deployer(session, CFG, library_metrics()).undeploy(drop_streams=True, drop_data=True)
    session.close()
    sent = wire.scripts()
    assert sent == [s.text for s in undeploy_plan(CFG, library_metrics(), True, True)]
    drops = [c for s in sent for c in parse_calls(s) if c.name == "dropDatabase"]
    assert [c.arg("dbDir", 0).literal for c in drops] == [
        f"dfs://pp_{x}" for x in ("signals", "factors", "bars_1d", "bars_1m", "ticks")]
    # current reference: dropDatabase(dbDir); 2.00's name was `directory`: pass it by position
    assert all(c.keywords == [] and c.positional == 1 for c in drops)
    # the stream tables go, so the DFS writers' persisted offsets go too (item 14)
    unsubs = [c for s in sent for c in parse_calls(s) if c.name == "unsubscribeTable" and c.arg("removeOffset")]
    assert len(unsubs) == 5 and all(c.arg("removeOffset").text == "true" for c in unsubs)


def test_plain_undeploy_keeps_the_writers_offsets(wire):
    session = connect(_target(wire))
    Deployer(session, CFG, library_metrics()).undeploy()
    session.close()
    unsubs = [c for s in wire.scripts() for c in parse_calls(s) if c.name == "unsubscribeTable" and c.arg("removeOffset")]
    assert len(unsubs) == 5 and all(c.arg("removeOffset").text == "false" for c in unsubs)


# ---------------------------------------------------------------- tick ingestion
_TICK_RULES = [
    # what a server answers for a DFS path that is not one: MTW must not take this branch
    {"match": 'loadTable("pp_ticks"', "error": "loadTable: pp_ticks is not a DFS database path"},
    {"match": "schema(pp_ticks)", "reply": schema_reply("ticks")},
]


def _ticks(n: int, first: int = 0) -> dict:
    return {"ts": (np.arange(first, first + n, dtype=np.int64) * 1_000_000) + T0,
            "symbol": np.array(["A.US", "B.US"] * (n // 2) + ["A.US"] * (n % 2), dtype=object),
            "price": 10.0 + np.arange(first, first + n), "volume": np.ones(n)}


@pytest.mark.parametrize("wire", [_TICK_RULES], indirect=True)
def test_tick_writer_builds_the_writer_for_the_stream_table_and_sends_typed_columns(wire):
    tw = TickWriter(_target(wire), CFG, batch_size=100, throttle_s=0.05, threads=2)
    assert tw.write(_ticks(6)) == 6
    tw.flush()
    scripts = wire.scripts()
    assert "schema(pp_ticks)" in scripts  # dbPath="" and tableName="pp_ticks" (api_python3 MTW page)
    assert not any("loadTable" in s for s in scripts)
    inserts = wire.calls("tableInsert{pp_ticks}")
    assert inserts, [r.get("function") for r in wire.calls()]
    tables = [c["args"][0] for c in inserts]
    assert sum(t["rows"] for t in tables) == 6
    for t in tables:
        assert list(t["columns"]) == dschema.columns("ticks")
        assert [t["columns"][c]["type"] for c in t["columns"]] == [
            "TIMESTAMP", "SYMBOL", "DOUBLE", "DOUBLE", "CHAR", "DOUBLE", "DOUBLE"]
    prices = sorted(p for t in tables for p in t["columns"]["price"]["value"])
    assert prices == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    ts = sorted(v for t in tables for v in t["columns"]["ts"]["value"])
    assert ts == [T0 // 1_000_000 + i for i in range(6)]  # milliseconds, the deployed TIMESTAMP
    # rows are routed to the writer threads by symbol (partitionCol="symbol")
    assert all(len(set(t["columns"]["symbol"]["value"])) == 1 for t in tables)


@pytest.mark.parametrize("wire", [[{"match": "tableInsert{pp_ticks}", "error": "The connection was reset"}]
                                  + _TICK_RULES], indirect=True)
def test_a_batch_refused_after_the_writer_failed_is_kept_with_the_unsent_rows(wire):
    """The endpoint refuses every send: the writer's threads exit and the 3.0 client then
    RAISES on insertUnwrittenData ("thread is exiting"). Every accepted row must stay pending:
    the unsent first batch and the whole refused one (issue 15, item 2)."""
    tw = TickWriter(_target(wire), CFG, batch_size=1, throttle_s=0.01, threads=1)
    tw.write(_ticks(3))
    deadline = time.monotonic() + 10
    caught = None
    while caught is None and time.monotonic() < deadline:
        try:
            tw.write(_ticks(2, first=100))  # accepted while the threads still live, refused after
        except IngestError as exc:
            caught = exc
        time.sleep(0.05)
    assert caught is not None, "the writer never reported its failure"
    accepted = {10.0, 11.0, 12.0, 110.0, 111.0}  # every price handed to write()
    assert accepted <= {r[2] for r in tw.pending}, sorted(r[2] for r in tw.pending)
    assert str(len(tw.pending)) in str(caught)


# ---------------------------------------------------------------- history store
@pytest.mark.parametrize("wire", [[
    {"match": "select ts as datetime", "reply": {"__table__": {
        "datetime": {"__type__": "TIMESTAMP", "value": [T0 // 1_000_000, T0 // 1_000_000 + 1]},
        "symbol": {"__type__": "SYMBOL", "value": ["A.US", "A.US"]},
        "price": [10.0, 10.5]}}},
]], indirect=True)
def test_history_read_sends_the_documented_query_and_reads_the_reply(wire):
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    session = connect(_target(wire))
    store = DolphinDBStore(Settings(), session=session, config=CFG)
    got = store.read("ticks", ["A.US"], pd.Timestamp(T0), pd.Timestamp(T0 + 60_000_000_000), ["price"])
    store.close()
    expected = dsql.read_sql(CFG, "ticks", ["A.US"], T0, T0 + 60_000_000_000, ["price"])
    assert wire.scripts() == [expected]
    assert signature_problems([RenderedScript("read", expected)]) == []
    assert got["price"].tolist() == [10.0, 10.5]
    assert got.index.get_level_values("datetime")[1] == pd.Timestamp(T0 + 1_000_000)


@pytest.mark.parametrize("wire", [[{"match": 'schema(loadTable("dfs://pp_ticks"',
                                    "reply": schema_reply("ticks")}]], indirect=True)
def test_history_write_appends_typed_columns_to_the_dfs_table(wire):
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    session = connect(_target(wire))
    store = DolphinDBStore(Settings(), session=session, config=CFG)
    frame = pd.DataFrame(_ticks(4))
    assert store.write("ticks", frame) == 4
    store.close()
    appends = [c for c in wire.calls() if c["function"].startswith("tableInsert")]
    assert [c["function"] for c in appends] == ["tableInsert{loadTable('dfs://pp_ticks', 'ticks')}"]
    cols = appends[0]["args"][0]["columns"]
    assert [cols[c]["type"] for c in dschema.columns("ticks")] == [
        "TIMESTAMP", "SYMBOL", "DOUBLE", "DOUBLE", "CHAR", "DOUBLE", "DOUBLE"]
    assert cols["ts"]["value"] == [T0 // 1_000_000 + i for i in range(4)]


# ---------------------------------------------------------------- subscription
_SUBSCRIBE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pydantic import SecretStr
    from pyplatform.dolphindb.connection import DolphinDBTarget
    from pyplatform.dolphindb.subscriber import OffsetBook, SignalSubscriber
    t = DolphinDBTarget("127.0.0.1", int(sys.argv[1]), "admin", SecretStr("pw"))
    sub = SignalSubscriber(t, lambda b: None, OffsetBook(Path(sys.argv[2])), action="risk")
    print(sub.start(), flush=True)
    time.sleep(1.0)
""")


@pytest.mark.parametrize("wire", [[
    {"match": "getPersistenceMeta", "reply": {"totalSize": 42, "memoryOffset": 0}},
    {"match": "getSubscriptionTopic", "reply": ["127.0.0.1:8848:local8848/pp_signals/risk",
                                                 dschema.columns("signals")]},
]], indirect=True)
def test_signal_subscriber_asks_for_the_table_from_the_next_offset(wire, tmp_path):
    # in a child process: the client's streaming threads outlive the test and may crash on a
    # reply a real server would not give (the endpoint stops after the subscription request)
    proc = subprocess.run([sys.executable, "-c", _SUBSCRIBE, str(wire.port), str(tmp_path / "o.json")],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert proc.stdout.split()[:1] == ["42"], proc.stderr[-2000:]
    assert wire.scripts()[0] == 'getPersistenceMeta(objByName("pp_signals"))'
    topic = wire.calls("getSubscriptionTopic")[0]["args"]
    assert [(a["type"], a["value"]) for a in topic] == [("STRING", "pp_signals"), ("STRING", "risk")]
    pub = wire.calls("publishTable")
    assert pub, [r.get("function") for r in wire.calls()]
    args = pub[0]["args"]
    # publishTable(host, port, tableName, actionName, offset, filter, allowExists)
    assert [(a["type"], a["value"]) for a in args[2:5]] == [
        ("STRING", "pp_signals"), ("STRING", "risk"), ("LONG", 42)]


# ---------------------------------------------------------------- preflight
def test_preflight_request_is_read_only_and_documented():
    text = preflight_script(CFG)
    assert signature_problems([RenderedScript("preflight", text)]) == []
    created = {"database", "createPartitionedTable", "enableTableShareAndPersistence", "mkdir",
               "createTimeSeriesEngine", "createNarrowReactiveStateEngine", "subscribeTable"}
    assert not {c.name for c in parse_calls(text)} & created
    assert snapshot_dir_script(DeployConfig(snapshot_dir="/home/ddb/snaps")) == (
        'if(!exists("/home")) { mkdir("/home") }\n'
        'if(!exists("/home/ddb")) { mkdir("/home/ddb") }\n'
        'if(!exists("/home/ddb/snaps")) { mkdir("/home/ddb/snaps") }\n')


@pytest.mark.parametrize("wire, setting, fix", [
    ([preflight_rule(newValuePartitionPolicy="skip")], "newValuePartitionPolicy", "newValuePartitionPolicy=add"),
    ([preflight_rule(persistenceDir="")], "persistenceDir", "persistenceDir=/data/ddb/streams"),
    ([preflight_rule(version="2.00.9.4 2023.03.01")], "version()", "upgrade the server"),
    ([preflight_rule(isAdmin=False, dbOwner="")], "user permissions", "grant(userId, DB_OWNER)"),
], indirect=["wire"])
def test_a_failed_precondition_stops_deploy_before_anything_is_created(wire, setting, fix):
    session = connect(_target(wire))
    with pytest.raises(PreflightError, match=re.escape(setting)) as err:
        Deployer(session, CFG, library_metrics()).deploy()
    session.close()
    assert fix in str(err.value)
    assert wire.scripts() == [preflight_script(CFG)]  # the only request: nothing was created


@pytest.mark.parametrize("wire", [[preflight_rule(version="2.00.12.3 2024.01.01")]], indirect=True)
def test_an_older_server_gets_the_wilder_fallback_and_says_so(wire):
    metrics = library_metrics()
    session = connect(_target(wire))
    d = Deployer(session, CFG, metrics)
    d.deploy()
    session.close()
    dropped = sorted(m.name for m in metrics if "wilder(" in m.dolphindb)
    assert dropped == ["atr_14", "natr_14", "rsi_14"]
    assert any("< 3.00.0" in f and all(n in f for n in dropped) for f in d.report.fallbacks), d.report.fallbacks
    sent = "\n".join(wire.scripts())
    assert "wilder(" not in sent and "rsi_14" not in sent and '"sma_20"' in sent
    assert sorted(m.name for m in d.metrics) == sorted(set(m.name for m in metrics) - set(dropped))


def test_unreachable_server_fails_fast_naming_the_setting(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match="PYPLATFORM_DOLPHINDB_URI") as err:
        connect(DolphinDBTarget("127.0.0.1", port, "admin", SecretStr("pw")), timeout_s=2)
    assert "pw" not in str(err.value) and time.monotonic() - t0 < 30


@pytest.mark.parametrize("wire", [[preflight_rule(newValuePartitionPolicy="skip")]], indirect=True)
def test_cli_status_shows_the_preflight_and_deploy_refuses(wire, monkeypatch):
    from typer.testing import CliRunner

    from pyplatform.cli.dolphindb import app

    from pyplatform.config import reset_settings_cache

    monkeypatch.setenv("PYPLATFORM_DOLPHINDB_URI", f"dolphindb://admin:pw@127.0.0.1:{wire.port}")
    reset_settings_cache()
    try:
        out = CliRunner().invoke(app, ["status"])
        res = CliRunner().invoke(app, ["deploy"])
    finally:
        monkeypatch.delenv("PYPLATFORM_DOLPHINDB_URI")
        reset_settings_cache()
    assert "FAIL newValuePartitionPolicy: 'skip' (need add)" in out.output, out.output
    assert "ok   persistenceDir: '/data/ddb/streams'" in out.output
    assert res.exit_code == 1 and "newValuePartitionPolicy=add" in res.output
    assert not any("createPartitionedTable" in s for s in wire.scripts())


def test_publish_sends_add_reactive_metrics_with_checked_metacode(wire):
    session = connect(_target(wire))
    d = Deployer(session, CFG, library_metrics())
    d.publish([FactorMetric("up_or_flat", to_dolphindb("(close >= prev(close)) || (close == open)"))])
    session.close()
    [script] = wire.scripts()
    [call] = [c for c in parse_calls(script) if c.name == "addReactiveMetrics"]
    assert call.arg("name").literal == "pp_factor_engine"
    assert call.arg("metricNames").text == '["up_or_flat"]'
    [metric] = _metrics_of(script)
    assert metacode_problems(metric) == [] and "nullCompare(==" not in metric


@pytest.mark.parametrize("wire", [[
    {"match": "select count(ts) as n", "reply": {"__table__": {
        "symbol": {"__type__": "SYMBOL", "value": ["A.US"]}, "n": {"__type__": "INT", "value": [3]}}}},
    {"match": "select max(ts) as datetime", "reply": {"__table__": {  # never A.US: every window is tried
        "datetime": {"__type__": "TIMESTAMP", "value": [T0 // 1_000_000]},
        "symbol": {"__type__": "SYMBOL", "value": ["B.US"]}, "price": [1.0]}}},
]], indirect=True)
def test_undated_cross_section_stays_within_max_partitions_per_query(wire):
    """Item 11: no query of the daily x 50-bucket tick table may span more than
    maxPartitionNumPerQuery (65,536) partitions: the widest window is 65536 // 50 - 1 days."""
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    session = connect(_target(wire))
    store = DolphinDBStore(Settings(), session=session, config=CFG)
    store.cross_section("ticks", at=pd.Timestamp(T0), columns=["price"])
    store.close()
    sent = wire.scripts()
    widest = (65_536 // CFG.tick_hash_buckets - 1) * 86_400_000_000_000
    bound = f"ts >= {dsql.time_literal(T0 - widest + 1, CFG, round_up=True)}"
    assert bound in sent[0] and sent[0].startswith("select count(ts) as n")  # the symbols wanted
    latest = [s for s in sent if s.startswith("select max(ts)")]
    assert len(latest) == 5 and bound in latest[-1]
    assert all(" ts >= " in s for s in sent)  # nothing unbounded


_DAYS = {"__type__": "DATE", "value": list(range(19_000, 19_000 + 3_000))}  # 3,000 daily partitions


@pytest.mark.parametrize("wire", [[
    {"match": "partitionSchema", "reply": _DAYS},
    {"match": "select count(ts) as n", "reply": {"__table__": {
        "symbol": {"__type__": "SYMBOL", "value": ["A.US"]}, "n": {"__type__": "INT", "value": [1]}}}},
    {"match": "select ts as datetime", "reply": {"__table__": {
        "datetime": {"__type__": "TIMESTAMP", "value": [T0 // 1_000_000]},
        "symbol": {"__type__": "SYMBOL", "value": ["A.US"]}, "price": [10.0]}}},
]], indirect=True)
def test_undated_reads_and_symbols_are_chunked_below_max_partitions_per_query(wire):
    """Item 11: 3,000 days x 50 buckets = 150,000 partitions; every query stays within
    65,536 (at most 1,309 days of the tick table) and together they cover every day."""
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    session = connect(_target(wire))
    store = DolphinDBStore(Settings(), session=session, config=CFG)
    assert store.symbols("ticks") == ["A.US"]
    got = store.read("ticks", columns=["price"])
    store.close()
    day = 86_400_000_000_000
    first, last = 19_000 * day, (19_000 + 3_000) * day
    sent = [s for s in wire.scripts() if "partitionSchema" not in s]
    sym_q = [s for s in sent if s.startswith("select count(ts)")]
    read_q = [s for s in sent if s.startswith("select ts as datetime")]
    widest = (65_536 // CFG.tick_hash_buckets - 1) * day
    n = -(-(last - first) // widest)
    assert len(sym_q) == len(read_q) == n == 3
    bounds = [(first + i * widest, min(first + (i + 1) * widest, last)) for i in range(n)]
    for q in (sym_q, read_q):
        for s, (lo, hi) in zip(q, bounds):
            assert f"ts >= {dsql.time_literal(lo, CFG, round_up=True)}" in s
            assert f"ts < {dsql.time_literal(hi, CFG, round_up=True)}" in s
    assert len(got) == 3  # one row per chunk reply, concatenated in order


# ---------------------------------------------------------------- partition sizing (item 12)
# The database/table requests of the sized layout, hand-written from docs/dolphindb.md
# ("Partition sizing"): 1-minute bars VALUE month x HASH(symbol, 10); daily bars yearly
# RANGE over 1970-2099 (131 MONTH boundaries, one every 12 months); factors VALUE day x
# HASH(symbol, 10) sorted symbol, factor, ts with both sort-key columns hashed (50 x 20
# buckets: at most 1,000 sort keys a partition).
_SIZED = {
    ("database", "dfs://pp_bars_1m"):
        'database(directory="dfs://pp_bars_1m", partitionType=COMPO, partitionScheme=[database(directory="", '
        'partitionType=VALUE, partitionScheme=2000.01M..2040.12M), database(directory="", partitionType=HASH, '
        'partitionScheme=[SYMBOL, 10])], engine="TSDB", atomic="CHUNK")',
    ("database", "dfs://pp_bars_1d"):
        'database(directory="dfs://pp_bars_1d", partitionType=RANGE, partitionScheme=1970.01M + (0..130) * 12, '
        'engine="TSDB", atomic="CHUNK")',
    ("createPartitionedTable", "factors"):
        'createPartitionedTable(dbHandle=database(directory="dfs://pp_factors"), table=table(1:0, '
        '`symbol`ts`factor`value, [SYMBOL, TIMESTAMP, SYMBOL, DOUBLE]), tableName="factors", '
        'partitionColumns=`ts`symbol, sortColumns=`symbol`factor`ts, keepDuplicates=LAST, '
        'sortKeyMappingFunction=[hashBucket{, 50}, hashBucket{, 20}])',
    ("createPartitionedTable", "bars_1d"):
        'createPartitionedTable(dbHandle=database(directory="dfs://pp_bars_1d"), table=table(1:0, '
        '`ts`symbol`open`high`low`close`volume`vwap`trades, [TIMESTAMP, SYMBOL, DOUBLE, DOUBLE, DOUBLE, DOUBLE, '
        'DOUBLE, DOUBLE, INT]), tableName="bars_1d", partitionColumns=`ts, sortColumns=`symbol`ts, '
        'keepDuplicates=LAST, sortKeyMappingFunction=[hashBucket{, 500}])',
}


def _sized_calls(sent: list[str]) -> dict:
    out = {}
    for c in (c for s in sent for c in parse_calls(s)):
        if c.name == "database" and c.arg("partitionType") is not None:
            out[("database", c.arg("directory", 0).literal)] = c.text
        elif c.name == "createPartitionedTable":
            out[("createPartitionedTable", c.arg("tableName").literal)] = c.text
    return out


@pytest.mark.parametrize("wire", [[preflight_rule()]], indirect=True)
def test_deploy_sends_the_sized_partition_schemes(wire):
    session = connect(_target(wire))
    Deployer(session, CFG, library_metrics()).deploy()
    session.close()
    got = _sized_calls(wire.scripts())
    for key, text in _SIZED.items():
        assert got[key] == text, key
    # 1-minute bars are no longer partitioned by day
    assert "2020.01.01..2020.01.02" not in got[("database", "dfs://pp_bars_1m")]


_OLD_BARS_1M = {"layout:bars_1m:types": ["VALUE", "HASH"], "layout:bars_1m:time": 6}  # VALUE day x HASH
_NEW_LAYOUT = {"layout:ticks:types": ["VALUE", "HASH"], "layout:ticks:time": 6,
               "layout:bars_1m:types": ["VALUE", "HASH"], "layout:bars_1m:time": 7,
               "layout:bars_1d:types": "RANGE", "layout:bars_1d:time": 7,
               "layout:factors:types": "COMPO", "layout:factors:time": 6,  # the schema page's other form
               "layout:factors:col:factor": "SYMBOL",
               "layout:signals:types": "VALUE", "layout:signals:time": 7}


@pytest.mark.parametrize("wire", [[preflight_rule(**_OLD_BARS_1M)]], indirect=True)
def test_deploy_onto_a_database_of_the_old_layout_is_refused_naming_the_migration(wire):
    session = connect(_target(wire))
    with pytest.raises(PreflightError, match="layout dfs://pp_bars_1m") as err:
        Deployer(session, CFG, library_metrics()).deploy()
    session.close()
    assert "pyplatform dolphindb migrate" in str(err.value)
    assert "DATE (one partition per day)" in str(err.value)
    assert wire.scripts() == [preflight_script(CFG)]  # nothing was created


@pytest.mark.parametrize("wire", [[preflight_rule(**_NEW_LAYOUT)]], indirect=True)
def test_a_database_already_in_the_current_layout_deploys(wire):
    session = connect(_target(wire))
    d = Deployer(session, CFG, library_metrics())
    d.deploy()
    session.close()
    layout = [c for c in d.report.checks if c.name.startswith("layout ")]
    assert len(layout) == 5 and all(c.ok for c in layout), layout
    assert len(wire.scripts()) == 2 + len(deploy_plan(CFG, library_metrics()))


@pytest.mark.parametrize("wire", [[preflight_rule(**_OLD_BARS_1M)]], indirect=True)
def test_migrate_copies_only_the_database_in_the_old_layout(wire):
    from pyplatform.dolphindb.layout import migration_script

    session = connect(_target(wire))
    done, script = Deployer(session, CFG, library_metrics()).migrate()
    session.close()
    assert done == ("bars_1m",)
    assert wire.scripts() == [preflight_script(CFG), migration_script(CFG, ("bars_1m",))]
    assert signature_problems([RenderedScript("migrate", script)]) == []
    assert "pp_ticks" not in script and "pp_bars_1d" not in script and "pp_factors" not in script
    calls = parse_calls(script)
    mrs = [c for c in calls if c.name == "mr"]
    assert len(mrs) == 2 and all(c.arg("parallel").text == "false" for c in mrs)
    # first copy old -> copy, then copy -> the recreated database
    assert 'loadTable("dfs://pp_bars_1m", "bars_1m")' in mrs[0].arg("ds").text
    assert 'loadTable("dfs://pp_bars_1m_migrating", "bars_1m")' in mrs[1].arg("ds").text
    drops = [(i, c.arg("dbDir", 0).literal) for i, c in enumerate(calls) if c.name == "dropDatabase"]
    mr_at = [i for i, c in enumerate(calls) if c.name == "mr"]
    old_drop = next(i for i, p in drops if p == "dfs://pp_bars_1m")
    assert mr_at[0] < old_drop < mr_at[1]  # the old database goes only after it was copied
    # the recreated database has the new scheme
    assert _SIZED[("database", "dfs://pp_bars_1m")] in script
    # a count check guards each drop: the throw comes before the drop in the text
    assert script.index("nothing was dropped") < script.index('dropDatabase("dfs://pp_bars_1m")')


def test_cli_migrate_dry_run_prints_the_script_without_a_server(monkeypatch):
    from typer.testing import CliRunner

    from pyplatform.cli.dolphindb import app
    from pyplatform.dolphindb.layout import MIGRATABLE, migration_script

    monkeypatch.delenv("PYPLATFORM_DOLPHINDB_URI", raising=False)
    res = CliRunner().invoke(app, ["migrate", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output == migration_script(CFG, MIGRATABLE)
    refused = CliRunner().invoke(app, ["migrate"])
    assert refused.exit_code == 2 and "--yes" in refused.output


@pytest.mark.parametrize("wire", [[
    {"match": "select ts as datetime", "reply": {"__table__": {
        "datetime": {"__type__": "TIMESTAMP", "value": [T0 // 1_000_000]},
        "symbol": {"__type__": "SYMBOL", "value": ["A.US"]}, "close": [10.0]}}},
]], indirect=True)
def test_a_month_of_one_symbols_bars_is_one_prunable_query(wire):
    """Item 3 of the sizing brief: reads still name the partition columns with the
    operators DolphinDB prunes on (Tutorials_CN database.md, "查询分区表注意事项": <, <=, =,
    >, >=, in, between on a partition column), so a month of one symbol touches the month
    partitions it spans (here 2024.03M and 2024.04M) times one HASH bucket."""
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    session = connect(_target(wire))
    store = DolphinDBStore(Settings(), session=session, config=CFG)
    store.read("bars_1m", ["A.US"], pd.Timestamp("2024-03-04"), pd.Timestamp("2024-04-02"), ["close"])
    store.close()
    assert wire.scripts() == [
        'select ts as datetime, symbol, close from loadTable("dfs://pp_bars_1m", "bars_1m") '
        'where symbol in ["A.US"] and ts >= 2024.03.04T00:00:00.000 and ts < 2024.04.02T00:00:00.000 '
        'order by ts, symbol']


# 2023.10M and 2024.01M as DolphinDB MONTH values (months since year 0: 2023 * 12 + 9, 2024 * 12 + 0)
_MONTHS = {"__type__": "MONTH", "value": [2023 * 12 + 9, 2024 * 12 + 0]}


@pytest.mark.parametrize("wire", [[
    {"match": "partitionSchema", "reply": _MONTHS},
    {"match": "select ts as datetime", "reply": {"__table__": {
        "datetime": {"__type__": "TIMESTAMP", "value": [T0 // 1_000_000]},
        "symbol": {"__type__": "SYMBOL", "value": ["A.US"]}, "close": [10.0]}}},
]], indirect=True)
def test_an_undated_bars_read_is_bounded_by_the_month_partitions(wire):
    """An open range is closed with the first-level MONTH partitions: from the first
    month's first day to the day after the last month (2024.02.01), never unbounded."""
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    session = connect(_target(wire))
    store = DolphinDBStore(Settings(), session=session, config=CFG)
    store.read("bars_1m", columns=["close"])
    store.close()
    reads = [s for s in wire.scripts() if s.startswith("select ts as datetime")]
    assert reads == ['select ts as datetime, symbol, close from loadTable("dfs://pp_bars_1m", "bars_1m") '
                     'where ts >= 2023.10.01T00:00:00.000 and ts < 2024.02.01T00:00:00.000 order by ts, symbol']


@pytest.mark.parametrize("wire", [[preflight_rule(isAdmin=False, dbOwner="unreadable")]], indirect=True)
def test_a_refused_getUserAccess_is_reported_unknown_not_a_failure(wire):
    """getUserAccess is documented for the current user on the current page but as
    admin-only on the 2.00.11 zh page: a non-admin's refusal must not block a DB_OWNER."""
    session = connect(_target(wire))
    d = Deployer(session, CFG, library_metrics())
    d.deploy()
    session.close()
    [perm] = [c for c in d.report.checks if c.name == "user permissions"]
    assert perm.ok is None and "getUserAccess refused" in str(perm.value)
