"""Partition sizing of the DFS databases (issue 15 item 12), checked without a server.

The guidance (docs/dolphindb.md, "Partition sizing"): 100 MB - 1 GB of uncompressed data
per partition (Tutorials_CN database.md 4.2/4.3) and at most 1,000 sort keys per TSDB
partition (best_practices_for_partitioned_storage.md), the sort-key count being the
product over the sort columns but the last of their distinct -- or hashBucket-mapped --
values (database_and_table_creation_details.md 2.1.2). The example loads are the ones the
docs size for: 5,000 symbols, 240 (Shanghai/Shenzhen) or 390 (NYSE) one-minute bars a
day, 21 trading days a month, 252 a year, 27 bar factors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyplatform.dolphindb.dos_parse import parse_calls
from pyplatform.dolphindb.layout import (
    DATABASES, expected_layouts, judge_layouts, partition_bytes, row_bytes, sort_keys_per_partition,
)
from pyplatform.dolphindb.render import DeployConfig, FactorMetric, render_scripts

MB, GB = 1e6, 1e9
SYMBOLS, TRADING_DAYS_MONTH, TRADING_DAYS_YEAR, BAR_FACTORS = 5_000, 21, 252, 27


def test_row_widths_follow_the_column_types():
    # ts 8, symbol 4 (SYMBOL is an INT index), price/volume/bid/ask 8 each, side CHAR 1
    assert row_bytes("ticks") == 8 + 4 + 8 + 8 + 1 + 8 + 8 == 45
    # ts, symbol, six DOUBLEs, trades INT
    assert row_bytes("bars") == 8 + 4 + 6 * 8 + 4 == 64
    # symbol, ts, factor SYMBOL, value DOUBLE
    assert row_bytes("factors_dfs") == 4 + 8 + 4 + 8 == 24


@pytest.mark.parametrize("bars_a_day", [240, 390])
def test_minute_bars_a_month_by_ten_buckets_is_inside_the_guidance_and_a_day_was_not(bars_a_day):
    cfg = DeployConfig()
    month = partition_bytes(SYMBOLS * bars_a_day * TRADING_DAYS_MONTH, "bars", cfg.bar_hash_buckets)
    assert month == SYMBOLS * bars_a_day * TRADING_DAYS_MONTH * 64 / 10  # 161 MB / 262 MB
    assert 100 * MB <= month <= 1 * GB
    day = partition_bytes(SYMBOLS * bars_a_day, "bars", cfg.bar_hash_buckets)  # the old VALUE-day layout
    assert day < 15 * MB
    # sort keys: symbols of one bucket (~500), no mapping needed
    assert sort_keys_per_partition([SYMBOLS // cfg.bar_hash_buckets]) <= 1_000


def test_daily_bars_a_year_is_the_closest_to_the_guidance_a_month_was_far_below():
    year = partition_bytes(SYMBOLS * TRADING_DAYS_YEAR, "bars")
    month = partition_bytes(SYMBOLS * TRADING_DAYS_MONTH, "bars")
    assert year == SYMBOLS * TRADING_DAYS_YEAR * 64  # 80.6 MB: just under 100 MB at 5,000 symbols
    assert 0.75 * 100 * MB < year < 1 * GB and month < 10 * MB
    # 5,000 symbols in one partition: hashBucket{, 500} on symbol keeps the sort keys at 500
    assert sort_keys_per_partition([SYMBOLS]) > 1_000
    assert sort_keys_per_partition([SYMBOLS], [500]) == 500


@pytest.mark.parametrize("bars_a_day", [240, 390])
def test_factor_partitions_and_their_sort_keys(bars_a_day):
    cfg = DeployConfig()
    day = partition_bytes(SYMBOLS * bars_a_day * BAR_FACTORS, "factors_dfs", cfg.factor_hash_buckets)
    assert 75 * MB < day <= 1 * GB  # 78 MB / 126 MB for the bar factors alone
    per_bucket, factors = SYMBOLS // cfg.factor_hash_buckets, 32
    assert sort_keys_per_partition([per_bucket, factors]) == 16_000  # the issue's ~16k
    assert sort_keys_per_partition([per_bucket, factors], [50, 20]) == 1_000


def _rendered_layouts(cfg: DeployConfig) -> dict[str, tuple[tuple[str, ...], str]]:
    """(levels, kind of the time level's scheme literal) per database, read back from the
    rendered 10_databases.dos."""
    text = render_scripts(cfg, [FactorMetric("c", "close")], ("10_databases",))[0].text
    out = {}
    for c in parse_calls(text):
        path = c.arg("directory", 0).literal if c.name == "database" and c.arg("directory", 0) else None
        if not path or not path.startswith("dfs://") or c.arg("partitionType") is None:
            continue
        table = path.removeprefix(f"dfs://{cfg.prefix}_")
        kind = c.arg("partitionType").text
        if kind == "COMPO":
            levels = [x for x in parse_calls(c.arg("partitionScheme").text) if x.name == "database"]
            names = tuple(x.arg("partitionType").text for x in levels)
            scheme = levels[0].arg("partitionScheme").text
        else:
            names, scheme = (kind,), c.arg("partitionScheme").text
        time = "MONTH" if "M" in scheme.split("..")[0].split("+")[0] else "DATE"
        out[table] = (names, time)
    return out


@pytest.mark.parametrize("cfg", [DeployConfig(), DeployConfig(prefix="x", bar_hash_buckets=20, daily_first_year=1990)])
def test_the_preflight_expects_exactly_what_deploy_creates(cfg):
    rendered = _rendered_layouts(cfg)
    want = expected_layouts(cfg)
    assert set(rendered) == set(DATABASES) == set(want)
    for table, (names, time) in rendered.items():
        assert names == want[table].levels, table
        assert {"DATE": 6, "MONTH": 7}[time] == want[table].time_type, table
    # the pinned column types are the ones the table is created with
    text = render_scripts(cfg, [FactorMetric("c", "close")], ("10_databases",))[0].text
    created = {c.arg("tableName").literal: c for c in parse_calls(text) if c.name == "createPartitionedTable"}
    for table, layout in want.items():
        schema_call = [x for x in parse_calls(created[table].arg("table").text) if x.name == "table"][0]
        names = schema_call.args[1].text.strip().lstrip("`").split("`")
        types = [s.strip() for s in schema_call.args[2].text.strip("[] ").split(",")]
        for col, typ in layout.columns:
            assert types[names.index(col)] == typ, (table, col)
    # so a second deploy onto what the first created passes the layout checks
    facts = {}
    for table, (names, time) in rendered.items():
        facts[f"layout:{table}:types"] = list(names)
        facts[f"layout:{table}:time"] = {"DATE": 6, "MONTH": 7}[time]
        for col, typ in want[table].columns:
            facts[f"layout:{table}:col:{col}"] = typ
    assert all(ok for _, _, ok, _, _ in judge_layouts(facts, cfg))


@pytest.mark.parametrize("table, types, time, extra", [
    ("bars_1m", ["VALUE", "HASH"], 6, {}),   # VALUE day x HASH (before item 12)
    ("bars_1d", ["VALUE"], 7, {}),           # VALUE month (before item 12)
    ("ticks", ["VALUE"], 6, {}),             # HASH level missing
    ("factors", ["VALUE", "HASH"], 6, {"layout:factors:col:factor": "STRING"}),  # factor was STRING
])
def test_an_older_layout_is_refused_with_the_migration(table, types, time, extra):
    checks = {n: (ok, fix) for n, _, ok, _, fix in judge_layouts(
        {f"layout:{table}:types": types, f"layout:{table}:time": time, **extra}, DeployConfig())}
    ok, fix = checks[f"layout dfs://pp_{table}"]
    assert ok is False and "pyplatform dolphindb migrate" in fix
    assert all(ok for n, (ok, _) in checks.items() if n != f"layout dfs://pp_{table}")  # absent: created


def test_daily_year_range_is_validated():
    with pytest.raises(ValueError, match="daily_first_year must not be after"):
        DeployConfig(daily_first_year=2030, daily_last_year=2020)
    with pytest.raises(ValueError, match="between 1900 and 2200"):
        DeployConfig(daily_first_year=1800)


@pytest.mark.parametrize("max_parts, buckets", [(100, 10), (65_536, 10), (1_000, 7)])
def test_a_bars_window_never_spans_more_partitions_than_allowed(max_parts, buckets):
    """_widest_window for the monthly bars: any window of that length, wherever it starts,
    touches at most max_parts (month x bucket) partitions."""
    from pyplatform.config import Settings
    from pyplatform.dolphindb.store import DolphinDBStore

    store = DolphinDBStore(Settings(), session=object(), config=DeployConfig(bar_hash_buckets=buckets),
                           max_partitions_per_query=max_parts)
    widest = store._widest_window("bars_1m")
    day = 86_400_000_000_000
    starts = pd.date_range("2000-01-01", "2004-12-31", freq="D")
    for s in starts[::7]:
        lo = np.datetime64(s.value // day, "D")
        hi = lo + np.timedelta64((widest - 1) // day, "D")  # the last day inside [lo, lo + widest)
        months = int(hi.astype("datetime64[M]").astype(np.int64) - lo.astype("datetime64[M]").astype(np.int64)) + 1
        assert months * buckets <= max_parts, (s, months)
    # and it is not needlessly short: one more 28 days could exceed the limit
    assert (widest // (28 * 86_400_000_000_000) + 2) * buckets > max_parts
    assert np.isfinite(widest)
