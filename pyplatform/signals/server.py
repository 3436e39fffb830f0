"""The asyncio/WebSocket adapter of the signal service.

Everything that decides anything lives in the sans-I/O parts (:mod:`protocol`,
:mod:`fanout`, :mod:`auth`); this module moves bytes: it authenticates the HTTP upgrade
(``Authorization: Bearer <jwt>``), runs one reader and one writer task per connection,
bridges stream-table appends into the event loop, and drives the Redis hot cache.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import os
import re
import ssl as ssl_mod
import struct
import uuid
import weakref
from dataclasses import dataclass, field
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from pyplatform.clock import Clock
from pyplatform.config import mask_value
from pyplatform.signals.auth import AuthError, TokenVerifier
from pyplatform.signals.fanout import Fanout, Subscriber, SubscribeError
from pyplatform.signals.protocol import Close, CloseCode, SendControl, Session, SessionConfig, Subscribe, Unsubscribe
from pyplatform.signals.redis_cache import RedisHotCache
from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, SUBPROTOCOLS, JsonCodec, MsgpackZstdCodec

__all__ = ["ServiceConfig", "SignalService"]

log = logging.getLogger(__name__)

# websockets logs every request line and header at DEBUG: the bearer token and a token in
# the URL would land in the logs. Its records go through this logger and this filter.
_BEARER = re.compile(r"(?i)(authorization:\s*)(\S+\s+)?\S+")


class _RedactingFilter(logging.Filter):
    """Masks ``Authorization`` header values and secret query parameters in websockets' log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is left to the handler
            return True
        clean = mask_value(_BEARER.sub(lambda m: f"{m[1]}{m[2] or ''}***", text))
        if clean != text:
            record.msg, record.args = clean, ()
        return True


ws_log = logging.getLogger("pyplatform.signals.ws")
ws_log.addFilter(_RedactingFilter())


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
        Per-connection queue bound in frames; a client this far behind is dropped (1013).
    queue_bytes : int
        Per-connection queue bound in bytes (default 8 MiB); past it the client is dropped
        (1013). A replay is paced to keep its client's queue under a quarter of this.
    compress_min_bytes : int
        msgpack frames at least this long are zstd-compressed.
    check_interval_s : float
        How often token expiry and revocation are re-checked on open connections.
    coalesce_bytes : int
        When a client has a backlog, queued messages up to this size share one WebSocket
        message (0 disables).
    replay_chunk_rows : int
        A replay is read, encoded and queued this many rows at a time (a few ms of work),
        yielding to the event loop between slices and waiting for the client to drain.
    max_conns_per_subject, max_conns_per_ip : int
        Open connections one token subject / one remote address may hold; more get HTTP 429.
    redis_snapshot_timeout_s : float
        How long a snapshot waits for Redis before serving from memory alone.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    ping_interval_s: float | None = 30.0
    ping_timeout_s: float | None = 30.0
    max_message_bytes: int = 64 * 1024
    queue_frames: int = 1_000
    queue_bytes: int = 8 * 1024 * 1024
    compress_min_bytes: int = 4096
    max_rows_per_frame: int = 2_000
    write_limit: int = 256 * 1024
    check_interval_s: float = 1.0
    close_timeout_s: float = 2.0
    coalesce_bytes: int = 256 * 1024
    replay_chunk_rows: int = 4_000
    max_conns_per_subject: int = 64
    max_conns_per_ip: int = 256
    redis_snapshot_timeout_s: float = 0.25
    session: SessionConfig = field(default_factory=SessionConfig)


# WebSocket frame headers of unmasked, unfragmented server frames with a payload under 126
# bytes (most live frames are a few hundred bytes: those take the 4-byte form below)
_HEAD = {True: [bytes((0x81, n)) for n in range(126)], False: [bytes((0x82, n)) for n in range(126)]}


def _frame_header(text: bool, n: int) -> bytes:
    """RFC 6455 header of a final, unmasked text/binary frame of ``n`` payload bytes."""
    if n < 126:
        return _HEAD[text][n]
    first = 0x81 if text else 0x82
    return struct.pack("!BBH", first, 126, n) if n < 65536 else struct.pack("!BBQ", first, 127, n)


def _direct_writer(ws: ServerConnection, text: bool) -> Any:
    """Write a frame now if the connection is idle and not congested (as ``websockets.broadcast`` does).

    Saves the writer task a wake-up per frame in the common case; when the socket buffer
    is above its high-water mark (``paused``) frames go through the queue and the writer,
    which waits for the drain, so backpressure and slow-consumer detection still apply.

    The frame goes to the transport as header + payload in one ``write``: a server frame is
    unmasked and, without extensions (``compression=None``), has nothing else to it, so this
    is byte for byte what ``protocol.send_binary`` + ``send_data`` write, without building a
    ``Frame`` object, a ``BytesIO`` and a list of pending writes per subscriber per batch
    (the fan-out's cost was mostly this per-client Python, see docs/benchmarks/signals.md).
    The protocol's own pending writes must be empty, or order would break: then the
    ordinary path is taken.
    """
    protocol = ws.protocol
    transport = ws.transport
    heads = _HEAD[text]
    open_state = State.OPEN
    # websockets internals (used by its own broadcast()); if a release renames them, or an
    # extension would transform frames, every frame takes the queued, ordinary path instead
    raw = not protocol.extensions and isinstance(getattr(protocol, "writes", None), list) \
        and hasattr(ws, "send_in_progress") and hasattr(ws, "paused")
    if not raw:
        return lambda frame: False

    def direct(frame: bytes) -> bool:
        if protocol.state is not open_state or ws.send_in_progress is not None or ws.paused or protocol.writes:
            return False
        n = len(frame)
        try:
            transport.write((heads[n] if n < 126 else _frame_header(text, n)) + frame)
        except Exception:  # the connection is going away; its reader will clean up
            return False
        return True

    return direct


class _Conn:
    __slots__ = ("ws", "sub", "session", "wake", "cid", "_closing", "writer", "drained", "ip", "on_closing")

    def __init__(self, ws: ServerConnection, sub: Subscriber, session: Session, wake: asyncio.Event, cid: str,
                 ip: str = "", on_closing: Any = None) -> None:
        self.ws, self.sub, self.session, self.wake, self.cid, self._closing = ws, sub, session, wake, cid, False
        self.writer: asyncio.Task | None = None
        self.drained = asyncio.Event()  # set by the writer when the queue falls under the replay low-water mark
        self.ip = ip
        self.on_closing = on_closing  # called once, when the connection stops counting (limits, /health)

    @property
    def closing(self) -> bool:
        return self._closing

    @closing.setter
    def closing(self, value: bool) -> None:
        if value and not self._closing and self.on_closing is not None:
            self.on_closing(self)
        self._closing = self._closing or value


def _peer_ip(conn: ServerConnection) -> str:
    try:
        addr = conn.remote_address
        return str(addr[0]) if addr else ""
    except Exception:  # noqa: BLE001 - a transport already gone has no address
        return ""


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
        Time for token expiry and rate limits (required: a service under test runs on a
        simulated clock; only the builders at the edge choose ``LiveClock``).
    redis_url : str, optional
        Enables the hot cache and the shared subscription registry.
    redis_password : str, optional
        Redis ``AUTH`` password when the URL has none (``service.redis_password``).
    ssl : ssl.SSLContext, optional
        Serve ``wss://``.
    audit : AuditSink, optional
        Receives ``login.refused`` (every refused upgrade: reason, peer address, subject when
        the token was readable) and ``entitlement.refused`` (topics/symbols a subscriber asked
        for and may not see); written off the event loop (``docs/audit.md``).
    """

    #: The fan-out class the service builds (a subclass may deliver another way, e.g. a
    #: benchmark's baseline).
    fanout_class: type[Fanout] = Fanout

    def __init__(self, tables: Mapping[str, Any], verifier: TokenVerifier, config: ServiceConfig | None = None, *,
                 clock: Clock, redis_url: str | None = None, ssl: ssl_mod.SSLContext | None = None,
                 instance: str | None = None, audit: Any = None,
                 redis_password: str | None = None) -> None:
        self.config = config or ServiceConfig()
        self.audit = audit
        self.verifier = verifier
        self.clock = clock
        self.ssl = ssl
        self.instance = instance or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        codecs = {JSON_SUBPROTOCOL: JsonCodec(), MSGPACK_SUBPROTOCOL: MsgpackZstdCodec(self.config.compress_min_bytes)}
        self.fanout = self.fanout_class(tables, codecs, max_rows_per_frame=self.config.max_rows_per_frame)
        self._pending_ips: weakref.WeakKeyDictionary[ServerConnection, str] = weakref.WeakKeyDictionary()
        self.redis: RedisHotCache | None = None
        if redis_url:
            revs = verifier.revocations
            self.redis = RedisHotCache(redis_url, self.instance, full_state=self._full_state,
                                       revocations=None if revs is None else revs.entries, password=redis_password)
            self.fanout.row_hooks.append(self.redis.on_rows)
        self._conns: dict[str, _Conn] = {}
        self._live_subjects: collections.Counter[str] = collections.Counter()  # open, not closing
        self._live_ips: collections.Counter[str] = collections.Counter()
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
            close_timeout=self.config.close_timeout_s, logger=ws_log,
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

    def health(self, detail: bool = True) -> dict[str, Any]:
        """``{"status": "ok" | "degraded", ...}``; degraded while Redis is configured but unreachable.

        ``connections`` counts open connections that are not being closed (a dropped slow
        consumer leaves the count at once). ``detail=False`` is what unauthenticated
        ``GET /health`` shows: no instance (host name, PID), cursors or Redis error text.
        """
        redis_status = "disabled" if self.redis is None else self.redis.status
        status = "degraded" if redis_status == "degraded" else "ok"
        out = {"status": status, "redis": redis_status,
               "connections": sum(1 for c in self._conns.values() if not c.closing),
               "subscribers": self.fanout.subscriber_count(), "dropped_slow": self.dropped_slow}
        if detail:
            out.update({"redis_error": None if self.redis is None else self.redis.last_error,
                        "cursors": dict(self.fanout.cursor), "instance": self.instance})
        return out

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
        """Answer ``/health`` or refuse/accept the upgrade; every refusal is a 4xx with a reason, never a 500."""
        try:
            return self._authenticate_checked(conn, request)
        except Exception:  # noqa: BLE001 - a hostile request must get a refusal, not a traceback and a 500
            log.exception("handshake refused after an unexpected error")
            return self._refuse(conn, HTTPStatus.BAD_REQUEST, "malformed request", _peer_ip(conn))

    def _bearer(self, request: Any) -> tuple[str | None, str]:
        """The bearer token of a request, or ``(None, why not)``."""
        values = request.headers.get_all("Authorization")
        if len(values) > 1:
            return None, "more than one Authorization header"
        scheme, _, token = (values[0] if values else "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "missing 'Authorization: Bearer <token>' header"
        return token.strip(), ""

    def _authenticate_checked(self, conn: ServerConnection, request: Any) -> Any:
        path = request.path.split("?", 1)[0]
        if path == "/health":
            token, _ = self._bearer(request)
            detail = False
            if token is not None:  # the details (instance, cursors) only for a valid token
                try:
                    self.verifier.verify(token, self.clock.now_ns())
                    detail = True
                except AuthError:
                    pass
            h = self.health(detail=detail)
            return conn.respond(HTTPStatus.OK if h["status"] == "ok" else HTTPStatus.SERVICE_UNAVAILABLE, json.dumps(h) + "\n")
        ip = _peer_ip(conn)
        if "token=" in request.path or "access_token=" in request.path:
            return self._refuse(conn, HTTPStatus.BAD_REQUEST, "tokens in the URL are refused (they end up in logs); "
                                "send 'Authorization: Bearer <token>'", ip)
        token, why = self._bearer(request)
        if token is None:
            status = HTTPStatus.BAD_REQUEST if why.startswith("more") else HTTPStatus.UNAUTHORIZED
            return self._refuse(conn, status, why, ip)
        try:
            claims = self.verifier.verify(token, self.clock.now_ns())
        except AuthError as exc:
            return self._refuse(conn, HTTPStatus.UNAUTHORIZED, str(exc), ip)
        # open connections are counted as they open and close (O(1) here: a loop over every
        # connection per handshake made a reconnect storm quadratic); handshakes in flight are few
        by_subject = self._live_subjects[claims.subject] + \
            sum(1 for c in list(self._claims.values()) if c.subject == claims.subject)
        if by_subject >= self.config.max_conns_per_subject:
            return self._refuse(conn, HTTPStatus.TOO_MANY_REQUESTS, f"subject {claims.subject[:64]!r} already holds "
                                f"{self.config.max_conns_per_subject} connections (the limit)", ip, claims.subject)
        by_ip = self._live_ips[ip] + sum(1 for v in list(self._pending_ips.values()) if v == ip)
        if ip and by_ip >= self.config.max_conns_per_ip:
            return self._refuse(conn, HTTPStatus.TOO_MANY_REQUESTS, f"address already holds "
                                f"{self.config.max_conns_per_ip} connections (the limit)", ip, claims.subject)
        self._claims[conn] = claims
        self._pending_ips[conn] = ip
        return None

    def _uncount(self, conn: _Conn) -> None:
        for counts, key in ((self._live_subjects, conn.session.claims.subject), (self._live_ips, conn.ip)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]

    def _refuse(self, conn: ServerConnection, status: HTTPStatus, why: str, ip: str, subject: str | None = None) -> Any:
        """An HTTP refusal of the upgrade, recorded as ``login.refused`` (never with the token)."""
        if self.audit is not None:
            self.audit.submit("login.refused", None if subject is None else subject[:200], "refused",
                              {"reason": why[:300], "status": int(status), "peer": ip})
        return conn.respond(status, why + "\n")

    # ------------------------------------------------------------------ connections
    async def _handle(self, ws: ServerConnection) -> None:
        claims = self._claims.pop(ws)
        ip = self._pending_ips.pop(ws, "")
        cid = f"c{next(self._ids)}"
        wake = asyncio.Event()
        codec = self.fanout.codecs[ws.subprotocol or JSON_SUBPROTOCOL]
        sub = Subscriber(cid, codec, self.config.queue_frames, wake.set, on_lag=lambda: self._on_lag(cid),
                         direct=_direct_writer(ws, codec.text), max_bytes=self.config.queue_bytes)
        conn = _Conn(ws, sub, Session(claims, self.clock.now_ns(), self.config.session), wake, cid, ip,
                     on_closing=self._uncount)
        self._conns[cid] = conn
        self._live_subjects[claims.subject] += 1
        self._live_ips[ip] += 1
        writer = conn.writer = asyncio.create_task(self._writer(conn), name=f"writer-{cid}")
        try:
            async for msg in ws:
                if conn.closing:
                    continue  # drain what the peer still sends until the close completes
                now = self.clock.now_ns()
                actions = conn.session.receive_text(msg, now) if isinstance(msg, str) else conn.session.receive_bytes(msg, now)
                for action in actions:
                    await self._apply(conn, action)
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - a bug must still end in a close with a reason, and be logged
            ref = uuid.uuid4().hex[:8]
            log.exception("connection %s failed (ref %s)", cid, ref)
            await self._close(conn, CloseCode.INTERNAL_ERROR, f"internal error (ref {ref})")
        finally:
            conn.closing = True  # uncounted once, whichever way it ended
            self._conns.pop(cid, None)
            self.fanout.detach(sub)
            if self.redis is not None:
                self.redis.unregister(cid)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _apply(self, conn: _Conn, action: Any) -> None:
        sub = conn.sub
        if isinstance(action, SendControl):
            msg = action.message
            if self.audit is not None and msg.get("code") == "forbidden":
                self.audit.submit("entitlement.refused", conn.session.claims.subject[:200], "refused",
                                  {"topics": msg.get("topics"), "symbols": msg.get("symbols"), "id": msg.get("id"),
                                   "connection": conn.cid, "peer": conn.ip, "jti": conn.session.claims.token_id})
            sub.push(sub.codec.control(msg))
        elif isinstance(action, Subscribe):
            extra = None
            if action.from_seq is None and self.redis is not None and action.topic.table in self.fanout.tables:
                # awaited BEFORE the synchronous subscribe so nothing interleaves between the
                # snapshot's cursor and the live stream
                extra = await self._redis_snapshot(action)
            if conn.closing:
                return
            try:
                pos, ack = action.from_seq, True
                table = action.topic.table
                chunk = self.config.replay_chunk_rows
                low_water = self.config.queue_bytes // 4
                # a long replay goes slice by slice (a few ms each), yielding in between and waiting
                # while the client has not drained the previous slices: it cannot stall other
                # clients, and a client that does not read pins at most queue_bytes
                while pos is not None and table in self.fanout.cursor and self.fanout.cursor[table] - pos > chunk:
                    pos = self.fanout.replay_chunk(sub, action.topic, action.symbols, pos, chunk,
                                                   request_id=action.request_id, ack=ack)
                    ack = False
                    await asyncio.sleep(0)
                    while sub.queued_bytes > low_water and not (conn.closing or sub.lagged):
                        conn.drained.clear()
                        await conn.drained.wait()
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

    async def _redis_snapshot(self, action: Subscribe) -> Any:
        """Latest rows from Redis, or ``None`` (degraded, slow or bad): memory alone serves then."""
        assert self.redis is not None
        if self.redis.status == "degraded":
            return None  # do not make every subscriber wait on a Redis known to be down
        table = self.fanout.tables[action.topic.table]
        try:
            rows = await asyncio.wait_for(
                self.redis.snapshot(action.topic.table, table.schema, action.symbols,
                                    action.topic.arg if action.topic.kind == "signals" else None),
                self.config.redis_snapshot_timeout_s)
        except asyncio.TimeoutError:
            log.warning("redis snapshot of %s took more than %.2fs; serving from memory",
                        action.topic.table, self.config.redis_snapshot_timeout_s)
            return None
        if rows is None:
            return None
        return self.redis.validate_rows(rows, self.fanout.cursor[action.topic.table], int(table.oldest_offset))

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
            # out of /health and the connection limits now, not when the close completes
            conn.closing = True
            asyncio.get_running_loop().create_task(self._drop_slow(conn))

    async def _drop_slow(self, conn: _Conn) -> None:
        """Tell a slow consumer the last sequence it was sent and drop it; nobody waits for it."""
        sub, ws = conn.sub, conn.ws
        self.fanout.detach(sub)
        if conn.writer is not None:  # it may be blocked on the full socket: stop it between frames
            conn.writer.cancel()
            await asyncio.gather(conn.writer, return_exceptions=True)
        notice = sub.lag_notice()
        seqs = ",".join(f"{k}={v}" for k, v in notice["delivered"].items())
        reason = f"slow consumer; delivered {seqs}".encode()[:120].decode(errors="ignore")
        conn.closing = True
        log.info("dropping slow consumer %s (%s): %s", conn.cid, conn.session.claims.subject, reason)
        # The notice and the close frame go into the transport's buffer now, without waiting
        # for the full socket to drain (that wait is what lost the notice): whatever the peer
        # reads next is the rest of its data, then the notice, then the close.
        protocol = ws.protocol
        try:
            if protocol.state is State.OPEN and getattr(ws, "send_in_progress", None) is None:
                frame = sub.codec.control(notice)
                if sub.codec.text:
                    protocol.send_text(frame if isinstance(frame, bytes) else frame.encode())
                else:
                    protocol.send_binary(frame)
                protocol.send_close(CloseCode.TRY_AGAIN_LATER, reason)
                ws.send_data()
        except Exception:  # noqa: BLE001 - the connection is already going away
            log.debug("could not queue the lagged notice for %s", conn.cid, exc_info=True)
        # a peer that never reads again is cut after close_timeout: nothing waits on it
        try:
            await asyncio.wait_for(asyncio.shield(ws.wait_closed()), self.config.close_timeout_s)
        except asyncio.TimeoutError:
            ws.transport.abort()

    async def _writer(self, conn: _Conn) -> None:
        sub, ws, codec = conn.sub, conn.ws, conn.sub.codec
        text, coalesce = codec.text, self.config.coalesce_bytes
        try:
            while True:
                if not sub.queue:
                    conn.drained.set()
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                frame, topic, seq = sub.pop()
                sent = [(topic, seq)]
                if sub.queue and coalesce and codec.mergeable(frame):
                    # a backlog: let several messages share one WebSocket message
                    parts, size = [frame], len(frame)
                    while sub.queue and size < coalesce and codec.mergeable(sub.queue[0][0]):
                        f, t, q = sub.pop()
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
                if sub.queued_bytes <= self.config.queue_bytes // 4:
                    conn.drained.set()  # a paced replay may queue its next slice
        except ConnectionClosed:
            conn.drained.set()
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
            self.verifier.secrets.refresh(now)  # a replaced secret file is noticed within a tick
            for conn in list(self._conns.values()):
                if conn.closing:
                    continue
                actions = conn.session.tick(now)
                if not actions and conn.session.claims.token_id in revoked:
                    actions = conn.session.revoke()
                if not actions:
                    why = self.verifier.retired(conn.session.claims, now)
                    if why is not None:  # its key was retired (rotation past grace, or a new secret)
                        actions = conn.session.close_retired(why)
                for a in actions:
                    await self._apply(conn, a)
