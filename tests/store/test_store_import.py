"""Importing users' CSV/Parquet files: mapping, normalisation, all-or-nothing with a report."""

from __future__ import annotations

import pandas as pd
import pytest

from pyplatform.clock import SimClock
from pyplatform.data.importer import ImportFailed, import_files

NOW = SimClock(pd.Timestamp("2024-06-01").value)
MAP = {"ts": "time", "symbol": "sym", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}


def write_csv(path, rows: list[str], header: str = "time,sym,o,h,l,c,v"):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_with_mapping_and_epoch_seconds(tmp_path, store):
    f = write_csv(tmp_path / "a.csv", ["1710163800,AAPL.US,170.10,170.50,170.00,170.20,1000",
                                       "1710163860,AAPL.US,170.20,170.60,170.10,170.30,1200"])
    r = import_files(f, "bars_1m", store=store, mapping=MAP, clock=NOW)
    assert (r.rows, r.symbols) == (2, ["AAPL.US"])
    got = store.read("bars_1m")
    assert got.index[0] == (pd.Timestamp("2024-03-11 13:30"), "AAPL.US")
    assert got["close"].tolist() == [170.2, 170.3]
    # importing again changes nothing
    import_files(f, "bars_1m", store=store, mapping=MAP, clock=NOW)
    assert len(store.read("bars_1m")) == 2


def test_iso_times_in_an_exchange_zone_scaled_prices_and_fixed_symbol(tmp_path, store):
    f = write_csv(tmp_path / "b.csv", ["2024-03-11 09:30:00,17010,17050,17000,17020,5"],
                  header="time,o,h,l,c,v")
    import_files([f], "bars_1m", store=store, mapping=MAP, symbol="AAPL.US", assume_tz="America/New_York",
                 price_scale=2, clock=NOW)
    got = store.read("bars_1m")
    assert got.index[0] == (pd.Timestamp("2024-03-11 13:30"), "AAPL.US")
    assert got["open"].iloc[0] == 170.10


def test_parquet_ticks_with_millisecond_times_and_fraction_prices(tmp_path, store):
    f = tmp_path / "t.parquet"
    pd.DataFrame({"t": [1710163800000, 1710163800250], "symbol": ["ZN.US", "ZN.US"],
                  "num": [3523, 3525], "den": [32, 32], "qty": [3, 4]}).to_parquet(f)
    import_files(f, "ticks", store=store, mapping={"ts": "t", "price": "num", "volume": "qty"},
                 denominators={"price": "den"}, clock=NOW)
    got = store.read("ticks")
    assert got["price"].tolist() == [110.09, 110.16]  # 3523/32 = 110.09375 at the stock precision
    assert got.index[1][0] == pd.Timestamp("2024-03-11 13:30:00.250")


def test_bad_rows_are_all_reported_and_nothing_is_imported(tmp_path, store):
    good = write_csv(tmp_path / "good.csv", ["1710163800,AAPL.US,170.10,170.50,170.00,170.20,1000"])
    bad = write_csv(tmp_path / "bad.csv", [
        "1710163800,MSFT.US,400.10,400.50,oops,400.20,1000",
        "1710163860,MSFT.XX,-1,400.60,400.10,400.30,1200",
        "1717300000,MSFT.US,400,400.60,400.10,nan,1200",
        "not-a-time,MSFT.US,400,400.60,400.70,400.2,1200",
    ])
    report = tmp_path / "report.csv"
    with pytest.raises(ImportFailed) as info:
        import_files([good, bad], "bars_1m", store=store, mapping=MAP, clock=NOW, report_path=report)
    found = {(b.file, b.row, b.field) for b in info.value.errors}
    assert found == {("bad.csv", 0, "l"), ("bad.csv", 1, "sym"), ("bad.csv", 1, "o"), ("bad.csv", 2, "time"),
                     ("bad.csv", 2, "c"), ("bad.csv", 3, "time"), ("bad.csv", 3, "h")}
    reasons = {(b.row, b.field): b.reason for b in info.value.errors}
    assert "future" in reasons[(2, "time")] and "negative" in reasons[(1, "o")]
    assert "high below low" in reasons[(3, "h")] and "unknown region" in reasons[(1, "sym")]
    assert "bad.csv: row 0, column 'l' = 'oops': not a number" in str(info.value)
    assert len(pd.read_csv(report)) == 7
    assert store.read("bars_1m").empty  # not even good.csv


def test_missing_columns_are_named(tmp_path, store):
    f = write_csv(tmp_path / "c.csv", ["1710163800,AAPL.US,170.1"], header="time,sym,close")
    with pytest.raises(ValueError, match=r"missing column\(s\).*open.*the file has \['time', 'sym', 'close'\]"):
        import_files(f, "bars_1m", store=store, mapping={"ts": "time", "symbol": "sym"}, clock=NOW)
    with pytest.raises(ValueError, match="unsupported file type"):
        import_files(tmp_path / "c.xlsx" if (tmp_path / "c.xlsx").write_text("x") else None, "bars_1m", store=store,
                     clock=NOW)
