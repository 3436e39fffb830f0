"""Async client of the signal service: reconnects, refreshes tokens, resumes by sequence.

The client remembers, per topic, the next sequence it needs. After any disconnect (network,
server restart, token expiry, being dropped as a slow consumer) it reconnects with
exponential backoff and jitter, fetches a fresh token from ``token`` when that is a
callable, and resubscribes from that sequence, so the rows it yields have no gaps and no
duplicates. Within a frame rows are yielded in sequence order.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pyplatform.signals.wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, decode_messages

__all__ = ["Message", "SignalClient", "ClientAuthError", "GapError", "SubscriptionError"]

log = logging.getLogger(__name__)
TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]


class ClientAuthError(Exception):
    """The service refused the token (and a refreshed one) at the handshake."""


class GapError(Exception):
    """Resuming is impossible without a gap: the needed sequence is past retention."""

    def __init__(self, topic: str, wanted: int, oldest: int) -> None:
        super().__init__(f"{topic}: sequence {wanted} is no longer retained (oldest {oldest})")
        self.topic, self.wanted, self.oldest = topic, wanted, oldest


class SubscriptionError(Exception):
    """A subscribe request was refused (not entitled, unknown topic, bad symbol)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One row delivered to the user.

    ``kind`` is ``"snapshot"`` (latest known row at subscribe time) or ``"data"``.
    """

    topic: str
    seq: int
    kind: str
    row: dict[str, Any]


class SignalClient:
    """Subscribe to topics and iterate rows: ``async for msg in SignalClient(...)``.

    Parameters
    ----------
    url : str
        ``ws://host:port`` or ``wss://...``.
    token : str or callable
        A token, or a (sync or async) function returning a fresh one on every connect.
    topics : list of str
        e.g. ``["factors:mom_20", "quotes"]``.
    symbols : list of str or "*"
    encoding : {"msgpack", "json"}
    from_seq : int or dict, optional
        Start by replaying from this sequence (per topic with a dict) instead of a snapshot.
    on_retention : {"raise", "oldest"}
        What to do when the resume point is past retention: raise :class:`GapError`, or
        continue from the oldest retained sequence (a gap the caller accepted).
    backoff_s, backoff_max_s, jitter : float
        Reconnect delay ``min(backoff_max_s, backoff_s * 2**attempt)``, reduced by up to
        ``jitter`` (a fraction) at random so clients do not reconnect in lockstep.
    max_attempts : int, optional
        Give up after this many consecutive failed connects (default: never).
    """

    def __init__(self, url: str, token: TokenSource, topics: list[str], symbols: list[str] | str = "*", *,
                 encoding: str = "msgpack", from_seq: int | dict[str, int] | None = None, on_retention: str = "raise",
                 backoff_s: float = 0.1, backoff_max_s: float = 10.0, jitter: float = 0.5,
                 max_attempts: int | None = None, ping_interval_s: float | None = 30.0,
                 ping_timeout_s: float | None = 30.0, ssl: Any = None, open_timeout_s: float = 10.0) -> None:
        if encoding not in ("msgpack", "json"):
            raise ValueError(f"encoding must be 'msgpack' or 'json', got {encoding!r}")
        if on_retention not in ("raise", "oldest"):
            raise ValueError(f"on_retention must be 'raise' or 'oldest', got {on_retention!r}")
        if not topics:
            raise ValueError("topics must not be empty")
        self.url = url
        self._token_source = token
        self.topics = list(topics)
        self.symbols = symbols
        self.subprotocol = MSGPACK_SUBPROTOCOL if encoding == "msgpack" else JSON_SUBPROTOCOL
        self._initial = from_seq
        self.on_retention = on_retention
        self.backoff_s, self.backoff_max_s, self.jitter = backoff_s, backoff_max_s, jitter
        self.max_attempts = max_attempts
        self.ping_interval_s, self.ping_timeout_s = ping_interval_s, ping_timeout_s
        self.ssl, self.open_timeout_s = ssl, open_timeout_s
        self.next_seq: dict[str, int] = {}
        self.connects = 0
        self.lag_notices = 0
        self.last_close: tuple[int | None, str | None] | None = None
        self._ws: ClientConnection | None = None
        self._closed = False

    async def _token(self) -> str:
        src = self._token_source
        if isinstance(src, str):
            return src
        value = src()
        if inspect.isawaitable(value):
            value = await value
        return str(value)

    def _requests(self) -> list[dict[str, Any]]:
        out = []
        for t in self.topics:
            if t in self.next_seq:
                seq: int | None = self.next_seq[t]
            elif isinstance(self._initial, dict):
                seq = self._initial.get(t)
            else:
                seq = self._initial
            req: dict[str, Any] = {"type": "subscribe", "topics": [t], "symbols": self.symbols}
            if seq is not None:
                req["from_seq"] = int(seq)
            out.append(req)
        return out

    async def close(self) -> None:
        """Stop iterating and close the connection."""
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    async def __aiter__(self) -> AsyncIterator[Message]:
        attempt = 0
        auth_failures = 0
        while not self._closed:
            try:
                token = await self._token()
                async with connect(self.url, additional_headers={"Authorization": f"Bearer {token}"},
                                   subprotocols=[self.subprotocol], compression=None, max_size=None,
                                   ping_interval=self.ping_interval_s, ping_timeout=self.ping_timeout_s,
                                   ssl=self.ssl, open_timeout=self.open_timeout_s, proxy=None) as ws:
                    self._ws = ws
                    self.connects += 1
                    auth_failures = 0
                    for req in self._requests():
                        await ws.send(json.dumps(req))
                    async for frame in ws:
                        for msg in decode_messages(frame):
                            kind = msg.get("type")
                            if kind == "data" or kind == "snapshot":
                                topic = msg["topic"]
                                rows = msg["rows"]
                                if len(rows) > 1:
                                    rows = sorted(rows, key=lambda r: r["seq"])
                                for row in rows:
                                    seq = row["seq"]
                                    if kind == "data":
                                        if seq < self.next_seq.get(topic, -1):
                                            continue  # already delivered before a reconnect
                                        self.next_seq[topic] = seq + 1
                                    yield Message(topic, seq, kind, row)
                            elif kind == "subscribed":
                                attempt = 0
                                if msg.get("mode") == "snapshot":
                                    # the snapshot stands for everything before live_seq
                                    self.next_seq[msg["topic"]] = max(self.next_seq.get(msg["topic"], 0), msg["live_seq"])
                            elif kind == "error":
                                await self._on_error(ws, msg)
                            elif kind == "lagged":
                                self.lag_notices += 1
                                log.warning("dropped as a slow consumer; will resume from %s", self.next_seq)
                    self.last_close = (ws.close_code, ws.close_reason)
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
                if status in (400, 401, 403):
                    auth_failures += 1
                    if isinstance(self._token_source, str) or auth_failures >= 2:
                        raise ClientAuthError(f"HTTP {status}: {body}") from None
                log.warning("handshake refused: HTTP %s %s", status, body)
            except (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError) as exc:
                log.info("connection lost (%s); reconnecting", exc)
                if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
                    self.last_close = (exc.rcvd.code, exc.rcvd.reason)
            finally:
                self._ws = None
            if self._closed:
                return
            attempt += 1
            if self.max_attempts is not None and attempt > self.max_attempts:
                raise ConnectionError(f"could not reach {self.url} after {self.max_attempts} attempts")
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (1.0 - self.jitter * random.random()))

    async def _on_error(self, ws: ClientConnection, msg: dict[str, Any]) -> None:
        code = msg.get("code")
        if code == "retention":
            topic, oldest = msg["topic"], int(msg["oldest_seq"])
            wanted = self.next_seq.get(topic, oldest)
            if self.on_retention == "raise":
                raise GapError(topic, wanted, oldest)
            log.warning("%s: resuming at the oldest retained sequence %d (wanted %d)", topic, oldest, wanted)
            self.next_seq[topic] = oldest
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic], "symbols": self.symbols, "from_seq": oldest}))
            return
        raise SubscriptionError(msg.get("message", str(msg)))
