"""Wiring: settings + stream tables + symbols -> running iTick clients (the demo's entry point)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from pyplatform.clock import Clock
from pyplatform.config import Settings
from pyplatform.feeds.cache import RecentCache
from pyplatform.feeds.client import FeedConfig, ITickClient
from pyplatform.feeds.ingest import Gap, Ingestor
from pyplatform.feeds.rest import RestClient, backfill_bars
from pyplatform.feeds.schemas import DEPTH, QUOTES, TICKS
from pyplatform.feeds.symbols import rest_kind

__all__ = ["run_feed", "run_market_feed", "endpoints_for", "store_bar_writer"]

log = logging.getLogger(__name__)
_CLASS_PATHS = ("/stock", "/forex", "/indices", "/crypto")


def endpoints_for(url: str, symbols: Iterable[str]) -> dict[str, list[str]]:
    """Group symbols by WebSocket endpoint.

    iTick serves one endpoint per asset class (``/stock``, ``/forex``, ``/indices``,
    ``/crypto``). When the configured URL ends in one of those, each asset class is sent
    to its own path on the same host; any other URL (a proxy, the simulator on a custom
    path) takes every symbol on one connection.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    out: dict[str, list[str]] = {}
    for sym in symbols:
        if path in _CLASS_PATHS:
            target = urlunsplit(parts._replace(path="/" + rest_kind(sym)))
        else:
            target = url
        out.setdefault(target, []).append(sym)
    return out


def store_bar_writer(settings: Settings) -> Callable[[pa.Table], object]:
    """Write backfilled bars into the history store's ``bars_1m`` table (opened lazily)."""
    state: dict = {}

    def write(bars: pa.Table) -> None:
        if "store" not in state:
            from pyplatform.store import open_store

            state["store"] = open_store(settings)
        state["store"].write("bars_1m", bars)

    return write


def _table(tables, name: str, schema: pa.Schema):
    if isinstance(tables, Mapping):
        return tables.get(name)
    return tables.get_table(name, schema)


async def run_feed(settings: Settings, tables, symbols: Iterable[str], stop_event: asyncio.Event, *,
                   url: str | None = None, token: str | None = None, rest_url: str | None = None,
                   cache_dir=None, bar_writer: Callable[[pa.Table], object] | None = None,
                   clock: Clock | None = None, clients_out: list | None = None, **feed_options) -> list[ITickClient]:
    """Stream ``symbols`` into the ``ticks``/``quotes``/``depth`` tables until ``stop_event``.

    Parameters
    ----------
    settings : Settings
        ``itick_ws_url``, ``itick_rest_url``, ``itick_token`` and ``data_dir`` are used
        (``url``/``token``/``rest_url`` override them, e.g. with the simulator's).
    tables : StreamTables or mapping
        ``get_table(name, schema)`` registry or a dict of ``ticks``/``quotes``/``depth``.
    symbols : iterable of str
    stop_event : asyncio.Event
    cache_dir : path, optional
        LMDB cache directory (default ``data_dir/feeds/cache``); restored on start.
    bar_writer : callable, optional
        Where REST-backfilled bars go (default: the history store's ``bars_1m``).
    clients_out : list, optional
        Receives the clients as soon as they exist (to watch their ``stats``).
    feed_options
        Further :class:`FeedConfig` fields (heartbeat, timeouts, backoff...).

    Returns
    -------
    list of ITickClient
        The clients, after they stopped.
    """
    symbols = list(symbols)
    secret = token if token is not None else (settings.itick_token.get_secret_value() if settings.itick_token else "")
    ticks, quotes, depth = _table(tables, "ticks", TICKS), _table(tables, "quotes", QUOTES), _table(tables, "depth", DEPTH)
    cache = RecentCache(cache_dir or settings.path("feeds", "cache"))
    ingestor = Ingestor(ticks, quotes, depth, cache=cache)
    ingestor.recover()
    rest = RestClient(rest_url or settings.itick_rest_url, secret)
    writer = bar_writer or store_bar_writer(settings)
    pending: set[asyncio.Task] = set()

    def on_gap(gap: Gap, syms: list[str]) -> None:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(
            backfill_bars, rest, syms, gap.start_ns, gap.end_ns, writer))
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or log.warning("feed: REST backfill failed: %s", t.exception()))
        pending.add(task)
        task.add_done_callback(pending.discard)

    clients = []
    for endpoint, syms in endpoints_for(url or settings.itick_ws_url, symbols).items():
        cfg = FeedConfig(url=endpoint, token=secret, symbols=tuple(syms), **feed_options)
        clients.append(ITickClient(cfg, ingestor, clock=clock, on_gap=lambda g, s=syms: on_gap(g, s)))
    if clients_out is not None:
        clients_out.extend(clients)
    try:
        await asyncio.gather(*(c.run(stop_event) for c in clients))
    finally:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        cache.close()
    return clients


async def run_market_feed(settings: Settings, tables, symbols: Iterable[str], stop_event: asyncio.Event,
                          *, rate: float = 1000.0, sessions: bool = True, **kwargs) -> list[ITickClient]:
    """The platform's default feed: iTick when a token is configured, else the local simulator.

    With ``PYPLATFORM_ITICK_TOKEN`` set this is :func:`run_feed` on the configured endpoints.
    Without it, an :class:`~pyplatform.feeds.simulator.ExchangeSimulator` over ``symbols``
    is started on a free port (``rate`` ticks/s, trading sessions unless ``sessions=False``)
    and the client streams from it; the simulator stops with the feed.
    """
    symbols = list(symbols)
    if settings.itick_token is not None and settings.itick_token.get_secret_value():
        return await run_feed(settings, tables, symbols, stop_event, **kwargs)
    from pyplatform.feeds.simulator import SimulatorConfig, start_simulator

    sim = await start_simulator(SimulatorConfig(symbols=tuple(symbols), rate=rate, sessions=sessions, port=0,
                                                host=settings.simulator_host))
    log.info("no iTick token configured: streaming from the local simulator at %s", sim.ws_url)
    try:
        return await run_feed(settings, tables, symbols, stop_event, url=f"ws://{settings.simulator_host}:{sim.port}/all",
                              token="simulator", rest_url=sim.rest_url, **kwargs)
    finally:
        await sim.stop()
