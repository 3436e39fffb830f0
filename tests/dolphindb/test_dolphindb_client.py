"""The Python side without a server: configuration, SQL, conversions, tick writer, offsets.

Pure unit tests: the writer test uses a stand-in for MultithreadedTableWriter that
records calls (allowed for pure units); the real writer needs a server.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import SecretStr

from pyplatform.config import Settings
from pyplatform.dolphindb import sql as dsql
from pyplatform.dolphindb.connection import DolphinDBTarget, parse_uri, target_from_settings
from pyplatform.dolphindb.ingest import IngestError, TickWriter, tick_rows
from pyplatform.dolphindb.plan import signature_problems
from pyplatform.dolphindb.render import DeployConfig, RenderedScript
from pyplatform.dolphindb.subscriber import OffsetBook, SignalSubscriber, signals_to_arrow
from pyplatform.dolphindb.store import result_to_arrow, to_dolphin_frame
from pyplatform.store.frames import as_canonical
from pyplatform.store.tables import table_spec

CFG = DeployConfig()
T0 = pd.Timestamp("2024-03-04 09:30:00").value


# ---------------------------------------------------------------- configuration
def test_parse_uri_and_errors_mask_the_password():
    assert parse_uri("dolphindb://db1:9000") == ("db1", 9000, None, None)
    assert parse_uri("dolphindb://u:p%40ss@db1") == ("db1", 8848, "u", "p@ss")
    with pytest.raises(ValueError, match=r"dolphindb://u:\*\*\*@h:x") as err:
        parse_uri("dolphindb://u:secret@h:x")
    assert "secret" not in str(err.value)
    with pytest.raises(ValueError, match="must start with dolphindb://"):
        parse_uri("http://h:1")


def test_target_from_settings_reads_credentials_from_env_and_file(tmp_path, monkeypatch):
    s = Settings(dolphindb_uri="dolphindb://h:1", dolphindb_user="ops", dolphindb_password="pw")
    t = target_from_settings(s)
    assert (t.host, t.port, t.user, t.password.get_secret_value()) == ("h", 1, "ops", "pw")
    assert "pw" not in repr(t) and str(t) == "dolphindb://ops@h:1"
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    monkeypatch.setenv("PYPLATFORM_DOLPHINDB_PASSWORD_FILE", str(f))
    assert target_from_settings(Settings(dolphindb_uri="dolphindb://h:1")).password.get_secret_value() == "from-file"
    with pytest.raises(ValueError, match="PYPLATFORM_DOLPHINDB_URI"):
        target_from_settings(Settings())


# ---------------------------------------------------------------- SQL
def test_read_sql_is_half_open_and_rounds_ns_bounds_to_stored_ms():
    sql = dsql.read_sql(CFG, "ticks", ["AAPL.US", "EURUSD.GB"], T0 + 1, T0 + 60_000_000_000, ["price"])
    assert sql == ('select ts as datetime, symbol, price from loadTable("dfs://pp_ticks", "ticks") '
                   'where symbol in ["AAPL.US", "EURUSD.GB"] and ts >= 2024.03.04T09:30:00.001 '
                   "and ts < 2024.03.04T09:31:00.000 order by ts, symbol")
    ns = DeployConfig(time_type="NANOTIMESTAMP")
    assert dsql.time_literal(T0 + 7, ns) == "2024.03.04T09:30:00.000000007"


def test_sql_rejects_bad_symbols_tables_and_columns():
    with pytest.raises(ValueError, match=r'symbols\[1\] = \'x" or 1==1\''):
        dsql.read_sql(CFG, "ticks", ["AAPL.US", 'x" or 1==1'], None, None, None)
    with pytest.raises(ValueError, match="unknown history table 'quotes'"):
        dsql.read_sql(CFG, "quotes", None, None, None, None)
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['nope'\]"):
        dsql.read_sql(CFG, "bars_1m", None, None, None, ["nope"])
    assert "1 == 0" in dsql.read_sql(CFG, "ticks", [], None, None, None)


def test_generated_sql_uses_only_documented_functions():
    statements = [
        dsql.read_sql(CFG, "factors", ["A.US"], T0, T0 + 1, None),
        dsql.latest_sql(CFG, "bars_1m", None, T0, T0 + 1, None),
        dsql.resample_sql(CFG, "ticks", 300_000_000_000, None, T0, None),
        dsql.resample_sql(CFG, "bars_1m", 3_600_000_000_000, ["A.US"], None, None),
    ]
    assert signature_problems([RenderedScript(f"sql{i}", s) for i, s in enumerate(statements)]) == []
    assert "group by bar(ts, 300000) as datetime, symbol" in statements[2]
    with pytest.raises(ValueError, match="finer than the deployed time precision"):
        dsql.resample_sql(CFG, "ticks", 1_500, None, None, None)


# ---------------------------------------------------------------- conversions
def test_writes_are_converted_to_dfs_order_types_and_deduplicated_last():
    frame = pd.DataFrame({"ts": [T0, T0, T0 + 5], "symbol": ["A.US", "A.US", "B.US"],
                          "factor": ["f", "f", "f"], "value": [1.0, 2.0, 3.0]})
    out = to_dolphin_frame(as_canonical(table_spec("factors"), frame), "factors", CFG)
    assert list(out.columns) == ["symbol", "ts", "factor", "value"]
    assert out["value"].tolist() == [2.0, 3.0]  # the later write of (A.US, f, T0) wins
    assert out["ts"].dtype == np.dtype("datetime64[ms]")
    bars = pd.DataFrame({"ts": [T0], "symbol": ["A.US"], "open": [1.0], "high": [2.0], "low": [0.5],
                         "close": [1.5], "volume": [10.0], "trades": [3]})
    b = to_dolphin_frame(as_canonical(table_spec("bars_1m"), bars), "bars_1m", CFG)
    assert b["trades"].dtype == np.int32 and np.isnan(b["vwap"][0])


def test_query_results_become_the_store_shapes():
    got = pd.DataFrame({"datetime": pd.to_datetime([T0, T0]).astype("datetime64[ms]"),
                        "symbol": ["A.US", "B.US"], "price": [1.0, 2.0], "side": [1.0, np.nan]})
    t = result_to_arrow(got, "ticks", ["price", "side"])
    assert t.schema.field("datetime").type == pa.timestamp("ns")
    assert t.column("side").type == pa.int8() and t.column("side").to_pylist() == [1, None]
    empty = result_to_arrow(pd.DataFrame(), "bars_1m", None)
    assert empty.num_rows == 0 and "vwap" in empty.schema.names


# ---------------------------------------------------------------- tick writer
class _Info:
    def __init__(self, error: str = ""):
        self.errorInfo = error

    def hasError(self) -> bool:
        return bool(self.errorInfo)


class _FakeWriter:
    """Stands in for dolphindb.MultithreadedTableWriter as its documentation describes it:
    an erroring ``insertUnwrittenData`` queues nothing; rows queued by EARLIER calls that the
    (exited) threads never sent come back from ``getUnwrittenData``."""

    def __init__(self, fail_on_call: int | None = None, stuck: int = 0):
        self.fail_on_call, self.stuck = fail_on_call, stuck
        self.calls, self.queued = [], []

    def insertUnwrittenData(self, rows):
        self.calls.append(rows)
        if self.fail_on_call is not None and len(self.calls) >= self.fail_on_call:
            return _Info("writer threads exited: connection reset")
        self.queued.extend(rows)
        return _Info()

    def getUnwrittenData(self):
        return self.queued[len(self.queued) - self.stuck:] if self.stuck else []


def _ticks(n: int) -> dict:
    return {"ts": np.arange(n, dtype=np.int64) * 1_000_000 + T0, "symbol": np.array(["A.US"] * n, dtype=object),
            "price": np.linspace(10, 11, n), "volume": np.ones(n)}


def test_tick_rows_validate_and_order_columns():
    rows = tick_rows(_ticks(3), CFG)
    assert len(rows) == 3 and rows[0][1] == "A.US" and rows[0][4] == 0  # side defaults to 0
    assert rows[1][0] == np.datetime64(T0 + 1_000_000, "ns").astype("datetime64[ms]")
    bad = _ticks(3)
    bad["price"][2] = np.nan
    with pytest.raises(ValueError, match="row 2 has price=nan"):
        tick_rows(bad, CFG)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['volume'\]"):
        tick_rows({k: v for k, v in _ticks(1).items() if k != "volume"}, CFG)


def test_tick_writer_sends_a_batch_in_one_call_and_keeps_unwritten_rows():
    # Earlier expectation ("2 of 3 rows kept") modelled a failing insert that queued part of
    # its own batch, which the writer's documentation does not describe; the model now is
    # the documented one, and the failed batch must never be dropped (issue 15, item 2).
    target = DolphinDBTarget("h", 1, "u", SecretStr("p"))
    first = _FakeWriter(fail_on_call=2, stuck=2)  # call 1 queued 3 rows, 2 never sent; call 2 refused
    writers = [first, _FakeWriter()]
    tw = TickWriter(target, CFG, writer_factory=lambda: writers.pop(0))
    assert tw.write(_ticks(3)) == 3 and len(first.calls) == 1 and len(first.calls[0]) == 3
    batch = _ticks(4)
    batch["price"] = np.array([20.0, 21.0, 22.0, 23.0])
    with pytest.raises(IngestError, match=r"6 row\(s\) kept for retry"):
        tw.write(batch)
    # the 2 unsent rows of the first batch, then all 4 rows of the refused one, in order
    assert [r[2] for r in tw.pending] == [10.5, 11.0, 20.0, 21.0, 22.0, 23.0]
    assert tw.write(_ticks(1)) == 1  # a fresh writer gets the kept rows plus the new one
    assert tw.pending == [] and len(writers) == 0


# ---------------------------------------------------------------- signals subscription
def _signals(n: int) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime(np.arange(n) * 1_000_000 + T0).astype("datetime64[ms]"),
                         "symbol": ["A.US"] * n, "strategy": ["s"] * n, "direction": np.ones(n, np.int8),
                         "strength": np.ones(n), "reason": ["r"] * n, "factors": ["{}"] * n})


def test_offset_book_persists_and_never_moves_back(tmp_path):
    book = OffsetBook(tmp_path / "offsets.json")
    assert book.get("risk") is None
    book.ack("risk", 5)
    assert OffsetBook(tmp_path / "offsets.json").get("risk") == 5
    with pytest.raises(ValueError, match="would move back from 5 to 3"):
        book.ack("risk", 3)


def test_subscriber_acks_only_after_the_handler_succeeds(tmp_path):
    seen: list[pa.Table] = []
    target = DolphinDBTarget("h", 1)
    sub = SignalSubscriber(target, seen.append, OffsetBook(tmp_path / "o.json"), action="risk")
    sub.next_offset = 10
    sub.on_batch(_signals(3))
    assert sub.book.get("risk") == 13 and seen[0].schema.field("ts").type == pa.int64()
    assert seen[0].column("ts").to_pylist() == [T0, T0 + 1_000_000, T0 + 2_000_000]

    def boom(_):
        raise RuntimeError("risk down")

    sub.handler = boom
    with pytest.raises(RuntimeError):
        sub.on_batch(_signals(2))
    assert sub.book.get("risk") == 13  # the failed batch is delivered again after a restart
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['reason'"):
        signals_to_arrow(_signals(1).drop(columns=["reason"]))
