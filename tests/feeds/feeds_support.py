"""Helpers of the feed tests: a simulator + client session over real loopback WebSockets.

A plain module with a repo-unique name (not a conftest.py), imported by the test files.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from pyplatform.clock import SimClock
from pyplatform.config import get_settings
from pyplatform.feeds import run_feed
from pyplatform.feeds.simulator import SimulatorConfig, start_simulator

SYMBOLS = ["AAPL.US", "EURUSD.GB", "BTCUSDT.BA"]
TOKEN = "tk-5f1e9c0d2b7a4e11-secret"

#: heartbeats, timeouts and backoff shrunk to fractions of a second for tests (liveness
#: timeouts stay above a second: the shared test machine can starve a process that long)
FAST = dict(ping_interval_s=0.1, silence_timeout_s=2.0, ws_ping_interval_s=0.5, ws_ping_timeout_s=1.5,
            backoff_initial_s=0.05, backoff_max_s=0.2, stable_after_s=100.0, auth_timeout_s=2.0, close_timeout_s=0.5,
            open_timeout_s=2.0)


@dataclass
class Session:
    sim: object
    tables: object
    clients: list = field(default_factory=list)
    bars: list = field(default_factory=list)
    error: BaseException | None = None

    @property
    def client(self):
        return self.clients[0]

    def ticks(self) -> pa.Table:
        return self.tables.get_table("ticks").read()


def one_url(sim) -> str:
    """The simulator on a path that is not an asset-class path: one connection for all symbols."""
    return f"ws://127.0.0.1:{sim.port}/all"


async def feed_session(tmp_path, seconds: float, sim_config: SimulatorConfig | None = None, *, sim=None,
                       tables=None, token: str = TOKEN, symbols=SYMBOLS, cache_dir=None, settle: float = 0.1,
                       settings_kw: dict | None = None, **feed_kw) -> Session:
    """Run a client against a simulator for ``seconds``, quiesce the market, drain, stop.

    The market stays paused afterwards (``sim.resume()`` to go on with a shared simulator).
    """
    from pyplatform.stream import StreamTables

    own_sim = sim is None
    if own_sim:
        cfg = sim_config or SimulatorConfig()
        sim = await start_simulator(cfg)
    tables = tables if tables is not None else StreamTables(None, clock=SimClock())
    session = Session(sim, tables)
    stop = asyncio.Event()
    opts = {**FAST, **feed_kw}
    task = asyncio.create_task(run_feed(
        get_settings(data_dir=tmp_path, **(settings_kw or {})), tables, symbols, stop, url=opts.pop("url", one_url(sim)), token=token,
        rest_url=sim.rest_url, cache_dir=cache_dir or tmp_path / "cache", bar_writer=session.bars.append,
        clients_out=session.clients, **opts))
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            sim.pause()
            await sim.drained()
            await _settled(session, settle)
            stop.set()
        await task
    except BaseException as exc:  # the tests look at it
        session.error = exc
    finally:
        if own_sim:
            await sim.stop()
    return session


async def _settled(session: Session, grace: float, timeout: float = 20.0) -> None:
    """Wait until the client has written every distinct tick sent (or ``timeout``), then ``grace``.

    On a loaded machine the client may still be working through a backlog when the market
    pauses; the wait ends as soon as it has caught up, so it costs nothing otherwise.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        sent = session.sim.sent_ticks()
        distinct = len(set(zip(sent.column("symbol").to_pylist(), sent.column("seq").to_pylist())))
        if session.clients and session.clients[0].ingestor.written >= distinct:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(grace)


def tick_multiset(table: pa.Table) -> pd.Series:
    f = table.select(["symbol", "ts", "price", "volume"]).to_pandas()
    return f.value_counts().sort_index()


def assert_complete_and_unique(session: Session, identity=("symbol", "seq")) -> None:
    """Table == every distinct tick the simulator sent, each once.

    ``identity`` is what makes two messages the same tick: the sequence number when the
    simulator sends one, else (documented policy) symbol + ms timestamp + price + volume.
    """
    sent = session.sim.sent_ticks().to_pandas().drop_duplicates(list(identity))
    expected = tick_multiset(pa.Table.from_pandas(sent, preserve_index=False))
    got = tick_multiset(session.ticks())
    assert len(sent) > 0
    missing = expected.sub(got, fill_value=0)
    assert (missing <= 0).all(), f"{int(missing[missing > 0].sum())} sent ticks missing from the table"
    assert (missing >= 0).all(), f"{int(-missing[missing < 0].sum())} extra/duplicate rows in the table"
