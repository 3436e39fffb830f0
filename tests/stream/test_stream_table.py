"""StreamTable: append, validation, read, subscriptions, acks, reopen, listeners, threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from stream_helpers import make_ticks

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import TICKS
from pyplatform.stream import (
    OFFSET_ACKED, OFFSET_NEW, OFFSET_OLDEST, RetentionError, SchemaError, StreamTable, StreamTables,
)


def test_append_returns_offsets_and_accepts_all_batch_kinds(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    b = make_ticks(4)
    assert t.append(b) == (0, 3)
    assert t.append(pd.DataFrame(make_ticks(3, 4))) == (4, 6)
    assert t.append(pa.RecordBatch.from_pydict(make_ticks(2, 7), schema=TICKS)) == (7, 8)
    assert t.append(pa.table(make_ticks(1, 9)).cast(TICKS)) == (9, 9)
    assert t.append({k: v[:0] for k, v in b.items()}) == (10, 9)  # empty: nothing numbered
    out = t.read()
    assert out.column("offset").to_pylist() == list(range(10))
    assert out.column("ts").to_pylist() == [i * 1_000_000 for i in range(10)]
    assert out.column("symbol").to_pylist()[:4] == list(b["symbol"])


def test_bad_batches_are_rejected_whole_with_the_column_named(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    t.append(make_ticks(3))
    b = make_ticks(3, 3)
    cases = [
        ({k: v for k, v in b.items() if k != "price"}, "missing column.*price"),
        ({**b, "junk": np.zeros(3)}, "unexpected column.*junk"),
        ({**b, "price": np.array(["1.0", "x", "2"])}, "column 'price'"),
        ({**b, "ts": np.array([1.5, 2.0, 3.0])}, "column 'ts'"),
        ({**b, "volume": np.zeros(2)}, "column 'volume' has 2 rows"),
        ([1, 2, 3], None),
    ]
    for bad, pattern in cases:
        with pytest.raises((SchemaError, TypeError), match=pattern):
            t.append(bad)
    assert t.next_offset == 3
    t.close()
    assert StreamTable("ticks", None, tmp_path, clock=SimClock()).read().num_rows == 3


def test_offset_column_is_reserved_and_schema_mismatch_on_reopen(tmp_path):
    with pytest.raises(SchemaError, match="reserved"):
        StreamTable("x", pa.schema([("offset", pa.int64())]), clock=SimClock())
    StreamTable("ticks", TICKS, tmp_path, clock=SimClock()).close()
    with pytest.raises(SchemaError, match="differs"):
        StreamTable("ticks", pa.schema([("ts", pa.int64())]), tmp_path, clock=SimClock())
    with pytest.raises(ValueError, match="invalid table name"):
        StreamTable("../evil", TICKS, tmp_path, clock=SimClock())


def test_read_ranges_span_disk_and_memory(tmp_path):
    # A 5-row memory window forces older rows to come from the segment files.
    t = StreamTable("ticks", TICKS, tmp_path, memory_rows=5, segment_bytes=2000, clock=SimClock())
    for i in range(10):
        t.append(make_ticks(3, 3 * i))
    assert len(list((tmp_path / "ticks").glob("*.seg"))) > 1
    full = t.read()
    assert full.column("offset").to_pylist() == list(range(30))
    assert full.column("ts").to_numpy().tolist() == [i * 1_000_000 for i in range(30)]
    part = t.read(4, 26)
    assert part.column("offset").to_pylist() == list(range(4, 26))
    assert part.column("ts").to_pylist() == full.column("ts").to_pylist()[4:26]
    assert t.read(30).num_rows == 0
    assert t.read(28, 1000).num_rows == 2


def test_subscription_offsets_poll_batches_and_filters():
    t = StreamTable("ticks", TICKS, clock=SimClock())
    t.append(make_ticks(10))
    new = t.subscribe("new")
    old = t.subscribe("old", offset=OFFSET_OLDEST, batch_size=4)
    mid = t.subscribe("mid", offset=7)
    only = t.subscribe("only", offset=0, filter={"symbol": {"AAPL.US"}})
    big = t.subscribe("big", offset=0, filter=lambda tb: tb.column("volume").to_numpy() > 50)
    assert new.poll() is None
    assert [len(old.poll()) for _ in range(3)] == [4, 4, 2] and old.poll() is None
    assert mid.poll().column("offset").to_pylist() == [7, 8, 9]
    rows = t.read()
    got = only.poll()
    want = [o for o, s in zip(rows["offset"].to_pylist(), rows["symbol"].to_pylist()) if s == "AAPL.US"]
    assert got.column("offset").to_pylist() == want and set(got["symbol"].to_pylist()) == {"AAPL.US"}
    want_big = [o for o, v in zip(rows["offset"].to_pylist(), rows["volume"].to_pylist()) if v > 50]
    assert big.poll().column("offset").to_pylist() == want_big
    t.append(make_ticks(2, 10))
    assert new.poll().column("offset").to_pylist() == [10, 11]
    with pytest.raises(ValueError, match="already subscribed"):
        t.subscribe("new")
    with pytest.raises(ValueError, match="filter column 'nope'"):
        t.subscribe("f", filter={"nope": [1]})
    with pytest.raises(ValueError, match="outside"):
        t.subscribe("far", offset=99)


def test_ack_is_persisted_and_resumes_after_reopen(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    t.append(make_ticks(20))
    sub = t.subscribe("writer", offset=OFFSET_ACKED, batch_size=8)
    assert sub.position == 0  # never acked: start at the oldest row, lose nothing
    first = sub.poll()
    sub.ack()
    assert t.acked("writer") == 7
    with pytest.raises(ValueError, match="move back"):
        t.ack("writer", 3)
    with pytest.raises(ValueError, match="cannot ack offset 99"):
        t.ack("writer", 99)
    t.close()
    t2 = StreamTable("ticks", None, tmp_path, clock=SimClock())
    assert (t2.next_offset, t2.acked("writer")) == (20, 7)
    sub2 = t2.subscribe("writer", offset=OFFSET_ACKED)
    rest = sub2.poll()
    assert rest.column("offset").to_pylist() == list(range(8, 20))
    # The replayed rows are the rows originally written.
    assert first.column("price").to_pylist() + rest.column("price").to_pylist() == make_ticks(20)["price"].tolist()


def test_handler_pump_and_failed_handler_keeps_position():
    t = StreamTable("ticks", TICKS, clock=SimClock())
    seen: list[int] = []
    fail = {"on": True}

    def handler(tb):
        if fail["on"]:
            raise RuntimeError("boom")
        seen.extend(tb.column("offset").to_pylist())

    sub = t.subscribe("h", handler, offset=OFFSET_NEW, batch_size=3)
    t.append(make_ticks(7))
    with pytest.raises(RuntimeError, match="boom"):
        t.pump()
    assert sub.position == 0
    fail["on"] = False
    assert t.pump() == 7
    assert seen == list(range(7))


def test_delivery_threads_slow_subscriber_never_blocks_writer_nor_loses_rows():
    t = StreamTable("ticks", TICKS, clock=SimClock())
    fast, slow = [], []
    release = threading.Event()

    def slow_handler(tb):
        release.wait(5)  # stuck until the writer is done
        slow.extend(tb.column("offset").to_pylist())

    t.subscribe("fast", lambda tb: fast.extend(tb.column("offset").to_pylist()), offset=0, batch_size=50)
    t.subscribe("slow", slow_handler, offset=0, batch_size=7)
    t.start()
    for i in range(40):
        t.append(make_ticks(10, 10 * i))
    assert t.next_offset == 400  # the writer finished while "slow" was blocked
    release.set()
    deadline = time.monotonic() + 10
    while (len(fast) < 400 or len(slow) < 400) and time.monotonic() < deadline:
        time.sleep(0.01)
    t.close()
    assert fast == list(range(400))
    assert slow == list(range(400))


def test_throttle_coalesces_rows_into_bigger_batches():
    t = StreamTable("ticks", TICKS, clock=SimClock())
    sizes = []
    t.subscribe("t", lambda tb: sizes.append(tb.num_rows), offset=0, batch_size=1000, throttle=0.3)
    t.start()
    for i in range(10):
        t.append(make_ticks(5, 5 * i))
    deadline = time.monotonic() + 10
    while sum(sizes) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    t.close()
    assert sum(sizes) == 50
    assert len(sizes) < 10  # ten 5-row appends arrived as fewer, larger deliveries


def test_listeners_are_called_after_each_append_and_can_be_removed():
    t = StreamTable("ticks", TICKS, clock=SimClock())
    calls = []
    remove = t.add_listener(lambda a, b: calls.append((a, b)))
    t.add_listener(lambda a, b: 1 / 0)  # a broken listener does not fail the writer
    t.append(make_ticks(3))
    t.append(make_ticks(2, 3))
    remove()
    t.append(make_ticks(1, 5))
    assert calls == [(0, 2), (3, 4)]


def test_registry_shares_tables_by_name_and_reopens_from_disk(tmp_path):
    reg = StreamTables(tmp_path, clock=SimClock())
    a = reg.get_table("ticks", TICKS)
    assert reg.get_table("ticks") is a
    a.append(make_ticks(4))
    with pytest.raises(KeyError, match="bars"):
        reg.get_table("bars")
    reg.close()
    reg2 = StreamTables(tmp_path, clock=SimClock())
    assert reg2.get_table("ticks").next_offset == 4
    assert "ticks" in reg2 and reg2.names() == ["ticks"]
    reg2.close()


def test_one_writer_many_concurrent_pollers_see_every_row_once(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, memory_rows=50, segment_bytes=4000, clock=SimClock())
    subs = [t.subscribe(f"r{i}", offset=0, batch_size=bs) for i, bs in enumerate((1, 13, 1000))]
    seen = {s.action: [] for s in subs}
    done = threading.Event()

    def reader(sub):
        while True:
            finished = done.is_set()
            rows = sub.poll()
            if rows is None:
                if finished:
                    return
                time.sleep(0.001)
                continue
            seen[sub.action].extend(rows.column("offset").to_pylist())

    threads = [threading.Thread(target=reader, args=(s,)) for s in subs]
    for th in threads:
        th.start()
    for i in range(60):
        t.append(make_ticks(5, 5 * i))
    done.set()
    for th in threads:
        th.join(20)
    for action, offsets in seen.items():
        assert offsets == list(range(300)), action


def test_acked_position_behind_retention_is_a_retention_error(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, segment_bytes=800, retention_rows=20, clock=SimClock())
    t.append(make_ticks(5))
    t.ack("reader", 2)
    for i in range(1, 20):
        t.append(make_ticks(5, 5 * i))
    with pytest.raises(RetentionError) as err:
        t.subscribe("reader", offset=OFFSET_ACKED)
    assert err.value.requested == 3 and err.value.oldest_offset == t.oldest_offset > 3


def test_registry_from_settings_uses_data_dir_and_fsync_policy(tmp_path):
    from pyplatform.config import Settings

    reg = StreamTables.from_settings(Settings(data_dir=tmp_path, fsync="always"), retention_rows=10)
    t = reg.get_table("ticks", TICKS)
    assert t.options.fsync == "always" and t.options.retention_rows == 10
    assert t.directory == tmp_path / "stream" / "ticks"
    reg.close()


def test_a_table_and_a_registry_need_a_clock(tmp_path):
    # A table that silently read wall time would make a backtest's age retention depend on
    # when it ran: the clock has no default.
    with pytest.raises(TypeError, match="clock"):
        StreamTable("ticks", TICKS)
    with pytest.raises(TypeError, match="clock"):
        StreamTable("ticks", TICKS, tmp_path)
    with pytest.raises(TypeError, match="clock"):
        StreamTables(tmp_path)


def test_the_sim_clock_of_a_registry_drives_age_retention_on_append(tmp_path):
    clock = SimClock(10**18)
    reg = StreamTables(tmp_path, clock=clock)
    t = reg.get_table("ticks", TICKS, segment_bytes=1000, retention_age_s=60)
    assert t.clock is clock
    for i in range(10):
        t.append(make_ticks(5, 5 * i))
    segments = sorted((tmp_path / "ticks").glob("*.seg"), key=lambda p: int(p.stem))
    assert len(segments) > 2 and t.oldest_offset == 0  # nothing is older than 60 s of sim time
    clock.advance(59 * 10**9)
    t.append(make_ticks(5, 50))
    assert t.oldest_offset == 0  # 59 s: still kept (wall time passing changes nothing)
    clock.advance(2 * 10**9)
    t.append(make_ticks(5, 55))  # the append applies retention at the clock's 61 s
    left = sorted((tmp_path / "ticks").glob("*.seg"), key=lambda p: int(p.stem))
    assert t.oldest_offset == int(left[0].stem) > 0 and len(left) < len(segments)
    with pytest.raises(RetentionError):
        t.read(0)
    assert t.read(t.oldest_offset).column("offset").to_pylist() == list(range(t.oldest_offset, 60))
    reg.close()
