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
    ("close > open", "double(nullCompare(>, close, open))"),
    ("(close > open) * volume", "nullCompare(>, close, open) * volume"),
    ("!(a && b)", "double(iif(isNull(iif(isNull(a) || isNull(b), 00b, a && b)), 00b, "
                  "not(iif(isNull(a) || isNull(b), 00b, a && b))))"),
    ("sign(close)", "signum(close)"),
    ("mrank(close, true, 10)", "mrank(close, true, 10)"),
    ("mrank(close, false, 10, 3)", "mrank(close, false, 10, true, 'min', false, 3)"),
    ("bbMiddle(close)", "mavg(close, 20)"),
    ("bbUpper(close, 10, 1.5)", "mavg(close, 10) + 1.5 * mstdp(close, 10)"),
    ("2 * zscore(close, 5)", "2 * ((close - mavg(close, 5)) / mstd(close, 5))"),
    ("macd(close, 12, 26, 9)", "ema(iif(nullCompare(>, cumcount(close), 14), close, 00F), 12) - ema(close, 26)"),
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
               "sqrt", "exp", "signum", "max", "min", "not", "isNull", "cumcount"}
    for f in load_library():
        used = set(re.findall(r"([A-Za-z_]\w*)\(", to_dolphindb(f.expr)))
        assert used <= allowed, (f.name, used - allowed)


def test_metrics_and_sql():
    factors = {"ma": "mavg(close, 5)", "r": parse("rsi(close)")}
    metrics = to_dolphindb_metrics(factors)
    assert metrics.startswith("<[mavg(close, 5) as ma, 100 * wilder(") and metrics.endswith(" as r]>")
    sql = to_dolphindb_sql({"ma": "mavg(close, 5)"}, "bars")
    assert sql == "select ts, symbol, mavg(close, 5) as ma from bars context by symbol csort ts"


# ---------------------------------------------------------------- NULL semantics made explicit
# Each expectation follows a documentation page (docs/dolphindb.md, "metacode"): nullCompare
# only takes < > <= >= ("nullCompare"); == and != treat NULL as the minimum ("Functions on
# Null Values"); or ignores a NULL operand under logicOrIgnoreNull=true ("or"); binary max
# treats NULL as the smallest value; iif needs both branches of one type ("iif").

def test_equality_never_goes_through_nullcompare_and_is_null_when_an_operand_is():
    for op in ("==", "!="):
        text = to_dolphindb(f"close {op} open")
        assert "nullCompare(==" not in text and "nullCompare(!=" not in text
        assert text == f"double(iif(isNull(close) || isNull(open), 00b, close {op} open))"


def test_logical_or_and_and_return_null_explicitly():
    assert to_dolphindb("(close > 1) || (open > 1)") == (
        "double(iif(isNull(nullCompare(>, close, 1)) || isNull(nullCompare(>, open, 1)), 00b, "
        "nullCompare(>, close, 1) || nullCompare(>, open, 1)))")
    assert to_dolphindb("a && b") == "double(iif(isNull(a) || isNull(b), 00b, a && b))"


def test_double_negation_is_parenthesised():
    assert to_dolphindb("-(-close)") == "-(-close)"
    assert "--" not in to_dolphindb("open - -close")
    assert to_dolphindb("open - -close") == "open - (-close)"


def test_iif_branches_are_both_double():
    assert to_dolphindb("iif(close > open, deltas(close), 0)") == \
        "iif(nullCompare(>, close, open), deltas(close), 0.0)"
    # an INT column and a logical branch are converted, a literal is written as DOUBLE
    assert to_dolphindb("iif(close > open, trades, close > 1)") == \
        "iif(nullCompare(>, close, open), double(trades), double(nullCompare(>, close, 1)))"
    assert to_dolphindb("iif(close > open, 1, -1)") == "iif(nullCompare(>, close, open), 1.0, -1.0)"


def test_binary_max_and_min_are_null_when_an_operand_is():
    assert to_dolphindb("max(high, low)") == "iif(isNull(high) || isNull(low), 00F, max(high, low))"
    assert to_dolphindb("min(trades, 3)") == "iif(isNull(trades) || isNull(3), 00F, double(min(trades, 3)))"
    atr = to_dolphindb("atr(high, low, close, 14)")
    assert atr.startswith("wilder(iif(isNull(high - low) || isNull(") and "00F" in atr


def test_macd_has_no_zero_times_move_trick():
    for name in ("macd", "macdSignal", "macdHist"):
        text = to_dolphindb(f"{name}(close, 12, 26, 9)")
        assert "0 * move" not in text and "iif(nullCompare(>, cumcount(close), 14), close, 00F)" in text


def test_library_metacode_passes_the_deploy_checks():
    """Every library metric is accepted by the renderer's checks, which reject the forms above."""
    from pyplatform.dolphindb.render import validate_metric

    for f in load_library():
        validate_metric(f.name, to_dolphindb(f.expr), f.input)
    for bad, why in (("nullCompare(==, close, open)", "not documented"), ("--close", "'--'")):
        with pytest.raises(ValueError, match=why):
            validate_metric("bad", bad)
