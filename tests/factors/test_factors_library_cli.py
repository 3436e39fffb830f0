"""The built-in library and ``pyplatform factors list|show|compute``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pyplatform.factors import compile_batch, load_library
from pyplatform.factors.library import INPUT_COLUMNS, get_factor

runner = CliRunner()


def test_library_has_25_plus_validated_factors_across_families():
    lib = load_library()
    assert len(lib) >= 25
    assert len({f.name for f in lib}) == len(lib)
    tags = {t for f in lib for t in f.tags}
    for family in ("trend", "momentum", "mean-reversion", "volatility", "volume", "microstructure"):
        assert family in tags, family
    for f in lib:
        assert f.description and f.tags
        assert f.expr.columns() <= INPUT_COLUMNS[f.input]
    imbalance = get_factor("trade_sign_imbalance_50")
    assert imbalance.input == "ticks" and "side * volume" in imbalance.expression


def test_library_rejects_bad_definitions(tmp_path: Path):
    (tmp_path / "a.toml").write_text('[[factor]]\nname = "x"\nexpression = "mavg(close, 1)"\ndescription = "d"\ntags = ["t"]\n')
    with pytest.raises(ValueError, match=r"a.toml: factor 'x': .*window.*\n.*\n.*\^"):
        load_library(tmp_path)
    (tmp_path / "a.toml").write_text('[[factor]]\nname = "x"\nexpression = "price"\ndescription = "d"\ntags = ["t"]\n')
    with pytest.raises(ValueError, match="unknown column 'price'"):
        load_library(tmp_path)  # bars input by default: price is a tick column
    (tmp_path / "a.toml").write_text('[[factor]]\nname = "x"\nexpression = "close"\ntags = ["t"]\n')
    with pytest.raises(ValueError, match="missing field 'description'"):
        load_library(tmp_path)
    (tmp_path / "a.toml").write_text('[[factor]]\nname = "x"\nexpression = "close"\ndescription = "d"\ntags = ["t"]\n')
    (tmp_path / "b.toml").write_text('[[factor]]\nname = "x"\nexpression = "open"\ndescription = "d"\ntags = ["t"]\n')
    with pytest.raises(ValueError, match="duplicate name"):
        load_library(tmp_path)
    with pytest.raises(KeyError, match="did you mean"):
        get_factor("rsi_41")


def _app():
    from pyplatform.cli.factors import app

    return app


def test_cli_list_and_show():
    res = runner.invoke(_app(), ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {r["name"] for r in rows} == {f.name for f in load_library()}
    assert next(r for r in rows if r["name"] == "rsi_14")["lookback"] == 14
    res = runner.invoke(_app(), ["list", "--tag", "microstructure", "--json"])
    assert all("microstructure" in r["tags"] for r in json.loads(res.output))
    res = runner.invoke(_app(), ["show", "macd_hist_12_26_9"])
    assert res.exit_code == 0 and "lookback:    33 rows" in res.output and "dolphindb:   ema(" in res.output
    res = runner.invoke(_app(), ["show", "mavg(close, 0)"])
    assert res.exit_code == 2 and "1:13" in res.output


def test_cli_compute_over_the_history_store(market_settings, monkeypatch, tmp_path):
    from pyplatform.config import reset_settings_cache
    from pyplatform.backends import open_store

    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(market_settings.data_dir))
    reset_settings_cache()
    try:
        store = open_store()
        syms = store.symbols("bars_1d")[:3]
        out = tmp_path / "v.parquet"
        args = ["compute", "rsi_14", "--table", "bars_1d", "-o", str(out), "--start", "2024-02-01", "--write"]
        for s in syms:
            args += ["-s", s]
        res = runner.invoke(_app(), args)
        assert res.exit_code == 0, res.output
        got = pd.read_parquet(out).set_index(["datetime", "symbol"])["value"].sort_index()
        bars = store.read("bars_1d", symbols=syms)
        ref = compile_batch("rsi(close, 14)")(bars)
        ref = ref[ref.index.get_level_values("datetime") >= pd.Timestamp("2024-02-01")].sort_index()
        assert len(got) == len(ref) > 0
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-9, equal_nan=True)
        stored = store.read("factors", symbols=syms)
        assert (stored.reset_index()["factor"] == "rsi_14").all() and len(stored) == ref.notna().sum()
        res = runner.invoke(_app(), ["compute", "mavg(close, 3) +", "-s", syms[0]])
        assert res.exit_code == 2 and "unexpected end" in res.output
    finally:
        reset_settings_cache()
