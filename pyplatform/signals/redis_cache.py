"""Redis adapter: hot cache of the latest row per symbol and the shared subscription registry.

Keys (``prefix`` defaults to ``pp``):

- ``pp:latest:<table>``: hash, field = symbol (``<strategy>|<symbol>`` for signals),
  value = the row as JSON with its ``offset``. Written after the fan-out, coalesced:
  when Redis is slower than the stream only the newest row per symbol is written.
- ``pp:subs``: hash, field = ``<instance>/<connection>/<topic>``, value = JSON
  ``{instance, connection, subject, topic, symbols, since_ns}``: every service process
  behind a load balancer writes its own entries and reads everybody's.
- ``pp:instance:<instance>``: liveness key with a TTL; entries of an instance whose key
  expired are ignored (a crashed process does not leave ghosts).
- ``pp:revoked``: hash, field = token id, value = its expiry (seconds): revocations shared
  with processes on other hosts (``pyplatform tokens revoke`` writes it when Redis is up).

With Redis unreachable the service keeps streaming from memory, :attr:`status` turns
``"degraded"``, writes are retried with backoff, and after recovery the full latest
state and this instance's registry are rewritten (a restarted Redis may have lost them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pyplatform.signals.fanout import latest_per_key
from pyplatform.signals.rowcodec import encode_json_rows

__all__ = ["RedisHotCache"]

log = logging.getLogger(__name__)
_SEP = "|"


def _fields(rows: pa.Table) -> list[str]:
    key = rows.column("symbol")
    if "strategy" in rows.schema.names:
        key = pc.binary_join_element_wise(rows.column("strategy"), key, _SEP)
    return key.to_pylist()


class RedisHotCache:
    """Latest-row hashes and the subscription registry in Redis.

    Parameters
    ----------
    url : str
        Redis URL (``Settings.redis_url``).
    instance : str
        This service process's id in the registry.
    full_state : callable, optional
        ``() -> {table: latest rows}``; rewritten to Redis after an outage.
    min_flush_s : float
        Coalescing window between writes.
    password : str, optional
        Redis ``AUTH`` password when the URL carries none (read from a secret file).
    """

    def __init__(self, url: str, instance: str, *, prefix: str = "pp", full_state: Callable[[], dict[str, pa.Table | None]] | None = None,
                 min_flush_s: float = 0.05, timeout_s: float = 1.0, instance_ttl_s: int = 30,
                 revocations: Callable[[], dict[str, int]] | None = None, password: str | None = None) -> None:
        self.revocations = revocations  # rewritten to pp:revoked after an outage: a restart must not un-revoke
        self.url = url
        self.instance = instance
        self.prefix = prefix
        self.full_state = full_state
        self.min_flush_s = min_flush_s
        self.instance_ttl_s = instance_ttl_s
        # ``password`` (from a secret file, see service.redis_password) is used unless the URL has one
        self.redis = aioredis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                       **({"password": password} if password else {}))
        self.status = "starting"
        self.last_error: str | None = None
        self.writes = 0
        self._pending: dict[str, list[pa.Table]] = {}
        self._registry: dict[str, dict[str, Any]] = {}
        self._registry_dirty = True
        # the first write is a full one too: this host's revocations (and latest rows) reach a
        # Redis that was started, or emptied, while this process was not running
        self._need_full = True
        self._wake = asyncio.Event()
        self._wake.set()  # first loop turn: register this instance and learn whether Redis is up

    # ------------------------------------------------------------------ feeding (sync, from the fan-out)
    def on_rows(self, table: str, rows: pa.Table) -> None:
        """Fan-out hook: remember the batch for the next coalesced write."""
        self._pending.setdefault(table, []).append(rows)
        self._wake.set()

    def register(self, connection: str, subject: str, topic: str, symbols: frozenset[str] | None, since_ns: int) -> None:
        self._registry[f"{self.instance}/{connection}/{topic}"] = {
            "instance": self.instance, "connection": connection, "subject": subject, "topic": topic,
            "symbols": "*" if symbols is None else sorted(symbols), "since_ns": since_ns}
        self._registry_dirty = True
        self._wake.set()

    def unregister(self, connection: str, topic: str | None = None) -> None:
        head = f"{self.instance}/{connection}/"
        for field in [f for f in self._registry if f.startswith(head) and (topic is None or f == head + topic)]:
            del self._registry[field]
        self._registry_dirty = True
        self._wake.set()

    # ------------------------------------------------------------------ reads
    def _key(self, table: str) -> str:
        return f"{self.prefix}:latest:{table}"

    async def snapshot(self, table: str, schema: pa.Schema, symbols: frozenset[str] | None,
                       strategy: str | None = None) -> pa.Table | None:
        """Latest rows from Redis (``None`` when Redis is unreachable: the caller uses memory)."""
        try:
            if symbols is not None and (strategy is not None or table != "signals"):
                fields = sorted(symbols) if table != "signals" else [f"{strategy}{_SEP}{s}" for s in sorted(symbols)]
                values = [v for v in await self.redis.hmget(self._key(table), fields) if v is not None]
            else:
                values = list((await self.redis.hgetall(self._key(table))).values())
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return None
        if not values:
            return None
        full = schema.append(pa.field("offset", pa.int64())) if "offset" not in schema.names else schema
        try:
            rows = [json.loads(v) for v in values]
            rows = [{k: v for k, v in r.items() if k in full.names} for r in rows if isinstance(r, dict)]
            for r in rows:  # JSON has no NaN: the encoder wrote null
                for k, v in r.items():
                    if v is None and pa.types.is_floating(full.field(k).type):
                        r[k] = float("nan")
            out = pa.Table.from_pylist(rows, schema=full)
        except (ValueError, TypeError, pa.ArrowException) as exc:
            # rows that do not fit the schema were not written by us: serve from memory
            log.warning("ignoring malformed snapshot rows in redis %s: %s", self._key(table), exc)
            return None
        if symbols is not None:
            out = out.filter(pc.is_in(out.column("symbol"), value_set=pa.array(sorted(symbols))))
        return out

    @staticmethod
    def validate_rows(rows: pa.Table, cursor: int, oldest: int) -> pa.Table | None:
        """Keep only snapshot rows from Redis whose ``offset`` the table can have produced.

        Redis is outside the trust boundary of the stream tables: a row with an offset at or
        past the table's cursor (it would win every merge) or a null offset/symbol is dropped
        and logged rather than sent to subscribers.
        """
        off = rows.column("offset")
        # an empty table (a fresh in-memory process) has no offsets to check against yet
        limit = cursor if cursor > 0 else 2**62
        ok = pc.and_(pc.and_(pc.is_valid(off), pc.less(pc.fill_null(off, -1), limit)),
                     pc.and_(pc.greater_equal(pc.fill_null(off, -1), 0), pc.is_valid(rows.column("symbol"))))
        good = rows.filter(ok)
        if good.num_rows != rows.num_rows:
            log.warning("dropped %d snapshot rows from redis with offsets outside [0, %d)",
                        rows.num_rows - good.num_rows, cursor)
        return good if good.num_rows else None

    async def subscriptions(self) -> list[dict[str, Any]]:
        """Every live instance's subscriptions (raises ``RedisError`` when Redis is down)."""
        entries = [json.loads(v) for v in (await self.redis.hgetall(f"{self.prefix}:subs")).values()]
        instances = sorted({e["instance"] for e in entries})
        alive = await self.redis.mget([f"{self.prefix}:instance:{i}" for i in instances]) if instances else []
        live = {i for i, a in zip(instances, alive) if a is not None}
        return [e for e in entries if e["instance"] in live]

    async def revoked(self, now_s: int) -> frozenset[str] | None:
        """Token ids revoked through Redis (``pp:revoked``: jti -> exp seconds), or ``None`` if unreachable."""
        try:
            entries = await self.redis.hgetall(f"{self.prefix}:revoked")
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return None
        return frozenset(k.decode() for k, v in entries.items() if int(v) >= now_s)

    # ------------------------------------------------------------------ writer
    def _degrade(self, exc: BaseException) -> None:
        if self.status != "degraded":
            log.warning("redis unavailable (%s): streaming from memory, health degraded", exc)
        self.status = "degraded"
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._need_full = True
        self._registry_dirty = True

    async def flush(self) -> None:
        """Write what is pending; raises on Redis errors (the loop handles them)."""
        pending, self._pending = self._pending, {}
        try:
            if self._need_full and self.full_state is not None:
                for name, t in self.full_state().items():
                    if t is not None:
                        pending.setdefault(name, []).insert(0, t)
            pipe = self.redis.pipeline(transaction=False)
            if self._need_full and self.revocations is not None:
                revoked = self.revocations()
                if revoked:
                    pipe.hset(f"{self.prefix}:revoked", mapping={k: int(v) for k, v in revoked.items()})
            for name, parts in pending.items():
                latest = latest_per_key(pa.concat_tables(parts))
                if latest.num_rows == 0:
                    continue
                buf, bounds = encode_json_rows(latest)
                b = bounds.tolist()
                mapping = {f: buf[b[i]:b[i + 1]] for i, f in enumerate(_fields(latest))}
                pipe.hset(self._key(name), mapping=mapping)
            pipe.set(f"{self.prefix}:instance:{self.instance}", "1", ex=self.instance_ttl_s)
            registry_written = self._registry_dirty
            if registry_written:
                self._registry_dirty = False
                mine = [f for f in await self.redis.hkeys(f"{self.prefix}:subs") if f.decode().startswith(self.instance + "/")]
                if mine:
                    pipe.hdel(f"{self.prefix}:subs", *mine)
                if self._registry:
                    pipe.hset(f"{self.prefix}:subs", mapping={k: json.dumps(v) for k, v in self._registry.items()})
            await pipe.execute()
        except BaseException:
            for name, parts in pending.items():  # keep what was not written; newer rows stay last
                self._pending[name] = parts + self._pending.get(name, [])
            raise
        if self.status != "ok":
            log.info("redis available: hot cache %s", "recovered" if self.status == "degraded" else "up")
        self.status, self._need_full = "ok", False
        self.writes += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Write loop until ``stop`` is set: coalesce, write, back off while Redis is down."""
        delay = 0.1
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.instance_ttl_s / 3)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                delay = 0.1
            except (RedisError, OSError) as exc:
                self._degrade(exc)
                self._wake.set()  # retry after the back-off
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, 2.0)
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.min_flush_s)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        try:
            if self.status == "ok":
                await self.redis.hdel(f"{self.prefix}:subs", *self._registry) if self._registry else None
                await self.redis.delete(f"{self.prefix}:instance:{self.instance}")
        except (RedisError, OSError):
            pass
        await self.redis.aclose()
