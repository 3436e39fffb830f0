"""The data and bench commands, run through the real CLI."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from pyplatform.cli.main import app
from pyplatform.store import EmbeddedStore

runner = CliRunner()


def test_data_generate_info_and_import(tmp_path):
    r = runner.invoke(app, ["data", "generate", "--symbols", "4", "--start", "2024-03-04", "--end", "2024-03-06",
                            "--tick-days", "1", "--tick-rate", "0.05", "--data-dir", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "bars_1m" in r.output
    store = EmbeddedStore(tmp_path / "history")
    assert len(store.symbols("bars_1m")) == 4 and len(store.read("bars_1d")) > 0

    r = runner.invoke(app, ["data", "info", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "bars_1m" in r.output and "instruments: 4" in r.output

    csv = tmp_path / "mine.csv"
    csv.write_text("time,px,qty\n2024-03-05T14:00:00Z,10.5,100\n2024-03-05T14:00:01Z,10.6,50\n")
    r = runner.invoke(app, ["data", "import", str(csv), "--table", "ticks", "--symbol", "MINE.US",
                            "--map", "ts=time", "--map", "price=px", "--map", "volume=qty",
                            "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert store.read("ticks", symbols=["MINE.US"])["price"].tolist() == [10.5, 10.6]

    bad = tmp_path / "bad.csv"
    bad.write_text("time,px,qty\n2024-03-05T14:00:00Z,-1,100\n")
    report = tmp_path / "report.csv"
    r = runner.invoke(app, ["data", "import", str(bad), "--table", "ticks", "--symbol", "MINE.US",
                            "--map", "ts=time", "--map", "price=px", "--map", "volume=qty",
                            "--report", str(report), "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert "negative price" in r.output
    assert pd.read_csv(report)["column"].tolist() == ["px"]


def test_bench_history_prints_store_beside_pandas(tmp_path):
    r = runner.invoke(app, ["bench", "history", "--symbols", "4", "--days", "3", "--end", "2024-03-07",
                            "--repeat", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "rows written/s" in out and "bytes on disk per 1-min bar" in out
    for q in ["one symbol, all years of 1-min bars", "all symbols, one day of 1-min bars",
              "last 30 days of daily bars, all symbols", "last bar of every symbol at a time"]:
        line = next(line for line in out.splitlines() if line.startswith(f"| {q} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert int(cells[1].replace(",", "")) > 0
        assert float(cells[2]) > 0 and float(cells[3]) > 0 and cells[4].endswith("x")


def test_help_is_meaningful():
    for cmd in (["data", "--help"], ["data", "generate", "--help"], ["data", "import", "--help"],
                ["bench", "history", "--help"]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 0 and len(r.output) > 200, cmd
