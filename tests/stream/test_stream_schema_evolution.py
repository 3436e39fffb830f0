"""Schema evolution of stream tables: nullable columns added while rows keep flowing.

Rows before the change read back with the new columns null: from the memory window, from
the on-disk log, after reopening, in another process and through subscriptions. The change
is crash-safe (schema replaced atomically after the earlier rows are fsynced).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pyplatform.clock import SimClock
from pyplatform.stream import StreamTable, StreamTables
from pyplatform.stream.errors import SchemaError
from pyplatform.stream.log import read_schema

BASE = pa.schema([pa.field("ts", pa.int64(), nullable=False), ("symbol", pa.string()), ("a", pa.float64())])
REPO = Path(__file__).resolve().parents[2]


def rows(start: int, n: int, *, c: bool = False, d: bool = False) -> dict:
    ts = np.arange(start, start + n, dtype=np.int64)
    out = {"ts": ts, "symbol": [f"S{i % 3}.US" for i in range(start, start + n)], "a": ts * 1.0}
    if c:
        out["c"] = ts * 10.0
    if d:
        out["d"] = [f"x{i}" for i in ts]
    return out


def expected_c(n_before: int, n_total: int) -> list:
    return [None] * n_before + [float(i * 10) for i in range(n_before, n_total)]


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_added_column_reads_null_before_the_change_and_values_after(tmp_path, where):
    # memory_rows=1 forces every earlier row to come back from the segment log
    t = (StreamTable("f", BASE, clock=SimClock()) if where == "memory"
         else StreamTable("f", BASE, tmp_path, memory_rows=1, fsync="never", clock=SimClock()))
    t.append(rows(0, 4))
    t.append(rows(4, 3))
    schema = t.add_columns([pa.field("c", pa.float64())])
    assert schema.names == ["ts", "symbol", "a", "c"] and t.schema.equals(schema)
    t.append(rows(7, 5, c=True))
    got = t.read()
    assert got.column_names == ["ts", "symbol", "a", "c", "offset"]
    assert got.column("c").to_pylist() == expected_c(7, 12)
    assert got.column("a").to_pylist() == [float(i) for i in range(12)]
    # a read that straddles the boundary, and one entirely before it
    assert t.read(5, 9).column("c").to_pylist() == [None, None, 70.0, 80.0]
    assert t.read(0, 2).column("c").to_pylist() == [None, None]
    t.close()


def test_appends_may_omit_added_columns_but_not_required_ones(tmp_path):
    t = StreamTable("f", BASE, tmp_path, clock=SimClock())
    t.append(rows(0, 2))
    t.add_columns([("c", pa.float64()), ("d", pa.string())])
    t.append(rows(2, 2, c=True))             # d omitted -> null
    t.append(rows(4, 2, d=True))             # c omitted -> null (e.g. a removed factor)
    got = t.read()
    assert got.column("c").to_pylist() == [None, None, 20.0, 30.0, None, None]
    assert got.column("d").to_pylist() == [None, None, None, None, "x4", "x5"]
    b = rows(6, 2, c=True)
    del b["ts"]  # not nullable: still required
    with pytest.raises(SchemaError, match="missing column.*'ts'"):
        t.append(b)
    b = rows(6, 2, c=True)
    del b["a"]  # nullable but part of the table as created: still required
    with pytest.raises(SchemaError, match="missing column.*'a'"):
        t.append(b)
    b = rows(6, 2, c=True)
    b["ts"] = np.array([6, None], dtype=object)
    with pytest.raises(SchemaError, match="'ts' is not nullable but row 1 is null"):
        t.append(b)
    assert t.next_offset == 6  # nothing of a refused batch was written
    t.close()


def test_add_columns_refuses_what_earlier_rows_could_not_satisfy(tmp_path):
    t = StreamTable("f", BASE, tmp_path, clock=SimClock())
    t.append(rows(0, 2))
    with pytest.raises(SchemaError, match="'e' must be nullable"):
        t.add_columns([pa.field("e", pa.float64(), nullable=False)])
    with pytest.raises(SchemaError, match="'offset' is reserved"):
        t.add_columns([("offset", pa.int64())])
    with pytest.raises(SchemaError, match="'a' exists as double, cannot add it as string"):
        t.add_columns([("a", pa.string())])
    with pytest.raises(SchemaError, match="listed twice"):
        t.add_columns([("e", pa.float64()), ("e", pa.float64())])
    assert t.schema.equals(BASE) and read_schema(t.directory).equals(BASE)
    before = t.schema
    assert t.add_columns([("a", pa.float64())]).equals(before)  # already there: nothing to do
    t.close()


def test_reopened_table_keeps_the_evolved_schema_and_reads_across_the_boundary(tmp_path):
    t = StreamTable("f", BASE, tmp_path, clock=SimClock())
    t.append(rows(0, 3))
    t.add_columns([("c", pa.float64())])
    t.append(rows(3, 3, c=True))
    t.close()
    for schema in (None, BASE):  # reopened without a schema, or by a creator that still asks for BASE
        t = StreamTable("f", schema, tmp_path, clock=SimClock())
        assert t.schema.names == ["ts", "symbol", "a", "c"]
        assert t.read().column("c").to_pylist() == expected_c(3, 6)
        t.close()
    # a creator asking for one more nullable column evolves the table on open
    t = StreamTable("f", BASE.append(pa.field("d", pa.string())), tmp_path, clock=SimClock())
    assert t.schema.names == ["ts", "symbol", "a", "c", "d"]
    t.append(rows(6, 1, c=True, d=True))
    assert t.read().column("d").to_pylist() == [None] * 6 + ["x6"]
    t.close()
    with pytest.raises(SchemaError, match="column 'a' is double on disk, string now"):
        StreamTable("f", pa.schema([("ts", pa.int64()), ("symbol", pa.string()), ("a", pa.string())]), tmp_path, clock=SimClock())
    # the registry of open tables applies the same rules
    with StreamTables(tmp_path, clock=SimClock()) as tables:
        t = tables.get_table("f", BASE)
        assert tables.get_table("f", BASE) is t
        assert tables.get_table("f", BASE.append(pa.field("e", pa.float64()))).schema.names[-1] == "e"
        with pytest.raises(SchemaError, match="exists with schema"):
            tables.get_table("f", pa.schema([("ts", pa.int64()), ("symbol", pa.string())]))


def test_another_process_reads_the_evolved_table(tmp_path):
    t = StreamTable("f", BASE, tmp_path, memory_rows=2, clock=SimClock())
    t.append(rows(0, 5))
    t.add_columns([("c", pa.float64())])
    t.append(rows(5, 4, c=True))
    t.close()
    code = textwrap.dedent(f"""
        import json
        from pyplatform.clock import SimClock
        from pyplatform.stream import StreamTable
        t = StreamTable("f", None, {str(tmp_path)!r}, clock=SimClock())
        got = t.read()
        print(json.dumps({{"names": t.schema.names, "c": got.column("c").to_pylist(),
                          "a": got.column("a").to_pylist()}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["names"] == ["ts", "symbol", "a", "c"]
    assert got["c"] == expected_c(5, 9)
    assert got["a"] == [float(i) for i in range(9)]


def test_subscribers_poll_across_the_change(tmp_path):
    t = StreamTable("f", BASE, tmp_path, memory_rows=3, clock=SimClock())
    sub = t.subscribe("reader", offset=0, batch_size=4)
    t.append(rows(0, 6))
    first = sub.poll()
    assert first.column_names == ["ts", "symbol", "a", "offset"]  # before the change: old columns
    t.add_columns([("c", pa.float64())])
    t.append(rows(6, 3, c=True))
    seen = [first]
    while (chunk := sub.poll()) is not None:
        assert chunk.column_names == ["ts", "symbol", "a", "c", "offset"]
        seen.append(chunk)
    offsets = [o for c in seen for o in c.column("offset").to_pylist()]
    assert offsets == list(range(9))  # nothing lost or repeated across the change
    tail = pa.concat_tables(seen[1:])
    assert tail.column("c").to_pylist() == [None, None, 60.0, 70.0, 80.0]
    # a handler subscription driven by its own thread sees the same
    got: list[pa.Table] = []
    t.subscribe("pushed", got.append, offset=0)
    t.start()
    t.add_columns([("d", pa.string())])
    t.append(rows(9, 2, c=True, d=True))
    import time
    deadline = time.monotonic() + 5
    while sum(g.num_rows for g in got) < 11 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(g.num_rows for g in got) == 11
    assert got[-1].column("d").to_pylist()[-2:] == ["x9", "x10"]
    t.close()


def test_crashed_writer_after_a_change_reopens_consistent(tmp_path):
    # A process evolves the table, appends (fsync always) and dies without closing anything.
    code = textwrap.dedent(f"""
        import os
        import numpy as np, pyarrow as pa
        from pyplatform.clock import SimClock
        from pyplatform.stream import StreamTable
        base = pa.schema([pa.field("ts", pa.int64(), nullable=False), ("symbol", pa.string()), ("a", pa.float64())])
        t = StreamTable("f", base, {str(tmp_path)!r}, fsync="always", clock=SimClock())
        t.append({{"ts": np.arange(3), "symbol": ["A.US"] * 3, "a": np.arange(3.0)}})
        t.add_columns([("c", pa.float64())])
        t.append({{"ts": np.arange(3, 5), "symbol": ["A.US"] * 2, "a": np.arange(3.0, 5.0), "c": [30.0, 40.0]}})
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    seg = sorted((tmp_path / "f").glob("*.seg"))[-1]
    with open(seg, "ab") as fh:  # and a torn frame after it
        fh.write(b"PPS1\x00\x01garbage")
    t = StreamTable("f", None, tmp_path, clock=SimClock())
    assert t.next_offset == 5
    assert t.read().column("c").to_pylist() == [None, None, None, 30.0, 40.0]
    t.append(rows(5, 1, c=True))
    assert t.read(5).column("c").to_pylist() == [50.0]
    t.close()


def test_crash_while_writing_the_schema_leaves_the_old_one(tmp_path):
    t = StreamTable("f", BASE, tmp_path, clock=SimClock())
    t.append(rows(0, 3))
    t.close()
    # the temp file of an interrupted schema replacement is ignored, then overwritten
    (tmp_path / "f" / "schema.arrow.tmp").write_bytes(b"half a schema")
    t = StreamTable("f", None, tmp_path, clock=SimClock())
    assert t.schema.equals(BASE) and t.read().num_rows == 3
    t.add_columns([("c", pa.float64())])
    t.append(rows(3, 1, c=True))
    t.close()
    t = StreamTable("f", None, tmp_path, clock=SimClock())
    assert t.read().column("c").to_pylist() == [None, None, None, 30.0]
    t.close()


def test_change_recorded_beyond_the_surviving_rows_is_moved_to_the_next_row(tmp_path):
    # Rows written under fsync="never" may be lost after the schema file survived; the
    # reopened table must still decode every frame and place the change at its next row.
    t = StreamTable("f", BASE, tmp_path, clock=SimClock())
    t.append(rows(0, 1))
    t.append(rows(1, 1))
    t.add_columns([("c", pa.float64())])  # recorded as starting at offset 2
    t.append(rows(2, 2, c=True))
    t.close()
    seg = sorted((tmp_path / "f").glob("*.seg"))[-1]
    from pyplatform.stream.log import SegmentLog

    log = SegmentLog(tmp_path / "f", read_schema(tmp_path / "f"))
    cut = log.segments[-1].pos[1]  # keep row 0 only: the change now lies beyond the last row
    log.close()
    os.truncate(seg, cut)
    t = StreamTable("f", None, tmp_path, clock=SimClock())
    assert t.next_offset == 1
    t.append(rows(1, 3, c=True))  # a frame at offset 1 written with column c
    t.close()
    t = StreamTable("f", None, tmp_path, clock=SimClock())
    assert t.read().column("c").to_pylist() == [None, 10.0, 20.0, 30.0]
    t.close()


def test_a_creator_may_mark_a_nullable_column_omittable(tmp_path):
    schema = BASE.append(pa.field("note", pa.string(), metadata={"pyplatform.optional": "1"}))
    t = StreamTable("f", schema, tmp_path, clock=SimClock())
    t.append(rows(0, 2))  # "note" omitted
    t.close()
    t = StreamTable("f", None, tmp_path, clock=SimClock())  # the marker is persisted with the schema
    t.append(rows(2, 1))
    assert t.read().column("note").to_pylist() == [None, None, None]
    t.close()
