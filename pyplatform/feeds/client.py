"""The iTick WebSocket client (asyncio adapter around the sans-I/O decoder and ingestor).

Connection life: open with the token in the ``token`` handshake header -> connect ack ->
``resAc=auth`` result (a failure raises :class:`AuthenticationFailed`: it is reported and
never retried, since the same token would fail again) -> subscribe everything -> stream.
While streaming, four tasks cooperate on one event loop: the receiver appends frames to a
buffer, the flusher decodes and ingests the buffer every ``flush_interval_s`` (so many
messages are handled per iteration), the pinger sends ``{"ac":"ping"}`` every
``ping_interval_s`` and checks the ``pong`` echo, and the watchdog declares the
connection dead after ``silence_timeout_s`` without a frame. WebSocket-level pings run
underneath (``ws_ping_interval_s``). Any loss reconnects with exponential backoff and full
jitter, then re-authenticates and re-subscribes every symbol.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pyplatform.clock import Clock
from pyplatform.config import mask_value
from pyplatform.feeds.decoder import FeedDecoder
from pyplatform.feeds.ingest import Gap, Ingestor
from pyplatform.feeds.logsafe import RedactingLogger
from pyplatform.feeds.messages import AuthResult, Connected, Pong, ServerNotice, SubscribeResult, ping_message, subscribe_message
from pyplatform.feeds.messages import DATA_TYPES

__all__ = ["FeedConfig", "FeedStats", "ITickClient", "AuthenticationFailed", "SubscriptionError",
           "SubscriptionLimitError", "DeadConnection", "backoff_delay"]

log = logging.getLogger(__name__)


class AuthenticationFailed(RuntimeError):
    """The token was refused: ``resAc=auth`` with ``code`` 0, a close with 1008 before the
    auth result, or the WebSocket upgrade answered HTTP 401/403 (``status`` says which)."""

    def __init__(self, msg: str, status: int | None = None) -> None:
        super().__init__(msg)
        self.status = status


#: HTTP statuses of a refused upgrade that mean "this key will not do": never retried.
AUTH_STATUSES = frozenset({401, 403})


class SubscriptionError(RuntimeError):
    """The server refused the subscription (``resAc=subscribe``, ``code`` 0)."""


class SubscriptionLimitError(SubscriptionError):
    """The plan's maximum number of subscriptions was exceeded."""


class DeadConnection(ConnectionError):
    """No frame for longer than the silence timeout, or no ack/auth in time."""


@dataclass(frozen=True)
class FeedConfig:
    """Typed, frozen settings of one iTick connection.

    Parameters
    ----------
    url : str
        WebSocket endpoint (``wss://api.itick.org/stock``, the simulator's ``ws://...``).
    token : SecretStr
        API token; sent only in the ``token`` handshake header, never logged.
    symbols : tuple of str
        Platform symbols to subscribe (``AAPL.US``; sent as ``AAPL$US``).
    types : tuple of str
        ``quote``, ``depth``, ``tick``.
    ping_interval_s : float
        Application heartbeat period (iTick asks for 30 s).
    silence_timeout_s : float
        A connection with no frame for this long is dead.
    ws_ping_interval_s, ws_ping_timeout_s : float or None
        WebSocket-level keepalive pings.
    backoff_initial_s, backoff_max_s : float
        Reconnect delay: ``min(max, initial * 2**attempt)`` with full jitter.
    stable_after_s : float
        A session that lasted this long resets the backoff.
    close_timeout_s : float
        How long a closing handshake may take before the socket is dropped (a dead
        connection is dropped at once).
    flush_interval_s, max_batch : float, int
        Decode/ingest every ``flush_interval_s`` or once ``max_batch`` frames wait.
    """

    url: str
    token: SecretStr
    symbols: tuple[str, ...]
    types: tuple[str, ...] = DATA_TYPES
    ping_interval_s: float = 30.0
    silence_timeout_s: float = 60.0
    ws_ping_interval_s: float | None = 20.0
    ws_ping_timeout_s: float | None = 20.0
    open_timeout_s: float = 10.0
    auth_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 30.0
    close_timeout_s: float = 2.0
    flush_interval_s: float = 0.005
    max_batch: int = 20_000
    max_queue: int = 4096

    def __post_init__(self) -> None:
        if not isinstance(self.token, SecretStr):
            object.__setattr__(self, "token", SecretStr(str(self.token)))
        if not self.token.get_secret_value():
            raise ValueError("token is empty: set PYPLATFORM_ITICK_TOKEN (or use the simulator)")
        object.__setattr__(self, "symbols", tuple(self.symbols))
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")
        for t in self.types:
            if t not in DATA_TYPES:
                raise ValueError(f"types: unknown data type {t!r}; expected one of {DATA_TYPES}")
        if "?" in self.url and "token" in self.url.lower():
            raise ValueError("the token must not be in the URL; it goes in the 'token' header")


@dataclass
class FeedStats:
    """Counters of one client (read them while it runs)."""

    connects: int = 0
    reconnects: int = 0
    auth_failures: int = 0
    subscribed: int = 0
    frames: int = 0
    ticks: int = 0
    quotes: int = 0
    depth: int = 0
    duplicates: int = 0
    pings: int = 0
    pongs: int = 0
    pong_mismatches: int = 0
    dead_connections: int = 0
    gaps: list[Gap] = field(default_factory=list)
    last_error: str | None = None
    #: ``idle`` -> ``running`` -> ``stopped`` (stop requested) or ``failed`` (``fatal`` says why)
    state: str = "idle"
    fatal: BaseException | None = None
    errors: list[str] = field(default_factory=list)  #: the most recent connection errors (up to 20)
    latency_ns: list[np.ndarray] = field(default_factory=list)

    def latency_percentiles(self, q=(50, 99)) -> dict[int, float]:
        """Receive-to-table latency percentiles in microseconds over the recorded batches."""
        if not self.latency_ns:
            return {p: float("nan") for p in q}
        lat = np.concatenate(self.latency_ns)
        return {p: float(np.percentile(lat, p) / 1e3) for p in q}


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in ``[initial/2, min(max, initial*2**n)]``."""
    cap = min(maximum, initial * (2 ** min(attempt, 30)))
    return rng.uniform(min(initial / 2, cap), cap)


class ITickClient:
    """One iTick WebSocket connection kept alive, feeding an :class:`Ingestor`.

    Parameters
    ----------
    config : FeedConfig
    ingestor : Ingestor
        Where decoded data is written (tick/quote/depth tables, cache, dedupe).
    clock : Clock
        Timestamps for pings, receive times and depth messages without ``t`` (required:
        ``LiveClock()`` for a live feed).
    on_gap : callable, optional
        Called with each :class:`Gap` closed after a reconnect/restart (e.g. REST backfill).
    """

    def __init__(self, config: FeedConfig, ingestor: Ingestor, clock: Clock,
                 on_gap: Callable[[Gap], object] | None = None, seed: int | None = None) -> None:
        self.config = config
        self.ingestor = ingestor
        self.clock = clock
        self.on_gap = on_gap
        self.decoder = FeedDecoder(config.symbols)
        self.stats = FeedStats()
        self._rng = random.Random(seed)
        self._buf: list[str | bytes] = []
        self._buf_t: list[int] = []
        self._outstanding: dict[str, float] = {}
        self._last_rx = 0.0
        self.connected = asyncio.Event()
        #: the URL as logs and reprs show it (a proxy URL with user:password@ is masked)
        self.safe_url = mask_value(config.url)

    def __repr__(self) -> str:
        return f"ITickClient(url={self.safe_url!r}, symbols={len(self.config.symbols)}, token=***)"

    # -- main loop ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set, reconnecting as needed.

        Raises
        ------
        AuthenticationFailed
            The token was refused (reported once; not retried).
        SubscriptionError
            The subscription was refused (e.g. :class:`SubscriptionLimitError`).
        """
        self.stats.state = "running"
        try:
            await self._run(stop)
        except BaseException as exc:
            self.stats.state, self.stats.fatal = ("stopped", None) if isinstance(exc, asyncio.CancelledError) else ("failed", exc)
            raise
        self.stats.state = "stopped"

    async def _run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                try:
                    await self._session(stop)
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    if status in AUTH_STATUSES:
                        # a gateway refusing the key at the handshake: the same key fails again
                        raise AuthenticationFailed(f"HTTP {status} at the WebSocket handshake", status) from None
                    raise
            except AuthenticationFailed as exc:
                self.stats.auth_failures += 1
                self.stats.last_error = str(exc)
                log.error("feed: authentication failed at %s: %s; not retrying (check PYPLATFORM_ITICK_TOKEN)",
                          self.safe_url, exc)
                raise
            except SubscriptionError as exc:
                self.stats.last_error = str(exc)
                log.error("feed: subscription refused: %s", exc)
                raise
            except (OSError, ConnectionClosed, TimeoutError, InvalidHandshake, DeadConnection) as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self.stats.errors = (self.stats.errors + [self.stats.last_error])[-20:]
                log.warning("feed: connection to %s lost (%s)", self.safe_url, self.stats.last_error)
            except InvalidURI:
                raise
            finally:
                self.connected.clear()
                self._flush()
            if stop.is_set():
                break
            if time.monotonic() - started >= self.config.stable_after_s:
                attempt = 0
            self.ingestor.mark_disconnected("reconnect", self.config.url)
            delay = backoff_delay(attempt, self.config.backoff_initial_s, self.config.backoff_max_s, self._rng)
            attempt += 1
            self.stats.reconnects += 1
            log.info("feed: reconnecting in %.2fs (attempt %d)", delay, attempt)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass

    async def _session(self, stop: asyncio.Event) -> None:
        cfg = self.config
        token = cfg.token.get_secret_value()
        async with connect(cfg.url, additional_headers={"token": token}, open_timeout=cfg.open_timeout_s,
                           ping_interval=cfg.ws_ping_interval_s, ping_timeout=cfg.ws_ping_timeout_s,
                           max_queue=cfg.max_queue, max_size=1 << 24, close_timeout=cfg.close_timeout_s,
                           logger=RedactingLogger(logging.getLogger("websockets.client"), token)) as ws:
            self.stats.connects += 1
            self._last_rx = time.monotonic()
            self._outstanding.clear()
            await self._authenticate(ws)
            await ws.send(subscribe_message(cfg.symbols, cfg.types))
            self.connected.set()
            tasks = [asyncio.create_task(c) for c in (self._receive(ws), self._flusher(), self._pinger(ws),
                                                       self._watchdog(), stop.wait())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    if isinstance(t.exception(), DeadConnection):
                        # a half-dead peer would never answer a closing handshake either
                        ws.transport.abort()
                    raise t.exception()
            if not stop.is_set():
                raise DeadConnection("server closed the stream")

    async def _authenticate(self, ws) -> None:
        try:
            async with asyncio.timeout(self.config.auth_timeout_s):
                while True:
                    raw = await ws.recv()
                    self._last_rx = time.monotonic()
                    decoded = self.decoder.decode([raw], self.clock.now_ns())
                    for ev in decoded.events:
                        if isinstance(ev, AuthResult):
                            if not ev.ok:
                                raise AuthenticationFailed(ev.msg or "auth failed")
                            log.info("feed: authenticated at %s", self.safe_url)
                            return
                        if isinstance(ev, Connected):
                            log.info("feed: connected to %s", self.safe_url)
                    self._apply(decoded, [time.monotonic_ns()])
        except TimeoutError:
            raise DeadConnection(f"no auth result within {self.config.auth_timeout_s}s") from None
        except ConnectionClosed as exc:
            # iTick closes the socket right after "auth failed"; a close before any auth
            # result with a policy-violation code is reported as an auth failure too.
            if exc.rcvd is not None and exc.rcvd.code == 1008:
                raise AuthenticationFailed(exc.rcvd.reason or "auth failed") from None
            raise

    # -- streaming tasks ----------------------------------------------------------------
    async def _receive(self, ws) -> None:
        buf, buf_t, cap = self._buf, self._buf_t, self.config.max_batch
        async for frame in ws:
            buf.append(frame)
            buf_t.append(time.monotonic_ns())
            self._last_rx = time.monotonic()
            if len(buf) >= cap:
                self._flush()

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            self._flush()

    async def _pinger(self, ws) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval_s)
            ms = str(self.clock.now_ns() // 1_000_000)
            self._outstanding[ms] = time.monotonic()
            await ws.send(ping_message(int(ms)))
            self.stats.pings += 1

    async def _watchdog(self) -> None:
        period = min(self.config.silence_timeout_s / 4, 1.0)
        while True:
            await asyncio.sleep(period)
            silent = time.monotonic() - self._last_rx
            if silent > self.config.silence_timeout_s:
                self.stats.dead_connections += 1
                raise DeadConnection(f"no frame for {silent:.2f}s (silence timeout {self.config.silence_timeout_s}s)")

    # -- processing ---------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._buf:
            return
        frames, times = self._buf[:], self._buf_t[:]
        self._buf.clear()
        self._buf_t.clear()
        decoded = self.decoder.decode(frames, self.clock.now_ns())
        self._apply(decoded, times)

    def _apply(self, decoded, times: list[int]) -> None:
        self.stats.frames += len(times)
        result = self.ingestor.ingest(decoded, self.config.url)
        done = time.monotonic_ns()
        if result.ticks:
            self.stats.latency_ns.append(done - np.asarray(times, np.int64))
            if len(self.stats.latency_ns) > 4096:
                del self.stats.latency_ns[:2048]
        self.stats.ticks += result.ticks
        self.stats.quotes += result.quotes
        self.stats.depth += result.depth
        self.stats.duplicates += result.duplicates
        for gap in result.gaps:
            self.stats.gaps.append(gap)
            log.warning("feed: gap of %.3fs (%s, %d sequence numbers missing)",
                        (gap.end_ns - gap.start_ns) / 1e9, gap.reason, gap.missing)
            if self.on_gap is not None:
                self.on_gap(gap)
        for ev in decoded.events:
            self._on_event(ev)

    def _on_event(self, ev) -> None:
        if isinstance(ev, Pong):
            if self._outstanding.pop(ev.params, None) is not None:
                self.stats.pongs += 1
            else:
                self.stats.pong_mismatches += 1
                log.warning("feed: pong %r does not echo an outstanding ping", ev.params)
        elif isinstance(ev, SubscribeResult):
            if ev.ok:
                self.stats.subscribed += 1
                log.info("feed: subscribed %d symbols (%s)", len(self.config.symbols), ",".join(self.config.types))
            elif ev.limit_exceeded:
                raise SubscriptionLimitError(f"{ev.msg} ({len(self.config.symbols)} symbols requested)")
            else:
                raise SubscriptionError(ev.msg)
        elif isinstance(ev, AuthResult) and not ev.ok:
            raise AuthenticationFailed(ev.msg or "auth failed")
        elif isinstance(ev, ServerNotice):
            log.warning("feed: server notice code=%s resAc=%s: %s", ev.code, ev.res_ac, ev.msg)
