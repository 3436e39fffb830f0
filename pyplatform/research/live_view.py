"""A live view for notebooks: rows from the signal service gathered into a DataFrame.

``pp.subscribe(...)`` returns a :class:`LiveView`. The client library's background thread
appends rows; the notebook reads ``view.frame()`` (all rows kept, bounded) or
``view.latest()`` (last row per topic and symbol), and Jupyter renders the latest values as
an HTML table that refreshes each time the cell is re-run, or continuously with
``view.display(seconds)``.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import pandas as pd

__all__ = ["LiveView"]


class LiveView:
    """Collects :class:`pyplatform.client.Message` rows (thread-safe, bounded)."""

    def __init__(self, max_rows: int = 100_000) -> None:
        self._rows: deque = deque(maxlen=max_rows)
        self._lock = threading.Lock()
        self.subscription = None
        self.received = 0

    def __call__(self, msg) -> None:  # the client library's callback
        row = dict(msg.row)
        row["_topic"], row["_seq"], row["_kind"] = msg.topic, msg.seq, msg.kind
        with self._lock:
            self._rows.append(row)
            self.received += 1

    def frame(self) -> pd.DataFrame:
        """Every row kept, indexed by (datetime, symbol) where rows carry ts and symbol."""
        with self._lock:
            rows = list(self._rows)
        df = pd.DataFrame(rows)
        if {"ts", "symbol"} <= set(df.columns):
            df["datetime"] = pd.to_datetime(df.pop("ts"), unit="ns")
            df = df.set_index(["datetime", "symbol"]).sort_index()
        return df

    def latest(self) -> pd.DataFrame:
        """The last row per (topic, symbol)."""
        df = self.frame()
        if df.empty:
            return df
        flat = df.reset_index()
        keys = ["_topic"] + (["symbol"] if "symbol" in flat.columns else [])
        return flat.groupby(keys, sort=True).last()

    def wait(self, rows: int = 1, timeout: float = 30.0) -> bool:
        """Block until at least ``rows`` rows arrived (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while self.received < rows and time.monotonic() < deadline:
            err = getattr(self.subscription, "error", None)
            if err is not None:  # e.g. refused subscription: say why instead of waiting
                raise err
            time.sleep(0.05)
        return self.received >= rows

    def display(self, seconds: float = 10.0, every: float = 1.0) -> None:
        """Refresh the latest values in place in Jupyter for ``seconds``."""
        from IPython.display import HTML, clear_output, display

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            clear_output(wait=True)
            display(HTML(self._repr_html_()))
            time.sleep(every)

    def stop(self) -> None:
        if self.subscription is not None:
            self.subscription.stop()

    def _repr_html_(self) -> str:
        latest = self.latest()
        body = latest.to_html(float_format="%.6g") if not latest.empty else "<i>waiting for rows…</i>"
        return f"<b>live: {self.received} rows received</b>{body}"


class LocalService:
    """A signal service in a background thread, fed by replaying history through the factor
    engine: for trying the live API from a notebook without running the whole platform.

    Parameters
    ----------
    factors : dict of name -> expression
    symbols : list of str, optional
    rows_per_second : float
        Replay speed (bar rows per second across symbols).
    settings : Settings, optional
        The environment's by default.
    clock : Clock
        Dates the subscriber token (e.g. ``pyplatform.clock.LiveClock()``); required so no
        time is read behind the caller's back.
    """

    def __init__(self, factors: dict[str, str], symbols=None, rows_per_second: float = 200.0,
                 settings=None, *, clock) -> None:
        import asyncio
        import os
        import secrets
        import socket
        import tempfile

        from pyplatform.config import get_settings
        from pyplatform.domain.schemas import factor_schema
        from pyplatform.signals.service import build_issuer
        from pyplatform.stream import StreamTables

        base = settings or get_settings()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._tmp = tempfile.TemporaryDirectory(prefix="pp-live-")
        secret = os.path.join(self._tmp.name, "jwt.secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        self.settings = base.model_copy(update={"signal_port": port, "jwt_secret_file": secret})
        self.url = f"ws://127.0.0.1:{port}"
        self.factors = factors
        self.symbols = symbols
        self.rate = rows_per_second
        self._clock = clock
        self.tables = StreamTables(None, clock=clock)
        self.table = self.tables.get_table("factors", factor_schema(list(factors)))
        self.token = build_issuer(self.settings).issue("notebook", topics=["factors:*"], symbols=["*"],
                                                       now_ns=clock.now_ns(), ttl_s=3600)
        self._loop = asyncio.new_event_loop()
        self._stop = None
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True, name="pp-live-service"),
                         threading.Thread(target=self._replay, daemon=True, name="pp-live-replay")]

    def start(self) -> "LocalService":
        self._threads[0].start()
        if not self._ready.wait(15):
            raise RuntimeError("local signal service did not start")
        self._threads[1].start()
        return self

    def _serve(self) -> None:
        import asyncio

        from pyplatform.signals.service import serve

        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._loop.run_until_complete(serve(self.settings, {"factors": self.table}, self._stop, clock=self._clock,
                                            use_redis=False,
                                            ready=lambda _: self._ready.set()))

    def _replay(self) -> None:
        import numpy as np
        import pyarrow as pa

        import pyarrow.compute as pc

        from pyplatform.factors import FactorEngine
        from pyplatform.research.session import bars, engine_input

        frame = bars(self.symbols, freq="1d", settings=self.settings)
        table = engine_input(frame)
        engine = FactorEngine(factors=self.factors)
        names = list(self.factors)
        step = max(1, int(self.rate / 10))
        for i in range(0, table.num_rows, step):
            if self._halt.is_set():
                return
            out = engine.feed(table.slice(i, step))
            # Rows keep their bar's time (a replay of history, not "now"), and warm-up rows
            # where no factor has a value yet are not published: a subscriber sees what a live
            # engine would publish for those bars.
            valid = None
            for n in names:
                ok = pc.is_valid(out.column(n)) if not pa.types.is_floating(out.schema.field(n).type) else \
                    pc.invert(pc.is_nan(pc.fill_null(out.column(n), np.nan)))
                valid = ok if valid is None else pc.or_(valid, ok)
            if valid is not None:
                out = out.filter(valid)
            if out.num_rows:
                self.table.append(out)
            time.sleep(0.1)

    def stop(self) -> None:
        self._halt.set()
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        for t in self._threads:
            if t.is_alive():
                t.join(10)
        self._tmp.cleanup()
