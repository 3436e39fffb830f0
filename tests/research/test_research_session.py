"""The research layer under the notebook API: history read with a look-back in rows (issue 16:
"History is read with a look-back in rows, not a calendar guess"), one parse per call."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import pyplatform as pp
from pyplatform.research import session
from pyplatform.research.session import read_with_warmup


class FakeStore:
    """An in-memory history store answering ``read`` as the real ones do (``start <= t < end``,
    a symbol filter, a (datetime, symbol) index sorted by time), recording every read."""

    def __init__(self, frame: pd.DataFrame, know_start: bool) -> None:
        self.frame = frame.sort_index()
        self.reads: list[tuple] = []
        self.know_start = know_start

    def read(self, table, symbols=None, start=None, end=None, columns=None, as_arrow=False):
        self.reads.append((symbols, start, end))
        f = self.frame
        t = f.index.get_level_values("datetime")
        keep = np.ones(len(f), bool)
        if start is not None:
            keep &= t >= pd.Timestamp(start)
        if end is not None:
            keep &= t < pd.Timestamp(end)
        if symbols is not None:
            keep &= f.index.get_level_values("symbol").isin(symbols)
        return f[keep]

    def manifest(self, table):  # what the embedded store's manifest answers: files' time bounds
        if not self.know_start:
            raise AttributeError("no manifest")
        t = self.frame.index.get_level_values("datetime")

        class _File:
            min_ts, max_ts = int(t.min().value), int(t.max().value)

        class _Manifest:
            def files(self):
                return [_File()]

        return _Manifest()


def _frame(rows: dict[str, pd.DatetimeIndex]) -> pd.DataFrame:
    parts = [pd.DataFrame({"datetime": ts, "symbol": sym, "close": np.arange(len(ts), dtype=float)})
             for sym, ts in rows.items()]
    return pd.concat(parts).set_index(["datetime", "symbol"]).sort_index()


def _earlier(out: pd.DataFrame, start, sym: str) -> list[pd.Timestamp]:
    x = out.xs(sym, level="symbol")
    return list(x.index[x.index < pd.Timestamp(start)])


@pytest.mark.parametrize("know_start", [True, False])
def test_daily_warmup_counts_rows_across_gaps_and_late_starts(know_start):
    days = pd.bdate_range("2024-01-01", "2024-03-29")
    data = _frame({
        "A.US": days,                                                     # every weekday
        "B.US": days[(days <= "2024-01-05") | (days >= "2024-03-01")],    # eight weeks missing
        "C.US": days[days >= "2024-03-13"],                               # starts two days early
    })
    store = FakeStore(data, know_start)
    out = read_with_warmup(store, "bars_1d", None, "2024-03-15", "2024-03-23", 12)

    # twelve weekdays back from Friday 15 March, by hand
    a = ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07",
         "2024-03-08", "2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14"]
    assert _earlier(out, "2024-03-15", "A.US") == [pd.Timestamp(d) for d in a]
    # B has the ten March weekdays before the 15th, and the two before its gap
    b = ["2024-01-04", "2024-01-05"] + a[2:]
    assert _earlier(out, "2024-03-15", "B.US") == [pd.Timestamp(d) for d in b]
    # C starts late: the rows it has
    assert _earlier(out, "2024-03-15", "C.US") == [pd.Timestamp("2024-03-13"), pd.Timestamp("2024-03-14")]
    # the window itself is whole: six weekdays 15-22 March for each symbol
    window = out[out.index.get_level_values(0) >= "2024-03-15"]
    assert len(window) == 3 * 6
    assert out.index.is_monotonic_increasing
    # growing spans: a handful of reads, not one per missing day
    assert len(store.reads) <= 12


def test_minute_warmup_steps_over_nights():
    def session_(day):
        return pd.date_range(f"{day} 09:30", f"{day} 15:59", freq="min")

    x = session_("2024-01-04").append(session_("2024-01-05")).append(session_("2024-01-08"))
    y = pd.date_range("2024-01-05 15:00", "2024-01-05 15:59", freq="min").append(session_("2024-01-08"))
    store = FakeStore(_frame({"X.US": x, "Y.US": y}), know_start=True)
    out = read_with_warmup(store, "bars_1m", ["X.US", "Y.US"], "2024-01-08 09:30", "2024-01-08 10:00", 400)

    # 400 minutes before Monday's open: all 390 of Friday plus Thursday's last ten
    want_x = pd.date_range("2024-01-04 15:50", periods=10, freq="min").append(session_("2024-01-05"))
    assert _earlier(out, "2024-01-08 09:30", "X.US") == list(want_x)
    # Y started at 15:00 on Friday: its 60 minutes
    assert _earlier(out, "2024-01-08 09:30", "Y.US") == list(pd.date_range("2024-01-05 15:00", periods=60, freq="min"))
    assert len(out.xs("X.US", level="symbol").loc["2024-01-08"]) == 30


def test_no_start_or_no_warmup_reads_only_the_window():
    store = FakeStore(_frame({"A.US": pd.bdate_range("2024-01-01", "2024-02-01")}), know_start=True)
    assert len(read_with_warmup(store, "bars_1d", None, None, "2024-01-10", 5)) == 7
    assert len(store.reads) == 1
    out = read_with_warmup(store, "bars_1d", None, "2024-01-10", None, 0)
    assert out.index.get_level_values(0).min() == pd.Timestamp("2024-01-10")


def test_factor_is_warm_at_start_on_minute_bars(market_settings):
    """pp.factor on minute bars: values from the first requested minute equal the factor over
    the whole history (the calendar guess read days for a 30-row look-back and nothing exact)."""
    s = market_settings
    sym = pp.universe("stocks", settings=s)[0]
    m = pp.bars([sym], freq="1min", settings=s)
    days = m.index.get_level_values(0).normalize().unique()
    start, end = days[10] + pd.Timedelta(minutes=1), days[11]  # a minute after midnight: last night's rows
    got = pp.factor("mavg(close, 30)", [sym], start=start, end=end, freq="1min", settings=s)["factor"]
    ref = m["close"].rolling(30).mean()
    ref = ref[(ref.index.get_level_values(0) >= start) & (ref.index.get_level_values(0) < end)]
    assert len(got) == len(ref) > 30 and got.notna().all()
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12)


def test_factor_is_warm_at_start_on_resampled_bars(market_settings):
    s = market_settings
    sym = pp.universe("stocks", settings=s)[0]
    full = pp.bars([sym], freq="1h", settings=s)
    t = full.index.get_level_values(0)
    start = t[200] + pd.Timedelta(minutes=20)  # inside a bucket: the bucket is not split
    got = pp.factor("mavg(close, 8)", [sym], start=start, freq="1h", settings=s)["factor"]
    ref = full["close"].rolling(8).mean()
    ref = ref[ref.index.get_level_values(0) >= start]
    assert got.notna().all() and len(got) == len(ref)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12)


def _count_parses(monkeypatch, texts: set[str]) -> list[str]:
    """Count parses of ``texts`` wherever a pyplatform module calls the public parser."""
    import pyplatform.factors as factors
    import pyplatform.factors.engine  # noqa: F401  (loaded so its reference is patched too)
    import pyplatform.factors.library  # noqa: F401

    original = factors.parse
    calls: list[str] = []

    def counting(text, *args, **kwargs):
        if isinstance(text, str) and text in texts:
            calls.append(text)
        return original(text, *args, **kwargs)

    for name, mod in list(sys.modules.items()):
        if name.startswith("pyplatform") and getattr(mod, "parse", None) is original:
            monkeypatch.setattr(mod, "parse", counting)
    return calls


def test_factor_parses_once(market_settings, monkeypatch):
    text = "close/move(close,5)-1"
    calls = _count_parses(monkeypatch, {text, "close / move(close, 5) - 1"})
    out = pp.factor(text, start="2024-03-01", settings=market_settings)
    assert out["factor"].notna().any()
    assert len(calls) == 1, calls


def test_publish_parses_once_and_computes_each_frame_once(market_settings, monkeypatch):
    text = "close/move(close,5)-1"
    calls = _count_parses(monkeypatch, {text, "close / move(close, 5) - 1"})
    computed: list[int] = []
    compute = session.compute

    def counting_compute(expr, frame, name="factor"):
        computed.append(len(frame))
        return compute(expr, frame, name)

    monkeypatch.setattr(session, "compute", counting_compute)
    v = pp.publish("mom5", text, author="ana", settings=market_settings)
    assert v.validation["mismatches"] == 0 and v.validation["compared"] > 0
    assert len(calls) == 1, calls
    # daily: the full history for the evaluation and the recent window for the stream check,
    # each once
    assert len(computed) == 2 and computed[0] != computed[1], computed

    # a given frame is validated and evaluated on itself: one batch computation
    calls.clear()
    computed.clear()
    frame = pp.bars(freq="1d", settings=market_settings)
    from pyplatform.research.publishing import publish_factor

    publish_factor("mom5b", text, author="ana", settings=market_settings, frame=frame)
    assert len(calls) == 1 and computed == [len(frame)], (calls, computed)


def test_publish_validates_minute_history_with_the_lookback(market_settings):
    """Minute publishing now warms up too: the validation frame holds the look-back rows
    before the recent window, so a 30-row factor has values from the window's first row."""
    s = market_settings
    v = pp.publish("m30", "mavg(close, 30)", author="ana", freq="1min", recent_days=2, settings=s)
    assert v.validation["mismatches"] == 0
    first, last = session.table_extent(session.open_store(s), "bars_1m")
    start = pd.Timestamp(last, unit="ns") - pd.Timedelta(days=2)
    frame = session.bars(None, start=start, freq="1min", settings=s, warmup_rows=29)
    before = frame[frame.index.get_level_values(0) < start]
    # every symbol of the window has its 29 earlier rows, and no more
    assert (before.groupby(level="symbol").size() == 29).all()
    assert v.validation["rows"] == len(frame)
