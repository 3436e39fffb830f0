"""The exchange simulator: iTick's WebSocket protocol and REST K-lines on one local port.

One publishing task advances the market every ``period_s`` and hands each subscribed
connection its share of the cycle's messages; a per-connection sender task writes a whole
cycle in one go (many frames, one drain), applies the fault plan, and records what it sent.
Plain HTTP requests to ``/{stock|forex|indices|crypto}/kline`` are answered from the tape
through the WebSocket server's ``process_request`` hook, so one port serves both.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs

import numpy as np
import pyarrow as pa
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pyplatform.clock import Clock, LiveClock
from pyplatform.feeds.logsafe import RedactingLogger
from pyplatform.feeds.messages import (DATA_TYPES, SUBSCRIPTION_LIMIT_MSG, auth_message, connected_message,
                                       pong_message, subscribe_result_message)
from pyplatform.feeds.simulator.config import SimulatorConfig
from pyplatform.feeds.simulator.faults import mangle
from pyplatform.feeds.simulator.kline import kline_bars
from pyplatform.feeds.simulator.tape import MarketTape, TapeBatch
from pyplatform.feeds.simulator.render import render_depth, render_quotes, render_ticks
from pyplatform.feeds.symbols import from_itick

__all__ = ["ExchangeSimulator", "ConnectionRecord", "start_simulator"]

log = logging.getLogger(__name__)
_REST_KINDS = ("stock", "forex", "indices", "crypto")


@dataclass
class ConnectionRecord:
    """What happened on one client connection (for tests and the CLI's summary)."""

    id: int
    authenticated: bool = False
    subscriptions: list[list[str]] = field(default_factory=list)
    pings: list[str] = field(default_factory=list)
    data_sent: int = 0
    sent: list[pa.Table] = field(default_factory=list)
    fault: str | None = None


class _Conn:
    def __init__(self, ws: ServerConnection, record: ConnectionRecord, n_symbols: int) -> None:
        self.ws = ws
        self.record = record
        self.mask = np.zeros(n_symbols, bool)
        self.types: set[str] = set()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stalled = False


class ExchangeSimulator:
    """A local exchange speaking iTick's protocol.

    Parameters
    ----------
    config : SimulatorConfig
    clock : Clock
        Source of exchange timestamps (keyword, required; :func:`start_simulator`, the
        builder, picks the live clock when given none).

    Examples
    --------
    >>> async def main():
    ...     async with ExchangeSimulator(SimulatorConfig(sessions=False), clock=LiveClock()) as sim:
    ...         print(sim.ws_url, sim.rest_url)
    """

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Clock) -> None:
        self.config = config or SimulatorConfig()
        self.clock = clock
        self.tape = MarketTape(list(self.config.symbols), seed=self.config.seed, sessions=self.config.sessions,
                               start_prices=dict(self.config.start_prices))
        self._sym_index = {s.upper(): i for i, s in enumerate(self.tape.symbols)}
        self._sym_arrow = pa.array(self.tape.symbols, pa.string())
        n = len(self.tape.symbols)
        self._day = {k: np.full(n, np.nan) for k in ("open", "high", "low")}
        self._day_volume = np.zeros(n)
        self._day_turnover = np.zeros(n)
        self._history: list[pa.Table] = []
        self._live: set[_Conn] = set()
        self.connections: list[ConnectionRecord] = []
        self.refused_handshakes = 0  #: WebSocket upgrades refused by ``FaultPlan.handshake_status``
        self.published = 0
        self._drops = 0
        self._stalls = 0
        self._server = None
        self._publisher: asyncio.Task | None = None
        self.port = self.config.port
        self._paused = False

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> ExchangeSimulator:
        """Listen and start publishing; returns ``self`` (``port`` is now bound)."""
        self._server = await serve(self._handle, self.config.host, self.config.port,
                                   process_request=self._process_request, max_size=1 << 20,
                                   compression=None, logger=RedactingLogger(
                                       logging.getLogger("websockets.server"), self.config.token or ""))
        self.port = self._server.sockets[0].getsockname()[1]
        self._publisher = asyncio.create_task(self._publish(), name="simulator-publisher")
        log.info("simulator listening on %s (REST %s)", self.ws_url, self.rest_url)
        return self

    async def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def pause(self) -> None:
        """Stop the market (no new ticks) while connections stay open; ``resume()`` restarts it."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    async def drained(self, timeout_s: float = 5.0) -> None:
        """Wait until every connection's queue of cycles is empty (everything written)."""
        async with asyncio.timeout(timeout_s):
            while any(c.queue.qsize() for c in self._live):
                await asyncio.sleep(0.01)

    async def __aenter__(self) -> ExchangeSimulator:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/stock"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    # -- oracles ----------------------------------------------------------------------
    def sent_ticks(self) -> pa.Table:
        """Every tick sent on any connection (``record=True``): ts, symbol, price, volume, seq."""
        tables = [t for c in self.connections for t in c.sent]
        if not tables:
            return pa.table({"ts": pa.array([], pa.int64()), "symbol": pa.array([], pa.string()),
                             "price": pa.array([], pa.float64()), "volume": pa.array([], pa.float64()),
                             "seq": pa.array([], pa.int64())})
        return pa.concat_tables(tables)

    def tape_history(self) -> pa.Table:
        """Every tick published in the last ``history_s`` seconds (connected or not)."""
        return pa.concat_tables(self._history) if self._history else self.sent_ticks()

    # -- publishing -------------------------------------------------------------------
    async def _publish(self) -> None:
        cfg = self.config
        last = self.clock.now_ns()
        carry = 0.0
        while True:
            await asyncio.sleep(cfg.period_s)
            now = self.clock.now_ns()
            if self._paused:
                last = now
                continue
            dt = min(now - last, int(cfg.max_burst_s * 1e9))
            x = cfg.rate * dt / 1e9 + carry
            n = int(x)
            carry = x - n
            batch = self.tape.generate(n, now - dt, now)
            last = now
            if len(batch):
                try:
                    self._cycle(batch, now)
                except Exception:  # a publishing bug must be loud but not kill the exchange
                    log.exception("simulator: publishing cycle failed")

    def _cycle(self, batch: TapeBatch, now: int) -> None:
        cfg = self.config
        table = batch.to_arrow(self.tape.symbols).select(["ts", "symbol", "price", "volume", "seq"])
        table = table.set_column(0, "ts", pa.array((batch.ts // 1_000_000) * 1_000_000))  # wire is ms
        self.published += len(batch)
        self._history.append(table)
        cutoff = now - int(cfg.history_s * 1e9)
        while self._history and self._history[0].num_rows and self._history[0].column("ts")[-1].as_py() < cutoff:
            self._history.pop(0)
        # day statistics for quotes, vectorised over the cycle's ticks
        sym, price = batch.sym, batch.price
        first = np.isnan(self._day["open"])
        uniq, first_idx = np.unique(sym, return_index=True)
        newly = uniq[first[uniq]]
        self._day["open"][newly] = price[first_idx[first[uniq]]]
        hi = np.full(len(self._day_volume), -np.inf)
        lo = np.full(len(self._day_volume), np.inf)
        np.maximum.at(hi, sym, price)
        np.minimum.at(lo, sym, price)
        self._day["high"] = np.fmax(self._day["high"], np.where(np.isinf(hi), np.nan, hi))
        self._day["low"] = np.fmin(self._day["low"], np.where(np.isinf(lo), np.nan, lo))
        np.add.at(self._day_volume, sym, batch.volume)
        np.add.at(self._day_turnover, sym, batch.volume * price)
        t_ms = now // 1_000_000
        ticks = pa.array(render_ticks(batch, self._sym_arrow, cfg.send_seq), pa.binary())
        quotes = render_quotes(uniq, self._sym_arrow, self.tape.price, self._day["open"], self._day["high"],
                               self._day["low"], self._day_volume, self._day_turnover, t_ms) if cfg.quotes else []
        depth = render_depth(uniq, self.tape.symbols, self.tape.price, self.tape.decimals, self.tape.lot,
                             cfg.depth_levels, self.tape.rng, t_ms) if cfg.depth else []
        for conn in list(self._live):
            if conn.stalled or not conn.mask.any():
                continue
            msgs: list[bytes] = []
            rows: list[np.ndarray] = []
            if "tick" in conn.types:
                keep = conn.mask[sym]
                msgs += ticks.filter(pa.array(keep)).to_pylist()
                rows.append(np.flatnonzero(keep))
            for kind, lines in (("quote", quotes), ("depth", depth)):
                if kind in conn.types and lines:
                    sel = np.flatnonzero(conn.mask[uniq])
                    msgs += [lines[i] for i in sel]
                    rows.append(np.full(len(sel), -1))
            if not msgs:
                continue
            if conn.queue.qsize() >= cfg.max_pending:
                log.warning("simulator: connection %d is too slow (%d cycles queued); dropping it",
                            conn.record.id, conn.queue.qsize())
                conn.record.fault = "slow consumer"
                self._live.discard(conn)
                conn.ws.transport.close()
                continue
            conn.queue.put_nowait(("data", msgs, np.concatenate(rows) if rows else np.empty(0, int),
                                   table if cfg.record else None))

    # -- connections ------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        cfg = self.config
        record = ConnectionRecord(id=len(self.connections) + 1)
        self.connections.append(record)
        token = ws.request.headers.get("token") if ws.request is not None else None
        await ws.send(connected_message())
        ok = bool(token) and not cfg.faults.reject_auth and (
            cfg.token is None or hmac.compare_digest(token.encode(), cfg.token.encode()))
        if not ok:
            await ws.send(auth_message(False))
            await ws.close(1008, "auth failed")
            return
        record.authenticated = True
        await ws.send(auth_message(True, token_echo=(token[:4] if len(token) >= 12 else "") + "***"))
        conn = _Conn(ws, record, len(self.tape.symbols))
        self._live.add(conn)
        sender = asyncio.create_task(self._send_loop(conn))
        try:
            async for raw in ws:
                reply = self._on_request(conn, raw)
                if reply is not None:
                    conn.queue.put_nowait(("ctrl", [reply.encode()], None, None))
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(conn)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _on_request(self, conn: _Conn, raw: str | bytes) -> str | None:
        try:
            obj = json.loads(raw)
            ac = obj.get("ac") if isinstance(obj, dict) else None
        except ValueError:
            ac = None
        if ac == "ping":
            conn.record.pings.append(str(obj.get("params", "")))
            return pong_message(str(obj.get("params", "")))
        if ac == "subscribe":
            return self._subscribe(conn, obj)
        return json.dumps({"code": 0, "resAc": str(ac) if ac else "error", "msg": "cannot be resolved action"})

    def _subscribe(self, conn: _Conn, obj: dict) -> str:
        params = str(obj.get("params", ""))
        types = {t.strip() for t in str(obj.get("types", "")).split(",") if t.strip()}
        try:
            wanted = [from_itick(p.strip()) for p in params.split(",") if p.strip()]
            idx = [self._sym_index[s.upper()] for s in wanted]
        except (ValueError, KeyError):
            return subscribe_result_message(False)
        if not wanted or not types or not types <= set(DATA_TYPES):
            return subscribe_result_message(False)
        mask = conn.mask.copy()
        mask[idx] = True
        path = conn.ws.request.path.partition("?")[0] if conn.ws.request is not None else ""
        if mask.sum() > self.config.max_subscriptions or path in self.config.faults.limit_paths:
            return subscribe_result_message(False, SUBSCRIPTION_LIMIT_MSG)
        conn.mask = mask
        conn.types |= types
        conn.record.subscriptions.append(wanted)
        return subscribe_result_message(True)

    async def _send_loop(self, conn: _Conn) -> None:
        cfg, plan, ws, rec = self.config, self.config.faults, conn.ws, conn.record
        try:
            while True:
                kind, msgs, rows, table = await conn.queue.get()
                action = None
                if kind == "data":
                    msgs, rows = mangle(msgs, rows, plan, rec.data_sent)
                    limit = len(msgs)
                    if plan.drop_after is not None and self._drops < plan.max_drops \
                            and rec.data_sent + limit >= plan.drop_after:
                        limit, action = max(plan.drop_after - rec.data_sent, 0), "drop"
                    elif plan.stall_after is not None and self._stalls < plan.max_stalls \
                            and rec.data_sent + limit >= plan.stall_after:
                        limit, action = max(plan.stall_after - rec.data_sent, 0), "stall"
                    msgs, rows = msgs[:limit], rows[:limit]
                    if cfg.frame_batch > 1:
                        msgs = [b"\n".join(msgs[i:i + cfg.frame_batch]) for i in range(0, len(msgs), cfg.frame_batch)]
                async with ws.send_context():  # many frames, one write + drain
                    for m in msgs:
                        ws.protocol.send_text(m)
                if kind == "data":
                    rec.data_sent += len(rows)
                    if table is not None and len(rows):
                        tick_rows = rows[rows >= 0]
                        if len(tick_rows):
                            rec.sent.append(table.take(pa.array(tick_rows)))
                if action == "drop":
                    self._drops += 1
                    rec.fault = "dropped"
                    self._live.discard(conn)
                    ws.transport.close()  # flush what was sent, then FIN: no close frame (1006)
                    return
                if action == "stall":
                    # A half-dead connection: silent, not even reading (so no WebSocket pongs)
                    # for stall_s, then reading again only so the client's close can land.
                    # It never sends again: nothing is recorded as sent that could be lost.
                    self._stalls += 1
                    rec.fault = "stalled"
                    conn.stalled = True
                    ws.transport.pause_reading()
                    await asyncio.sleep(plan.stall_s)
                    if not ws.transport.is_closing():
                        ws.transport.resume_reading()
                    return
        except ConnectionClosed:
            pass

    # -- REST -------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request):
        path, _, query = request.path.partition("?")
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "kline" and parts[0] in _REST_KINDS:
            return self._kline(connection, request, parse_qs(query))
        refused = self.config.faults.refuses_handshake(path)
        if refused is not None:
            self.refused_handshakes += 1
            return _json_response(connection, HTTPStatus(refused), {"code": refused, "msg": "unauthorized", "data": None})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _json_response(connection, HTTPStatus.NOT_FOUND, {"code": 404, "msg": f"no route {path}", "data": None})
        return None

    def _kline(self, connection, request, q: dict[str, list[str]]):
        token = request.headers.get("token")
        if not token or (self.config.token is not None and not hmac.compare_digest(token.encode(), self.config.token.encode())):
            return _json_response(connection, HTTPStatus.UNAUTHORIZED, {"code": 401, "msg": "invalid token", "data": None})
        try:
            region, code = q["region"][0], q["code"][0]
            ktype = int(q["kType"][0])
            limit = int(q.get("limit", ["100"])[0])
            end_ms = int(q["et"][0]) if "et" in q else None
            data = kline_bars(self.tape_history(), f"{code}.{region.upper()}", ktype, limit, end_ms)
        except (KeyError, ValueError) as exc:
            return _json_response(connection, HTTPStatus.BAD_REQUEST, {"code": 400, "msg": f"bad request: {exc}", "data": None})
        return _json_response(connection, HTTPStatus.OK, {"code": 0, "msg": None, "data": data})


def _json_response(connection, status: HTTPStatus, body: dict):
    response = connection.respond(status, json.dumps(body, separators=(",", ":")))
    response.headers["Content-Type"] = "application/json"
    return response


async def start_simulator(config: SimulatorConfig | None = None, clock: Clock | None = None,
                          **overrides) -> ExchangeSimulator:
    """Start a simulator (``SimulatorConfig`` fields may be passed as keywords); call ``stop()``.

    The builder: without a ``clock`` the exchange stamps ticks with wall time (``LiveClock``).
    """
    if overrides:
        from dataclasses import replace
        config = replace(config or SimulatorConfig(), **overrides)
    return await ExchangeSimulator(config, clock=clock or LiveClock()).start()
