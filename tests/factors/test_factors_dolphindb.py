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


# ---------------------------------------------------------------- hand-written metacode, every library factor
# Written by hand from the composites' macros (functions.COMPOSITES) and the translation rules
# of dolphindb.py's module doc -- not regenerated from code, so a change to a macro, a primitive
# record's DolphinDB form or a NULL rule shows up here as a diff to review.
_UPPER = "mavg(close, 20) + 2 * mstdp(close, 20)"
_LOWER = "mavg(close, 20) - 2 * mstdp(close, 20)"
_UP = "wilder(iif(nullCompare(>, deltas(close), 0), deltas(close), 0.0), 14)"
_DOWN = "wilder(iif(nullCompare(<, deltas(close), 0), -deltas(close), 0.0), 14)"
_D = "ema(close, 12) - ema(close, 26)"
_GOLDEN = (f"iif(isNull(nullCompare(>, {_D}, 0)) || isNull(nullCompare(<=, prev({_D}), 0)), 00b, "
           f"nullCompare(>, {_D}, 0) && nullCompare(<=, prev({_D}), 0))")
_DEATH = (f"iif(isNull(nullCompare(<, {_D}, 0)) || isNull(nullCompare(>=, prev({_D}), 0)), 00b, "
          f"nullCompare(<, {_D}, 0) && nullCompare(>=, prev({_D}), 0))")
_LINE = "ema(iif(nullCompare(>, cumcount(close), 14), close, 00F), 12) - ema(close, 26)"
_HC, _LC = "abs(high - prev(close))", "abs(low - prev(close))"
_INNER = f"iif(isNull({_HC}) || isNull({_LC}), 00F, max({_HC}, {_LC}))"
_TR = f"iif(isNull(high - low) || isNull({_INNER}), 00F, max(high - low, {_INNER}))"

LIBRARY_METACODE = {
    "zscore_20": "(close - mavg(close, 20)) / mstd(close, 20)",
    "bb_percent_b_20": f"(close - ({_LOWER})) / ({_UPPER} - ({_LOWER}))",
    "drawdown_20": "close / mmax(high, 20) - 1",
    "stoch_k_14": "(close - mmin(low, 14)) / (mmax(high, 14) - mmin(low, 14)) * 100",
    "trade_sign_imbalance_50": "msum(side * volume, 50) / msum(volume, 50)",
    "spread_bps": "(ask - bid) / ((ask + bid) / 2) * 10000",
    "mid_return_20": "percentChange((bid + ask) / 2, 20)",
    "tick_vwap_gap_100": "price / (msum(price * volume, 100) / msum(volume, 100)) - 1",
    "signed_volume_ema_20": "ema(side * volume, 20)",
    "rsi_14": f"100 * {_UP} / ({_UP} + {_DOWN})",
    "roc_10": "percentChange(close, 10)",
    "momentum_20": "close - move(close, 20)",
    "dema_slope_10": "percentChange(dema(close, 10))",
    "range_rank_20": "mrank(close, true, 20) / 19",
    "sma_20": "sma(close, 20)",
    "ema_12": "ema(close, 12)",
    "ema_cross_12_26": f"iif({_GOLDEN}, 1.0, iif({_DEATH}, -1.0, 0.0))",
    "macd_12_26_9": _LINE,
    "macd_signal_12_26_9": f"ema({_LINE}, 9)",
    "macd_hist_12_26_9": f"{_LINE} - ema({_LINE}, 9)",
    "tema_gap_20": "close / tema(close, 20) - 1",
    "sma_gap_50": "close / sma(close, 50) - 1",
    "atr_14": f"wilder({_TR}, 14)",
    "natr_14": f"wilder({_TR}, 14) / close * 100",
    "realized_vol_20": "mstd(log(ratios(close)), 20)",
    "bb_width_20": f"({_UPPER} - ({_LOWER})) / mavg(close, 20)",
    "parkinson_vol_20": "sqrt(mavg(log(high / low) * log(high / low), 20) / (4 * log(2)))",
    "vwap_gap_20": "close / (msum(close * volume, 20) / msum(volume, 20)) - 1",
    "volume_ratio_20": "volume / mavg(volume, 20)",
    "obv": "cumsum(signum(deltas(close)) * volume)",
    "amihud_20": "mavg(abs(percentChange(close)) / (close * volume), 20) * 1000000",
    "price_volume_corr_20": "mcorr(close, volume, 20)",
}


def test_library_metacode_matches_the_hand_written_text():
    lib = {f.name: f for f in load_library()}
    assert sorted(lib) == sorted(LIBRARY_METACODE), "library and hand-written table list different factors"
    for name, f in lib.items():
        assert to_dolphindb(f.factor) == LIBRARY_METACODE[name], name
        assert to_dolphindb(f.expression) == LIBRARY_METACODE[name], name  # text: parsed once, same result


@pytest.mark.parametrize("composite, expansion", [
    ("zscore(close, 7)", "(close - mavg(close, 7)) / mstd(close, 7)"),
    ("mvwap(price, volume, 9)", "msum(price * volume, 9) / msum(volume, 9)"),
    ("bbLower(close, 10, 1.5)", "mavg(close, 10) - 1.5 * mstdp(close, 10)"),
    ("rsi(close, 6)", "100 * wilder(iif(deltas(close) > 0, deltas(close), 0), 6) / (wilder(iif(deltas(close) > 0, "
                      "deltas(close), 0), 6) + wilder(iif(deltas(close) < 0, -deltas(close), 0), 6))"),
    ("atr(high, low, close, 5)", "wilder(max(high - low, max(abs(high - prev(close)), abs(low - prev(close)))), 5)"),
    ("cross(a, b)", "iif(a - b > 0 && prev(a - b) <= 0, 1, iif(a - b < 0 && prev(a - b) >= 0, -1, 0))"),
])
def test_a_composite_translates_exactly_as_its_expansion_written_out(composite, expansion):
    # the composite and its macro written out by hand give the same metacode: DolphinDB is
    # written from the one expansion, not from a second definition
    assert to_dolphindb(composite) == to_dolphindb(expansion)
