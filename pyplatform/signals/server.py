"""The asyncio/WebSocket adapter of the signal service.

Everything that decides anything lives in the sans-I/O parts (:mod:`protocol`,
:mod:`fanout`, :mod:`auth`); this module moves bytes: it authenticates the HTTP upgrade
(``Authorization: Bearer <jwt>``), runs one reader and one writer task per connection,
bridges stream-table appends into the event loop, and drives the Redis hot cache.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import ssl as ssl_mod
import uuid
import weakref
from dataclasses import dataclass, field
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from pyplatform.clock import Clock, LiveClock
from pyplatform.signals.auth import AuthError, TokenVerifier
from pyplatform.signals.fanout import Fanout, Subscriber, SubscribeError
from pyplatform.signals.protocol import Close, CloseCode, SendControl, Session, SessionConfig, Subscribe, Unsubscribe
from pyplatform.signals.redis_cache import RedisHotCache
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, SUBPROTOCOLS, JsonCodec, MsgpackZstdCodec

__all__ = ["ServiceConfig", "SignalService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of one signal-service process.

    Parameters
    ----------
    ping_interval_s, ping_timeout_s : float
        Server-side WebSocket pings; a peer that does not answer in time is dropped.
    max_message_bytes : int
        Largest client message accepted (bigger closes with 1009).
    queue_frames : int
        Per-connection queue bound; a client this far behind is dropped (1013).
    compress_min_bytes : int
        msgpack frames at least this long are zstd-compressed.
    check_interval_s : float
        How often token expiry and revocation are re-checked on open connections.
    coalesce_bytes : int
        When a client has a backlog, queued messages up to this size share one WebSocket
        message (0 disables).
    replay_chunk_rows : int
        Replays longer than this are read and queued in chunks, yielding to the event loop
        between chunks.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    ping_interval_s: float | None = 30.0
    ping_timeout_s: float | None = 30.0
    max_message_bytes: int = 64 * 1024
    queue_frames: int = 1_000
    compress_min_bytes: int = 4096
    max_rows_per_frame: int = 2_000
    write_limit: int = 256 * 1024
    check_interval_s: float = 1.0
    close_timeout_s: float = 2.0
    coalesce_bytes: int = 256 * 1024
    replay_chunk_rows: int = 100_000
    session: SessionConfig = field(default_factory=SessionConfig)


def _direct_writer(ws: ServerConnection, text: bool) -> Any:
    """Write a frame now if the connection is idle and not congested (as ``websockets.broadcast`` does).

    Saves the writer task a wake-up per frame in the common case; when the socket buffer
    is above its high-water mark (``paused``) frames go through the queue and the writer,
    which waits for the drain, so backpressure and slow-consumer detection still apply.
    """
    protocol = ws.protocol
    send = protocol.send_text if text else protocol.send_binary

    def direct(frame: bytes) -> bool:
        # getattr: these are websockets internals (used by its own broadcast()); if a release
        # renames them we fall back to the queued path rather than break
        if protocol.state is not State.OPEN or getattr(ws, "send_in_progress", True) is not None \
                or getattr(ws, "paused", True):
            return False
        try:
            send(frame)
            ws.send_data()
        except Exception:  # the connection is going away; its reader will clean up
            return False
        return True

    return direct


class _Conn:
    __slots__ = ("ws", "sub", "session", "wake", "cid", "closing", "writer")

    def __init__(self, ws: ServerConnection, sub: Subscriber, session: Session, wake: asyncio.Event, cid: str) -> None:
        self.ws, self.sub, self.session, self.wake, self.cid, self.closing = ws, sub, session, wake, cid, False
        self.writer: asyncio.Task | None = None


class SignalService:
    """The WebSocket signal service.

    Parameters
    ----------
    tables : mapping of str to StreamTable
        Any of ``quotes``, ``bars``, ``factors``, ``signals``.
    verifier : TokenVerifier
        Checks the bearer token of every connection.
    config : ServiceConfig
    clock : Clock
        Time for token expiry and rate limits.
    redis_url : str, optional
        Enables the hot cache and the shared subscription registry.
    ssl : ssl.SSLContext, optional
        Serve ``wss://``.
    naive : bool
        Serialise per client (benchmark baseline only).
    """

    def __init__(self, tables: Mapping[str, Any], verifier: TokenVerifier, config: ServiceConfig | None = None, *,
                 clock: Clock | None = None, redis_url: str | None = None, ssl: ssl_mod.SSLContext | None = None,
                 naive: bool = False, instance: str | None = None) -> None:
        self.config = config or ServiceConfig()
        self.verifier = verifier
        self.clock = clock or LiveClock()
        self.ssl = ssl
        self.instance = instance or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        codecs = {JSON_SUBPROTOCOL: JsonCodec(), MSGPACK_SUBPROTOCOL: MsgpackZstdCodec(self.config.compress_min_bytes)}
        self.fanout = Fanout(tables, codecs, max_rows_per_frame=self.config.max_rows_per_frame, naive=naive)
        self.redis: RedisHotCache | None = None
        if redis_url:
            self.redis = RedisHotCache(redis_url, self.instance, full_state=self._full_state)
            self.fanout.row_hooks.append(self.redis.on_rows)
        self._conns: dict[str, _Conn] = {}
        # claims verified at the handshake, by connection; weak so a handshake that fails
        # after authentication leaves nothing behind
        self._claims: weakref.WeakKeyDictionary[ServerConnection, Any] = weakref.WeakKeyDictionary()
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._removers: list[Any] = []
        self._pump_scheduled: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped_slow = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for name, table in self.fanout.tables.items():
            self._removers.append(table.add_listener(lambda first, last, _n=name: self._notify(_n)))
        if self.redis is not None:
            self._tasks.append(asyncio.create_task(self.redis.run(self._stop), name="redis-writer"))
        self._tasks.append(asyncio.create_task(self._checker(), name="token-checker"))
        self._server = await ws_serve(
            self._handle, self.config.host, self.config.port, process_request=self._authenticate,
            subprotocols=list(SUBPROTOCOLS), select_subprotocol=self._select_subprotocol, compression=None,
            max_size=self.config.max_message_bytes, ping_interval=self.config.ping_interval_s,
            ping_timeout=self.config.ping_timeout_s, write_limit=self.config.write_limit, ssl=self.ssl,
            close_timeout=self.config.close_timeout_s,
        )
        for name in self.fanout.tables:  # rows appended before start
            self._notify(name)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl else 'ws'}://{self.config.host}:{self.port}"

    async def stop(self) -> None:
        self._stop.set()
        for remove in self._removers:
            remove()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.redis is not None:
            await self.redis.close()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded", ...}``; degraded while Redis is configured but unreachable."""
        redis_status = "disabled" if self.redis is None else self.redis.status
        status = "degraded" if redis_status == "degraded" else "ok"
        return {"status": status, "redis": redis_status, "redis_error": None if self.redis is None else self.redis.last_error,
                "connections": len(self._conns), "subscribers": self.fanout.subscriber_count(),
                "cursors": dict(self.fanout.cursor), "dropped_slow": self.dropped_slow, "instance": self.instance}

    # ------------------------------------------------------------------ stream bridge
    def _notify(self, name: str) -> None:
        """Called from the appending thread: schedule one pump of ``name`` on the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._schedule, name)
        except RuntimeError:  # loop closing
            pass

    def _schedule(self, name: str) -> None:
        if name not in self._pump_scheduled:  # coalesce bursts of appends into one pump
            self._pump_scheduled.add(name)
            self._loop.call_soon(self._pump, name)  # type: ignore[union-attr]

    def _pump(self, name: str) -> None:
        self._pump_scheduled.discard(name)
        try:
            self.fanout.pump(name)
        except Exception:
            log.exception("fan-out of %s failed", name)

    def _full_state(self) -> dict[str, Any]:
        return {name: self.fanout.latest(name) for name in self.fanout.tables}

    # ------------------------------------------------------------------ handshake
    @staticmethod
    def _select_subprotocol(conn: ServerConnection, offered: Any) -> Any:
        for p in offered:
            if p in SUBPROTOCOLS:
                return p
        return None  # no (known) subprotocol offered: JSON

    def _authenticate(self, conn: ServerConnection, request: Any) -> Any:
        path = request.path.split("?", 1)[0]
        if path == "/health":
            h = self.health()
            return conn.respond(HTTPStatus.OK if h["status"] == "ok" else HTTPStatus.SERVICE_UNAVAILABLE, json.dumps(h) + "\n")
        if "token=" in request.path or "access_token=" in request.path:
            return conn.respond(HTTPStatus.BAD_REQUEST, "tokens in the URL are refused (they end up in logs); "
                                "send 'Authorization: Bearer <token>'\n")
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return conn.respond(HTTPStatus.UNAUTHORIZED, "missing 'Authorization: Bearer <token>' header\n")
        try:
            claims = self.verifier.verify(token.strip(), self.clock.now_ns())
        except AuthError as exc:
            return conn.respond(HTTPStatus.UNAUTHORIZED, f"{exc}\n")
        self._claims[conn] = claims
        return None

    # ------------------------------------------------------------------ connections
    async def _handle(self, ws: ServerConnection) -> None:
        claims = self._claims.pop(ws)
        cid = f"c{next(self._ids)}"
        wake = asyncio.Event()
        codec = self.fanout.codecs[ws.subprotocol or JSON_SUBPROTOCOL]
        sub = Subscriber(cid, codec, self.config.queue_frames, wake.set, on_lag=lambda: self._on_lag(cid),
                         direct=_direct_writer(ws, codec.text))
        conn = _Conn(ws, sub, Session(claims, self.clock.now_ns(), self.config.session), wake, cid)
        self._conns[cid] = conn
        writer = conn.writer = asyncio.create_task(self._writer(conn), name=f"writer-{cid}")
        try:
            async for msg in ws:
                now = self.clock.now_ns()
                actions = conn.session.receive_text(msg, now) if isinstance(msg, str) else conn.session.receive_bytes(msg, now)
                for action in actions:
                    await self._apply(conn, action)
        except ConnectionClosed:
            pass
        finally:
            self._conns.pop(cid, None)
            self.fanout.detach(sub)
            if self.redis is not None:
                self.redis.unregister(cid)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _apply(self, conn: _Conn, action: Any) -> None:
        sub = conn.sub
        if isinstance(action, SendControl):
            sub.push(sub.codec.control(action.message))
        elif isinstance(action, Subscribe):
            extra = None
            if action.from_seq is None and self.redis is not None and action.topic.table in self.fanout.tables:
                # awaited BEFORE the synchronous subscribe so nothing interleaves between the
                # snapshot's cursor and the live stream
                extra = await self.redis.snapshot(action.topic.table, self.fanout.tables[action.topic.table].schema,
                                                  action.symbols, action.topic.arg if action.topic.kind == "signals" else None)
            if conn.closing:
                return
            try:
                pos, ack = action.from_seq, True
                table = action.topic.table
                chunk = self.config.replay_chunk_rows
                # a long replay goes chunk by chunk, yielding in between, so it cannot stall other clients
                while pos is not None and table in self.fanout.cursor and self.fanout.cursor[table] - pos > chunk:
                    pos = self.fanout.replay_chunk(sub, action.topic, action.symbols, pos, chunk,
                                                   request_id=action.request_id, ack=ack)
                    ack = False
                    await asyncio.sleep(0)
                    if conn.closing or sub.lagged:
                        return
                self.fanout.subscribe(sub, action.topic, action.symbols, pos, request_id=action.request_id,
                                      extra_latest=extra, ack=ack)
            except SubscribeError as exc:
                conn.session.topics.discard(action.topic.name)
                sub.push(sub.codec.control(exc.info))
                return
            if self.redis is not None:
                self.redis.register(conn.cid, conn.session.claims.subject, action.topic.name, action.symbols,
                                    self.clock.now_ns())
        elif isinstance(action, Unsubscribe):
            self.fanout.unsubscribe(sub, action.topic)
            if self.redis is not None:
                self.redis.unregister(conn.cid, action.topic.name)
            sub.push(sub.codec.control({"type": "unsubscribed", "topic": action.topic.name, "id": action.request_id}))
        elif isinstance(action, Close):
            await self._close(conn, action.code, action.reason)

    async def _close(self, conn: _Conn, code: int, reason: str) -> None:
        if conn.closing:
            return
        conn.closing = True
        reason = reason.encode()[:120].decode(errors="ignore")  # a close frame carries at most 123 bytes of reason
        self.fanout.detach(conn.sub)
        log.info("closing %s (%s): %d %s", conn.cid, conn.session.claims.subject, code, reason)
        # close in the background: a stuck peer must not stall whoever asked for the close
        asyncio.get_running_loop().create_task(conn.ws.close(code, reason))

    def _on_lag(self, cid: str) -> None:
        conn = self._conns.get(cid)
        if conn is not None and not conn.closing:
            self.dropped_slow += 1
            asyncio.get_running_loop().create_task(self._drop_slow(conn))

    async def _drop_slow(self, conn: _Conn) -> None:
        """Tell a slow consumer the last sequence it was sent and drop it; nobody waits for it."""
        sub, ws = conn.sub, conn.ws
        self.fanout.detach(sub)
        if conn.writer is not None:  # it may be blocked on the full socket: stop it between frames
            conn.writer.cancel()
            await asyncio.gather(conn.writer, return_exceptions=True)
        notice = sub.lag_notice()
        try:
            await asyncio.wait_for(ws.send(sub.codec.control(notice), text=sub.codec.text), timeout=self.config.close_timeout_s)
        except (asyncio.TimeoutError, ConnectionClosed):
            pass
        seqs = ",".join(f"{k}={v}" for k, v in notice["delivered"].items())
        await self._close(conn, CloseCode.TRY_AGAIN_LATER, f"slow consumer; delivered {seqs}")

    async def _writer(self, conn: _Conn) -> None:
        sub, ws, codec = conn.sub, conn.ws, conn.sub.codec
        text, coalesce = codec.text, self.config.coalesce_bytes
        try:
            while True:
                if not sub.queue:
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                frame, topic, seq = sub.queue.popleft()
                sent = [(topic, seq)]
                if sub.queue and coalesce and codec.mergeable(frame):
                    # a backlog: let several messages share one WebSocket message
                    parts, size = [frame], len(frame)
                    while sub.queue and size < coalesce and codec.mergeable(sub.queue[0][0]):
                        f, t, q = sub.queue.popleft()
                        parts.append(f)
                        sent.append((t, q))
                        size += len(f)
                    frame = codec.merge(parts)
                try:
                    await ws.send(frame, text=text)
                finally:
                    # send() first suspends on drain, after the frame is in the transport, so a
                    # writer cancelled there (slow-consumer drop) has still handed this frame over
                    for t, q in sent:
                        sub.mark_sent(t, q)
        except ConnectionClosed:
            return

    async def _checker(self) -> None:
        """Close connections whose token expired or was revoked since they connected."""
        while not self._stop.is_set():
            await asyncio.sleep(self.config.check_interval_s)
            now = self.clock.now_ns()
            revs = self.verifier.revocations
            if revs is not None and self.redis is not None and self.redis.status == "ok":
                remote = await self.redis.revoked(now // 1_000_000_000)
                if remote is not None:
                    revs.set_remote(remote)
            revoked = revs.current() if revs is not None else frozenset()
            for conn in list(self._conns.values()):
                if conn.closing:
                    continue
                actions = conn.session.tick(now)
                if not actions and conn.session.claims.token_id in revoked:
                    actions = conn.session.revoke()
                for a in actions:
                    await self._apply(conn, a)
