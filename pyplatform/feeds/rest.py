"""iTick REST K-lines: fetch bars and backfill them into the history store.

``GET {base}/{stock|forex|indices|crypto}/kline?region=US&code=AAPL&kType=1&limit=N[&et=ms]``
with the token in the ``token`` header. Note that REST success is ``code`` 0 (the
WebSocket's is 1). Bars are stamped with their window start (``t``, ms) and become rows of
the ``BARS`` schema (``vwap`` = turnover / volume; ``trades`` is not provided: 0).
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa

from pyplatform.domain.schemas import BARS
from pyplatform.feeds.symbols import rest_kind, split_symbol

__all__ = ["RestError", "RestClient", "bars_from_kline", "backfill_bars"]

log = logging.getLogger(__name__)


class RestError(RuntimeError):
    """A REST call failed: HTTP status or a non-zero iTick ``code`` (with its ``msg``)."""


def bars_from_kline(symbol: str, rows: list[dict]) -> pa.Table:
    """iTick kline ``data`` rows as a ``BARS`` table (ts = bar start in ns).

    Raises
    ------
    RestError
        If a row lacks one of ``t, o, h, l, c, v`` (names the row and the field).
    """
    cols: dict[str, list] = {k: [] for k in ("t", "o", "h", "l", "c", "v", "tu")}
    for i, row in enumerate(rows):
        for k in cols:
            value = row.get(k)
            if value is None and k != "tu":
                raise RestError(f"kline row {i} for {symbol}: missing field {k!r}: {row!r}")
            cols[k].append(math.nan if value is None else value)
    v = np.asarray(cols["v"], np.float64)
    tu = np.asarray(cols["tu"], np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(v > 0, tu / v, np.nan)
    return pa.Table.from_arrays([
        pa.array(np.asarray(cols["t"], np.int64) * 1_000_000), pa.array([symbol] * len(rows), pa.string()),
        pa.array(cols["o"], pa.float64()), pa.array(cols["h"], pa.float64()), pa.array(cols["l"], pa.float64()),
        pa.array(cols["c"], pa.float64()), pa.array(v), pa.array(vwap), pa.array(np.zeros(len(rows), np.int64)),
    ], schema=BARS)


class RestClient:
    """Minimal iTick REST client (stdlib HTTP; call from a thread in asyncio code).

    Parameters
    ----------
    base_url : str
        e.g. ``https://api.itick.org`` or the simulator's ``http://127.0.0.1:PORT``.
    token : str
        Sent in the ``token`` header; never put in URLs or logs.
    timeout_s : float
        Per-request timeout.
    """

    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r}, token=***)"

    def kline(self, symbol: str, ktype: int = 1, limit: int = 100, end_ms: int | None = None) -> pa.Table:
        """Bars of ``symbol`` (``AAPL.US``), newest ``limit`` bars up to ``end_ms``.

        Raises
        ------
        ValueError
            ``ktype`` outside 1..10.
        RestError
            HTTP error or iTick ``code`` != 0.
        """
        if not 1 <= int(ktype) <= 10:
            raise ValueError(f"kType must be 1..10, got {ktype}")
        code, region = split_symbol(symbol)
        query = {"region": region, "code": code, "kType": int(ktype), "limit": int(limit)}
        if end_ms is not None:
            query["et"] = int(end_ms)
        url = f"{self.base_url}/{rest_kind(symbol)}/kline?{urllib.parse.urlencode(query)}"
        req = urllib.request.Request(url, headers={"token": self._token, "accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise RestError(f"kline {symbol}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise RestError(f"kline {symbol}: {exc}") from None
        if not isinstance(body, dict) or body.get("code") != 0:
            msg = body.get("msg") if isinstance(body, dict) else body
            raise RestError(f"kline {symbol}: iTick code {body.get('code') if isinstance(body, dict) else '?'}: {msg}")
        return bars_from_kline(symbol, body.get("data") or [])


def backfill_bars(client: RestClient, symbols: Iterable[str], start_ns: int, end_ns: int,
                  write: Callable[[pa.Table], object], ktype: int = 1) -> pa.Table:
    """Fetch 1-minute bars covering ``[start_ns, end_ns]`` for ``symbols`` and ``write`` them.

    ``write`` is e.g. ``lambda t: open_store().write("bars_1m", t)`` (idempotent there).
    Returns the bars written. Bars starting before ``start_ns``'s minute are left out.
    """
    first_bar = start_ns - start_ns % 60_000_000_000
    limit = int((end_ns - first_bar) // 60_000_000_000) + 2
    tables = []
    for sym in symbols:  # one request per symbol: the REST API takes one code
        bars = client.kline(sym, ktype=ktype, limit=limit, end_ms=end_ns // 1_000_000)
        ts = bars.column("ts").to_numpy()
        tables.append(bars.filter(pa.array((ts >= first_bar) & (ts <= end_ns))))
    out = pa.concat_tables(tables) if tables else BARS.empty_table()
    if out.num_rows:
        write(out)
    log.info("backfilled %d bars for %d symbols over [%d, %d]", out.num_rows, len(tables), start_ns, end_ns)
    return out
