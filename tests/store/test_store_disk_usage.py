"""``data generate`` leaves no superseded files behind; ``data info`` reports what is on disk.

The expected byte counts come from walking the directory with ``os.walk`` here, not from the
store's own accounting.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from pyplatform.cli.main import app
from pyplatform.store import EmbeddedStore

runner = CliRunner()


def _walk(root: Path) -> dict[str, int]:
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = Path(d) / n
            out[p.relative_to(root).as_posix()] = p.stat().st_size
    return out


def _bars(symbols, start, minutes):
    ts = pd.date_range(start, periods=minutes, freq="1min")
    rows = [{"ts": t, "symbol": s, "open": 10.0 + i * 0.01, "high": 10.5, "low": 9.5, "close": 10.1,
             "volume": 100.0, "vwap": 10.05, "trades": 3} for s in symbols for i, t in enumerate(ts)]
    return pd.DataFrame(rows)


def test_disk_usage_splits_live_and_superseded_and_collect_frees_them(tmp_path):
    store = EmbeddedStore(tmp_path, grace_s=3600)
    store.write("bars_1m", _bars(["A.US", "B.US"], "2024-03-04 14:30", 30))
    # same keys again: the month is rewritten merged, the first file becomes garbage
    store.write("bars_1m", _bars(["A.US"], "2024-03-04 14:40", 5))
    man = store.manifest("bars_1m")
    tdir = tmp_path / "bars_1m"
    disk = _walk(tdir)
    live = {f.path for f in man.files()}
    dead = {p for p, _ in man.garbage}
    assert dead and live and not (dead & live)
    u = store.disk_usage().loc["bars_1m"]
    assert u["live_bytes"] == sum(disk[p] for p in live)
    assert u["superseded_bytes"] == sum(disk[p] for p in dead) > 0
    assert u["superseded_files"] == len(dead)
    assert u["total_bytes"] == sum(disk.values())
    before = store.read("bars_1m")

    files, freed = store.collect_garbage()
    assert files == len(dead) and freed == sum(disk[p] for p in dead)
    after_disk = _walk(tdir)
    assert not any(p in after_disk for p in dead)
    assert store.manifest("bars_1m").garbage == []
    u2 = store.disk_usage().loc["bars_1m"]
    assert u2["superseded_bytes"] == 0 and u2["live_bytes"] == u["live_bytes"]
    pd.testing.assert_frame_equal(store.read("bars_1m"), before)  # nothing live was touched


def test_collect_garbage_respects_a_grace_period_when_asked(tmp_path):
    store = EmbeddedStore(tmp_path, grace_s=3600)
    store.write("bars_1m", _bars(["A.US"], "2024-03-04 14:30", 10))
    store.write("bars_1m", _bars(["A.US"], "2024-03-04 14:35", 10))
    assert store.collect_garbage(grace_s=None) == (0, 0)  # younger than the store's hour
    assert store.disk_usage().loc["bars_1m", "superseded_files"] == 1


def test_cli_generate_removes_superseded_files_and_info_reports_disk(tmp_path):
    r = runner.invoke(app, ["data", "generate", "--symbols", "3", "--start", "2023-12-27", "--end", "2024-01-04",
                            "--tick-days", "0", "--data-dir", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    hist = tmp_path / "history"
    store = EmbeddedStore(hist)
    for t in store.tables():
        man = store.manifest(t)
        assert man.garbage == [], t
        disk = {p for p in _walk(hist / t) if p.endswith(".parquet")}
        assert disk == {f.path for f in man.files()}, t  # only live files remain
    r = runner.invoke(app, ["data", "info", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    m = re.search(r"on disk: .*?\(([\d,]+) bytes\) = live .*?\(([\d,]+) bytes\).*superseded (\S+ bytes|.*?\(([\d,]+) "
                  r"bytes\))", r.output.replace("\n", " "))
    assert m, r.output
    total = sum(_walk(hist).values()) - sum(
        v for k, v in _walk(hist).items() if "/" not in k)  # table folders only (not instruments)
    assert int(m.group(1).replace(",", "")) == total
    live = sum((hist / t / f.path).stat().st_size for t in store.tables() for f in store.manifest(t).files())
    assert int(m.group(2).replace(",", "")) == live
    assert "superseded 0 bytes" in r.output.replace("\n", " ")
