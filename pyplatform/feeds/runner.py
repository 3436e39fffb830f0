"""Wiring: settings + stream tables + symbols -> running iTick clients (the demo's entry point)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from pyplatform.clock import Clock, LiveClock
from pyplatform.config import Settings
from pyplatform.feeds.cache import RecentCache
from pyplatform.feeds.client import FeedConfig, ITickClient
from pyplatform.feeds.ingest import Gap, Ingestor
from pyplatform.feeds.rest import RestClient, backfill_bars
from pyplatform.feeds.schemas import DEPTH, QUOTES, TICKS
from pyplatform.feeds.symbols import rest_kind

__all__ = ["run_feed", "run_market_feed", "endpoints_for", "store_bar_writer", "FeedFailed", "PATH_FAMILIES"]

log = logging.getLogger(__name__)
#: iTick's per-class WebSocket path families: the current names (docs.itick.org) and the
#: older ``sws``/``fws``/``iws``/``cws`` ones (itick-org/free-stock-api ``start/address.md``).
PATH_FAMILIES: tuple[dict[str, str], ...] = (
    {"stock": "/stock", "forex": "/forex", "indices": "/indices", "crypto": "/crypto"},
    {"stock": "/sws", "forex": "/fws", "indices": "/iws", "crypto": "/cws"},
)


def endpoints_for(url: str, symbols: Iterable[str], paths: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Group symbols by WebSocket endpoint.

    iTick serves one endpoint per asset class. When the configured URL's path is one of a
    family of per-class paths -- ``paths`` (``Settings.itick_ws_paths``), or one of
    iTick's documented families (:data:`PATH_FAMILIES`: ``/stock /forex /indices /crypto``
    and ``/sws /fws /iws /cws``) -- each asset class is sent to its own path of that family
    on the same host. Any other URL (a proxy, the simulator on a custom path) takes every
    symbol on one connection.

    Parameters
    ----------
    url : str
    symbols : iterable of str
    paths : mapping, optional
        Asset class (``stock``, ``forex``, ``indices``, ``crypto``) -> path; checked first.

    Raises
    ------
    ValueError
        A symbol's asset class has no path in the family the URL belongs to.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    families = ([dict(paths)] if paths else []) + list(PATH_FAMILIES)
    family = next((f for f in families if path in {p.rstrip("/") for p in f.values()}), None)
    out: dict[str, list[str]] = {}
    for sym in symbols:
        if family is not None:
            kind = rest_kind(sym)
            if kind not in family:
                raise ValueError(f"no WebSocket path for {kind} symbols like {sym!r} (itick_ws_paths={family})")
            target = urlunsplit(parts._replace(path=family[kind]))
        else:
            target = url
        out.setdefault(target, []).append(sym)
    return out


class FeedFailed(Exception):
    """Several endpoints of one :func:`run_feed` failed; ``errors`` maps endpoint -> exception."""

    def __init__(self, errors: dict[str, BaseException]) -> None:
        super().__init__("; ".join(f"{url}: {type(e).__name__}: {e}" for url, e in errors.items()))
        self.errors = errors


def store_bar_writer(settings: Settings) -> Callable[[pa.Table], object]:
    """Write backfilled bars into the history store's ``bars_1m`` table (opened lazily)."""
    state: dict = {}

    def write(bars: pa.Table) -> None:
        if "store" not in state:
            from pyplatform.backends import open_store

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
                   clock: Clock | None = None, clients_out: list | None = None,
                   on_error: Callable[[ITickClient, BaseException], object] | None = None,
                   **feed_options) -> list[ITickClient]:
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
    clock : Clock, optional
        The clients' clock; this is a builder from settings, so without one it picks
        ``LiveClock()`` (the one place on the feed path that does).
    clients_out : list, optional
        Receives the clients as soon as they exist (to watch their ``stats``: ``state`` is
        ``running``, ``stopped`` or ``failed`` with the exception in ``fatal``).
    on_error : callable, optional
        ``on_error(client, exc)`` as soon as one endpoint fails for good (auth refused,
        subscription refused, an unexpected error), while its siblings go on streaming.
    feed_options
        Further :class:`FeedConfig` fields (heartbeat, timeouts, backoff...).

    Returns
    -------
    list of ITickClient
        The clients, after they stopped.

    Raises
    ------
    AuthenticationFailed, SubscriptionError, Exception
        The failure of the one endpoint that failed, once every endpoint has stopped (the
        others keep streaming into the tables and the shared cache until ``stop_event``
        or their own failure).
    FeedFailed
        When more than one endpoint failed (``errors`` has each).
    """
    symbols = list(symbols)
    clock = clock or LiveClock()
    secret = token if token is not None else (settings.itick_token.get_secret_value() if settings.itick_token else "")
    ticks, quotes, depth = _table(tables, "ticks", TICKS), _table(tables, "quotes", QUOTES), _table(tables, "depth", DEPTH)
    cache = RecentCache(cache_dir or settings.path("feeds", "cache"))
    ingestor = Ingestor(ticks, quotes, depth, cache=cache)
    ingestor.recover()
    rest = RestClient(rest_url or settings.itick_rest_url, secret)
    writer = bar_writer or store_bar_writer(settings)
    pending: set[asyncio.Task] = set()

    def on_gap(gap: Gap, syms: list[str], client: ITickClient) -> None:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(
            backfill_bars, rest, syms, gap.start_ns, gap.end_ns, writer))

        def done(t: asyncio.Task) -> None:
            if not t.cancelled() and t.exception() is not None:
                msg = f"REST backfill failed: {type(t.exception()).__name__}: {t.exception()}"
                client.stats.errors = (client.stats.errors + [msg])[-20:]  # the status shows it too
                log.warning("feed: %s", msg)
        task.add_done_callback(done)
        pending.add(task)
        task.add_done_callback(pending.discard)

    clients: list[ITickClient] = []
    try:
        for endpoint, syms in endpoints_for(url or settings.itick_ws_url, symbols, settings.itick_ws_paths).items():
            cfg = FeedConfig(url=endpoint, token=secret, symbols=tuple(syms), **feed_options)
            client = ITickClient(cfg, ingestor, clock)
            client.on_gap = lambda g, s=syms, c=client: on_gap(g, s, c)
            clients.append(client)
    except BaseException:
        cache.close()
        raise
    if clients_out is not None:
        clients_out.extend(clients)

    async def run_one(client: ITickClient) -> None:
        try:
            await client.run(stop_event)
        except Exception as exc:
            # this endpoint is done for; its siblings are not (they share the ingestor and
            # the cache, which therefore stay open until every client has returned)
            log.error("feed: endpoint %s failed: %s: %s", client.safe_url, type(exc).__name__, exc)
            if on_error is not None:
                try:
                    on_error(client, exc)
                except Exception:  # a broken callback must not take the feed down with it
                    log.exception("feed: on_error callback failed")
            raise

    try:
        results = await asyncio.gather(*(run_one(c) for c in clients), return_exceptions=True)
    finally:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        cache.close()
    errors = {c.config.url: r for c, r in zip(clients, results) if isinstance(r, BaseException)}
    if len(errors) == 1:
        raise next(iter(errors.values()))
    if errors:
        raise FeedFailed(errors)
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
