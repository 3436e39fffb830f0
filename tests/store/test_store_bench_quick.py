"""``run_history_bench(quick=True)``: the benchmark's sides agree (correctness, not timing)."""

from __future__ import annotations

import math

from pyplatform.bench.history import format_result, run_history_bench


def test_quick_history_bench_compares_store_pandas_and_duckdb(tmp_path):
    r = run_history_bench(quick=True, data_dir=str(tmp_path), progress=False)
    assert r.symbols == 4 and r.bars > 0
    names = [q.name for q in r.queries]
    assert names == ["one symbol, all years of 1-min bars", "all symbols, one day of 1-min bars",
                     "last 30 days of daily bars, all symbols", "last bar of every symbol at a time"]
    for q in r.queries:
        assert q.rows > 0, q.name
        for v in (q.store_s, q.pandas_s, q.duckdb_s, q.first_s, q.second_s):
            assert math.isfinite(v) and v > 0, q.name
    # the whole-day and as-of queries were answered from a day file after their first call
    assert any((tmp_path / "history" / "bars_1m" / "_days").glob("*.arrow"))
    assert any((tmp_path / "history" / "bars_1m" / "_symbols").glob("*.arrow"))
    text = format_result(r)
    assert "DuckDB into Arrow" in text and "store first / second call" in text
    assert text.count("\n| ") == 1 + len(r.queries)  # header + one row per query
