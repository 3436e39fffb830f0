"""Helpers of the dashboard tests: a small generated market and the Chromium options.

A uniquely named module (not ``conftest``): several test folders have a conftest.py, and
``from conftest import ...`` would pick whichever was imported last in a whole-suite run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--window-size=1366,900"]


def minute_bars(symbols: list[str], days: int, start: str = "2024-01-02", seed: int = 0) -> pd.DataFrame:
    """One-minute bars of US-like sessions (14:30-21:00 UTC, weekdays), indexed (datetime, symbol)."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range(start, periods=days)
    minute = np.arange(390, dtype=np.int64) * 60_000_000_000
    open_ns = sessions.values.astype("datetime64[ns]").astype(np.int64) + (14 * 60 + 30) * 60_000_000_000
    ts = (open_ns[:, None] + minute[None, :]).ravel()
    frames = []
    for k, sym in enumerate(symbols):
        r = rng.normal(0, 0.0008, len(ts))
        close = 50.0 * (k + 1) * np.exp(np.cumsum(r))
        open_ = np.r_[close[0], close[:-1]]
        spread = np.abs(rng.normal(0, 0.0005, len(ts))) * close
        f = pd.DataFrame({
            "open": open_, "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
            "close": close, "volume": rng.integers(100, 5000, len(ts)).astype(float),
        })
        f = f.round(2)  # stock prices carry 2 decimals (the store rounds to them too)
        f["vwap"] = ((f["open"] + f["close"]) / 2).round(2)
        f["trades"] = rng.integers(1, 50, len(ts)).astype(np.int64)
        f.index = pd.MultiIndex.from_arrays([pd.to_datetime(ts), np.full(len(ts), sym, dtype=object)],
                                            names=["datetime", "symbol"])
        frames.append(f)
    return pd.concat(frames).sort_index()


def daily_from_minutes(m: pd.DataFrame) -> pd.DataFrame:
    g = m.groupby([m.index.get_level_values("datetime").floor("D").rename("datetime"),
                   m.index.get_level_values("symbol").rename("symbol")])
    d = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
              volume=("volume", "sum"), trades=("trades", "sum"))
    d["vwap"] = g.apply(lambda x: float((x["vwap"] * x["volume"]).sum() / x["volume"].sum()))
    return d


SYMBOLS = ["AAA.US", "BBB.US", "CCC.US", "DDD.US", "EEE.US", "FFF.US"]




def chrome_options():
    """Options for Debian's headless Chromium (no --headless flag needed on the pytest command line)."""
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for a in CHROME_ARGS:
        opts.add_argument(a)
    return opts


class ServiceThread:
    """A SignalService on its own event loop in a thread, on a free loopback port."""

    def __init__(self, tables, verifier) -> None:
        self.loop = asyncio.new_event_loop()
        from pyplatform.clock import LiveClock
        from pyplatform.signals.server import ServiceConfig, SignalService

        self.svc = SignalService(tables, verifier, ServiceConfig(port=0, check_interval_s=0.1), clock=LiveClock())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.svc.start(), self.loop).result(10)
        return self.svc.url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.svc.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


SECRET = b"dashboard-test-secret-0123456789-abcdefgh"


def start_signal_service(tmp_path):
    """A real signal service over loopback with quotes/bars/signals tables; returns (service, tables, token)."""
    import time

    from pyplatform.domain.schemas import BARS, QUOTES, SIGNALS
    from pyplatform.signals.auth import KeyRing, RevocationList, TokenIssuer, TokenVerifier
    from pyplatform.stream import StreamTable
    from pyplatform.clock import SimClock

    tables = {"quotes": StreamTable("quotes", QUOTES, clock=SimClock()), "bars": StreamTable("bars", BARS, clock=SimClock()),
              "signals": StreamTable("signals", SIGNALS, clock=SimClock())}
    keys = KeyRing(SECRET)
    verifier = TokenVerifier(keys, RevocationList(tmp_path / "revoked.json"))
    token = TokenIssuer(keys).issue("dash", topics=["*"], symbols=["*"], now_ns=time.time_ns(), ttl_s=600)
    service = ServiceThread(tables, verifier)
    service.start()
    return service, tables, token


def quotes_batch(ts, symbol, last, volume) -> dict:
    """Quote rows in the QUOTES schema (unused fields NaN/0)."""
    n = len(ts)
    nan = [float("nan")] * n
    return {"ts": np.asarray(ts, np.int64), "symbol": [symbol] * n, "last": list(last), "open": nan, "high": nan,
            "low": nan, "volume": list(volume), "turnover": [0.0] * n, "bid": [x - 0.01 for x in last],
            "ask": [x + 0.01 for x in last], "bid_size": [1.0] * n, "ask_size": [1.0] * n}
