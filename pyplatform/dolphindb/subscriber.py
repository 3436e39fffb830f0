"""Subscribing to the signals stream table from Python, resuming by offset.

DolphinDB numbers the rows of a stream table from 0 (its offset). The Python API delivers
a subscription's rows in order, so the offset of the next row is the start offset plus
the rows delivered. :class:`OffsetBook` keeps that number per action in a small file under
``data_dir`` and advances it only AFTER the handler returned, so a consumer that crashes
re-reads the batch it was processing (at-least-once) and one that stops cleanly resumes
exactly where it stopped. Risk and execution receive each batch as an Arrow table in the
platform's ``SIGNALS`` schema (``ts`` int64 ns).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.dolphindb.connection import DolphinDBTarget
from pyplatform.fsio import atomic_write
from pyplatform.dolphindb.render import DeployConfig
from pyplatform.domain.schemas import SIGNALS

__all__ = ["OffsetBook", "SignalSubscriber", "signals_to_arrow", "persistence_meta_script", "next_offset"]


def persistence_meta_script(table: str) -> str:
    """Script returning a persisted stream table's metadata dictionary (``totalSize`` is
    the offset the next appended row gets; ``memoryOffset`` the first row still in memory)."""
    if not table.replace("_", "").isalnum():
        raise ValueError(f"stream table name must be letters, digits and '_', got {table!r}")
    return f'getPersistenceMeta(objByName("{table}"))'


def next_offset(session, table: str) -> int:
    """Offset the next row appended to ``table`` will get."""
    return int(session.run(persistence_meta_script(table))["totalSize"])


class OffsetBook:
    """Next offset to read per subscription action, persisted atomically in ``path``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.path.read_text()).items()}
        except FileNotFoundError:
            return {}

    def get(self, action: str) -> int | None:
        """The next offset for ``action``, or None if it never acknowledged anything."""
        return self._load().get(action)

    def ack(self, action: str, next_offset: int) -> None:
        """Record that every row before ``next_offset`` was handled (never moves backwards)."""
        with self._lock:
            book = self._load()
            if next_offset < book.get(action, 0):
                raise ValueError(f"offset for {action!r} would move back from {book[action]} to {next_offset}")
            book[action] = int(next_offset)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # durable like the embedded AckStore: resume-by-offset is the same promise here
            atomic_write(self.path, json.dumps(book, sort_keys=True))


def signals_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Rows of the signals stream table (as the API delivers them) in the ``SIGNALS`` schema."""
    missing = [n for n in SIGNALS.names if n not in frame.columns]
    if missing:
        raise ValueError(f"signals batch lacks column(s) {missing}; got {list(frame.columns)}")
    ts = pd.to_datetime(frame["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
    arrays = [pa.array(ts, pa.int64())]
    for field in list(SIGNALS)[1:]:
        values = frame[field.name]
        if pa.types.is_string(field.type):
            values = values.astype(str)
        arrays.append(pa.array(values.to_numpy(), field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=SIGNALS)


class SignalSubscriber:
    """Feeds ``handler(pa.Table)`` with the signals stream table, resuming by offset.

    Parameters
    ----------
    target : DolphinDBTarget
        Server and credentials.
    handler : callable
        Receives each batch as Arrow (``SIGNALS`` schema); an exception stops the
        offset from advancing, so the batch is delivered again after a restart.
    book : OffsetBook
        Where the next offset is kept.
    action : str
        Subscription name (unique per consumer).
    config : DeployConfig, optional
        Object names of the deployment.
    batch_size, throttle_s : int, float
        Delivery batching of the API (rows, seconds).
    """

    def __init__(self, target: DolphinDBTarget, handler: Callable[[pa.Table], None], book: OffsetBook,
                 action: str = "pp_risk", config: DeployConfig | None = None, batch_size: int = 1000,
                 throttle_s: float = 0.1):
        self.target, self.handler, self.book, self.action = target, handler, book, action
        self.config = config or DeployConfig()
        self.batch_size, self.throttle_s = batch_size, throttle_s
        self._session = None
        self.next_offset: int | None = None
        self.errors: list[BaseException] = []

    @property
    def table(self) -> str:
        return f"{self.config.prefix}_signals"

    def on_batch(self, frame: pd.DataFrame) -> None:
        """Handle one delivered batch and acknowledge it (called by the API's thread)."""
        try:
            self.handler(signals_to_arrow(frame))
        except BaseException as exc:  # keep the offset; report through errors
            self.errors.append(exc)
            raise
        self.next_offset = (self.next_offset or 0) + len(frame)
        self.book.ack(self.action, self.next_offset)

    def start(self) -> int:
        """Subscribe from the acknowledged offset, or from the next new row if none; returns it.

        "Next new row" is read from the table's persistence metadata before subscribing and
        passed as an explicit offset, so acknowledgements are absolute offsets and no row
        appended between the two calls is missed.
        """
        import dolphindb as ddb

        from pyplatform.dolphindb.connection import connect

        stored = self.book.get(self.action)
        if stored is None:
            probe = connect(self.target)
            try:
                stored = next_offset(probe, self.table)
            finally:
                probe.close()
        self.next_offset = stored
        session = ddb.Session()
        session.enableStreaming()
        session.subscribe(self.target.host, self.target.port, self.on_batch, self.table, self.action,
                          offset=stored, resub=True, msgAsTable=True, batchSize=self.batch_size,
                          throttle=self.throttle_s, userName=self.target.user,
                          password=self.target.password.get_secret_value())
        self._session = session
        return stored

    def stop(self) -> None:
        if self._session is not None:
            self._session.unsubscribe(self.target.host, self.target.port, self.table, self.action)
            self._session.close()
            self._session = None
