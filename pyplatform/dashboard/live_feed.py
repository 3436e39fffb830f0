"""Feed the dashboard's :class:`LiveBuffer` from the signal service.

A :class:`~pyplatform.client.SignalClient` runs on its own event loop in a daemon thread (the
Dash server stays synchronous). Rows arrive one message at a time; they are collected and
handed to the buffer as columnar batches every ``flush_s`` so the buffer's vectorised folding
sees batches, not single rows. The same loop watches the client's connection and records
connected / reconnecting in the buffer, which the app's badge shows.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable

import pandas as pd

from pyplatform.clock import Clock
from pyplatform.dashboard.live_buffer import LiveBuffer

__all__ = ["LiveFeed", "route_rows"]

log = logging.getLogger(__name__)


def route_rows(buffer: LiveBuffer, topic: str, rows: list[dict]) -> None:
    """Hand one topic's collected rows to the buffer as a columnar batch."""
    if not rows:
        return
    frame = pd.DataFrame(rows).drop(columns=["seq"], errors="ignore")
    kind = topic.split(":", 1)[0]
    if kind == "ticks":
        buffer.on_ticks(frame)
    elif kind in ("bars", "bars_1m"):
        buffer.on_bars(frame)
    elif kind == "quotes":
        buffer.on_quotes(frame)
    elif kind == "signals":
        buffer.on_signals(frame)
    else:
        log.debug("live feed: topic %s has no dashboard view", topic)


class LiveFeed:
    """Subscribe to the signal service and keep a :class:`LiveBuffer` current.

    Parameters
    ----------
    buffer : LiveBuffer
    url : str
        ``ws://host:port`` of the signal service.
    token : str or callable
        Bearer token (or a function returning a fresh one on each connect).
    topics : list of str
        Topics to follow; ``bars``, ``quotes`` (folded into the forming bar) and
        ``signals[:strategy]`` are shown.
    symbols : list of str or "*"
    flush_s : float
        How often collected rows are handed over and the connection state is checked.
    clock : Clock
        Keyword, required: stamps the connection-state changes the dashboard shows
        (``LiveClock()`` in ``pyplatform dash`` and the demo).
    client_factory : callable, optional
        Builds the client (tests pass one with short back-offs).
    """

    def __init__(self, buffer: LiveBuffer, url: str, token, topics=("bars", "quotes", "signals"),
                 symbols="*", *, flush_s: float = 0.1, clock: Clock,
                 client_factory: Callable | None = None, **client_kw) -> None:
        from pyplatform.client import SignalClient

        self.buffer = buffer
        self.clock = clock
        factory = client_factory or SignalClient
        self.client = factory(url, token, list(topics), symbols, **client_kw)
        self.flush_s = flush_s
        self.error: BaseException | None = None
        self._pending: dict[str, list[dict]] = defaultdict(list)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pyplatform-dash-live-feed", daemon=True)

    def start(self) -> LiveFeed:
        self.buffer.set_connection("connecting", self.clock.now_ns(), self.client.url)
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        self.buffer.set_connection("offline", self.clock.now_ns(), "stopped")

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - kept for the caller, shown on the badge
            self.error = exc
            self.buffer.set_connection("disconnected", self.clock.now_ns(), f"{type(exc).__name__}: {exc}")
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        consumer = asyncio.create_task(self._consume())
        watcher = asyncio.create_task(self._watch())
        stopper = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        watcher.cancel()
        await self.client.close()
        consumer.cancel()
        for task in (consumer, watcher):
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._flush()
        if consumer in done and consumer.exception() is not None:
            raise consumer.exception()

    async def _consume(self) -> None:
        async for msg in self.client:
            with self._lock:
                self._pending[msg.topic].append(msg.row)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
        for topic, rows in pending.items():
            try:
                route_rows(self.buffer, topic, rows)
            except ValueError as exc:  # a malformed batch is reported, the feed keeps going
                log.warning("live feed: %s rows rejected: %s", topic, exc)

    async def _watch(self) -> None:
        # SignalClient reconnects by itself; its open socket and connect count tell us the state
        seen_connects = 0
        state = "connecting"
        while True:
            self._flush()
            is_open = getattr(self.client, "_ws", None) is not None
            connects = self.client.connects
            new = "connected" if is_open else ("reconnecting" if seen_connects or connects else "connecting")
            if new != state or connects != seen_connects:
                if new != state:
                    self.buffer.set_connection(new, self.clock.now_ns(), self.client.url)
                state, seen_connects = new, connects
            await asyncio.sleep(self.flush_s)


