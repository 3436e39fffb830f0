"""DolphinDB metacode: golden text for every library factor, plus translation rules.

The golden file is regenerated only deliberately:
``REGEN_FACTOR_GOLDEN=1 .venv/bin/python -m pytest tests/factors/test_factors_dolphindb.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pyplatform.factors import load_library, parse, to_dolphindb
from pyplatform.factors.dolphindb import to_dolphindb_metrics, to_dolphindb_sql

GOLDEN = Path(__file__).parent / "golden" / "dolphindb_library.json"


def test_library_metacode_matches_golden():
    current = {f.name: to_dolphindb(f.expr) for f in load_library()}
    if os.environ.get("REGEN_FACTOR_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(current) == sorted(golden), "library and golden file list different factors"
    for name, text in current.items():
        assert text == golden[name], f"{name}: metacode changed; regenerate the golden file deliberately"


@pytest.mark.parametrize("text, expected", [
    ("mavg(close, 20)", "mavg(close, 20)"),
    ("(close - mavg(close, 20)) / mstd(close, 20, 5)", "(close - mavg(close, 20)) / mstd(close, 20, 5)"),
    ("close > open", "nullCompare(>, close, open)"),
    ("!(a && b)", "not(a && b)"),
    ("sign(close)", "signum(close)"),
    ("mrank(close, true, 10)", "mrank(close, true, 10)"),
    ("mrank(close, false, 10, 3)", "mrank(close, false, 10, true, 'min', false, 3)"),
    ("bbMiddle(close)", "mavg(close, 20)"),
    ("bbUpper(close, 10, 1.5)", "mavg(close, 10) + 1.5 * mstdp(close, 10)"),
    ("2 * zscore(close, 5)", "2 * ((close - mavg(close, 5)) / mstd(close, 5))"),
    ("macd(close, 12, 26, 9)", "ema(close + 0 * move(close, 14), 12) - ema(close, 26)"),
    ("-(a - b) * c", "-(a - b) * c"),
    ("a - (b - c)", "a - (b - c)"),
])
def test_translation_rules(text, expected):
    assert to_dolphindb(text) == expected


def test_every_emitted_function_is_a_dolphindb_state_function_or_elementwise():
    import re

    allowed = {"mavg", "msum", "mcount", "mstd", "mstdp", "mvar", "mvarp", "mmax", "mmin", "mcorr", "mbeta",
               "mrank", "ema", "wma", "sma", "dema", "tema", "wilder", "prev", "move", "deltas", "ratios",
               "percentChange", "cumsum", "cumavg", "cummax", "cummin", "iif", "nullCompare", "abs", "log",
               "sqrt", "exp", "signum", "max", "min", "not", "isNull"}
    for f in load_library():
        used = set(re.findall(r"([A-Za-z_]\w*)\(", to_dolphindb(f.expr)))
        assert used <= allowed, (f.name, used - allowed)


def test_metrics_and_sql():
    factors = {"ma": "mavg(close, 5)", "r": parse("rsi(close)")}
    metrics = to_dolphindb_metrics(factors)
    assert metrics.startswith("<[mavg(close, 5) as ma, 100 * wilder(") and metrics.endswith(" as r]>")
    sql = to_dolphindb_sql({"ma": "mavg(close, 5)"}, "bars")
    assert sql == "select ts, symbol, mavg(close, 5) as ma from bars context by symbol csort ts"
