"""Tick ingestion into the ``{prefix}_ticks`` stream table with the API's MultithreadedTableWriter.

A batch (Arrow, pandas or dict of arrays in the ``TICKS`` schema) is validated and
converted column-wise, then handed to the writer in ONE call (``insertUnwrittenData``
takes many rows at once); the writer's threads batch and send them. If the writer fails
(connection lost beyond its retries, a type the table refuses), the rows it did not send
are taken back with ``getUnwrittenData`` and kept, so nothing accepted is lost: the next
``flush``/``write`` retries them on a fresh writer, and ``pending`` shows how many wait.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from pyplatform.dolphindb import schema
from pyplatform.dolphindb.connection import DolphinDBTarget
from pyplatform.dolphindb.render import DeployConfig
from pyplatform.domain.schemas import to_columns

__all__ = ["TickWriter", "IngestError", "tick_rows"]


class IngestError(RuntimeError):
    """The server or the writer refused rows; ``pending`` rows are kept for a retry."""


def tick_rows(batch, config: DeployConfig) -> list[list[Any]]:
    """A tick batch as rows in the stream table's column order, validated.

    Raises
    ------
    ValueError
        Naming a missing column, or the first row with a missing symbol or a NaN,
        infinite or negative price/volume.
    """
    cols = to_columns(batch)
    names = schema.columns("ticks")
    missing = [c for c in ("ts", "symbol", "price", "volume") if c not in cols]
    if missing:
        raise ValueError(f"ticks: missing required column(s) {missing}; got {sorted(cols)}")
    n = len(cols["ts"])
    for c in ("price", "volume"):
        v = np.asarray(cols[c], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
        if bad.size:
            r = int(bad[0])
            raise ValueError(f"ticks: row {r} has {c}={float(v[r])!r} (must be finite and >= 0)")
    sym = np.asarray(cols["symbol"], dtype=object)
    empty = np.flatnonzero((sym == None) | (sym == ""))  # noqa: E711 - vectorised None test
    if empty.size:
        raise ValueError(f"ticks: row {int(empty[0])} has no symbol")
    ts = np.asarray(cols["ts"])
    ts = ts.astype("datetime64[ns]") if ts.dtype.kind == "M" else ts.astype(np.int64).astype("datetime64[ns]")
    if config.time_type == "TIMESTAMP":
        ts = ts.astype("datetime64[ms]")
    out: list[np.ndarray] = []
    for name in names:
        if name == "ts":
            out.append(ts)
        elif name in cols:
            out.append(np.asarray(cols[name]))
        elif name == "side":
            out.append(np.zeros(n, dtype=np.int8))
        else:
            out.append(np.full(n, np.nan))
    # zip runs in C: one list per row without a Python loop body per row
    return [list(r) for r in zip(*out)]


class TickWriter:
    """Writes tick batches to the ticks stream table through a MultithreadedTableWriter.

    Parameters
    ----------
    target : DolphinDBTarget
        Server and credentials.
    config : DeployConfig
        Object names and time type of the deployment.
    batch_size, throttle_s, threads : int, float, int
        Passed to the writer: rows per send, seconds before a partial batch is sent, and
        sending threads (rows are routed to threads by symbol).
    writer_factory : callable, optional
        Builds the writer (tests pass a stand-in; the default is the real API class).
    """

    def __init__(self, target: DolphinDBTarget, config: DeployConfig | None = None, batch_size: int = 10_000,
                 throttle_s: float = 0.1, threads: int = 2, writer_factory: Callable[..., Any] | None = None):
        self.target = target
        self.config = config or DeployConfig()
        self.batch_size, self.throttle_s, self.threads = batch_size, throttle_s, threads
        self._factory = writer_factory or self._api_writer
        self._lock = threading.Lock()
        self._writer = None
        self.pending: list[list[Any]] = []
        self.sent = 0

    def _api_writer(self):
        import dolphindb as ddb

        return ddb.MultithreadedTableWriter(
            self.target.host, self.target.port, self.target.user, self.target.password.get_secret_value(),
            # an in-memory (stream) table: dbPath is empty and tableName names the shared table
            # (api_python3 MultithreadedTableWriter page; only API 1.30.17 and older took the
            # name as dbPath, and the current client then sends loadTable("pp_ticks", ""))
            dbPath="", tableName=f"{self.config.prefix}_ticks", batchSize=self.batch_size,
            throttle=self.throttle_s, threadCount=self.threads,
            partitionCol="symbol" if self.threads > 1 else "")

    def _get(self):
        if self._writer is None:
            self._writer = self._factory()
        return self._writer

    def write(self, batch) -> int:
        """Queue one batch; returns the rows accepted. Raises IngestError if the writer failed
        (the rows are then in ``pending``, not lost)."""
        rows = tick_rows(batch, self.config)
        with self._lock:
            self.pending.extend(rows)
            self._send()
        return len(rows)

    def _send(self) -> None:
        if not self.pending:
            return
        writer = self._get()
        rows, self.pending = self.pending, []
        try:
            info = writer.insertUnwrittenData(rows)
        except Exception as exc:  # the 3.0 client RAISES once its threads exited ("thread is exiting")
            self._recover(writer, rows, f"insert refused: {exc}")
        if info.hasError():
            self._recover(writer, rows, f"insert refused: {info.errorInfo}")

    def _recover(self, writer, refused: list[list[Any]], why: str) -> None:
        """Keep every row not known to be sent: the writer's unwritten rows (queued by EARLIER
        calls, never sent) followed by ``refused`` (the rows of the call that failed, which an
        erroring ``insertUnwrittenData`` did not queue), in that order."""
        unwritten = list(writer.getUnwrittenData() or [])
        self.pending = unwritten + list(refused)
        self._writer = None  # a failed writer does not recover; the next send builds a new one
        raise IngestError(f"ticks writer to {self.target}: {why}; {len(self.pending)} row(s) kept for retry")

    def flush(self) -> None:
        """Send everything queued and wait until the writer has sent it or failed."""
        with self._lock:
            self._send()
            writer = self._writer
            if writer is None:
                return
            writer.waitForThreadCompletion()
            status = writer.getStatus()
            if status.hasError():
                self._recover(writer, [], f"writer stopped: {status.errorInfo}")
            self.sent = int(status.sentRows)
            self._writer = None  # waitForThreadCompletion ends the writer's threads
