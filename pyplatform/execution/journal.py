"""A durable, append-only order journal (JSON lines, group commit: fsync before acknowledging).

The order manager writes each command/event here *before* it changes state or answers its
caller, so after a crash everything acknowledged can be rebuilt. A crash in the middle of
a write leaves a torn last line: it was never acknowledged, so recovery drops it (and
truncates it away so later appends start on a clean line). A bad line anywhere else is
corruption and is reported with its line number.

Group commit
------------
``append`` returns only once its record is on disk, but records do not pay one ``fsync``
each. Writes go to the file in arrival order under a lock; then the first appender that
finds no ``fsync`` in flight becomes the *leader*: it notes how many records have been
written, releases the lock, calls ``fsync`` and, when that returns, marks every record written
before the call as durable and wakes the others. Appenders that arrived while an ``fsync``
was in flight wait; when it returns, one of them leads the next ``fsync``, which covers all of
them at once. A lone appender pays exactly one ``fsync`` (no thread hop, no timer wait); N
appenders arriving together pay about two. This is the leader/follower form of the classic
log-writer thread (PostgreSQL's WAL flush, InnoDB's group commit): same guarantee, no extra
thread to start, stop or hand over to.

A failed ``fsync`` poisons the journal: the kernel may have dropped the dirty pages, so no
later ``fsync`` can prove those records durable (PostgreSQL's "fsyncgate"). Every waiter and
every later append raises :class:`JournalWriteError`; the process must restart and recover
from what is on disk.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterator

from pyplatform.execution.codec import decode, encode

__all__ = ["Journal", "JournalCorrupt", "JournalWriteError"]


class JournalCorrupt(RuntimeError):
    """A journal line that cannot be decoded and is not a torn final write."""


class JournalWriteError(OSError):
    """A write or fsync failed: records after the last durable one cannot be acknowledged."""


class Journal:
    """Append-only file of order messages, durable on return, with group commit.

    Parameters
    ----------
    path : str or Path
        The journal file (created with its parent directory).
    fsync : bool
        Make every append durable before it returns (the default). ``False`` only for
        benchmarks of the in-memory path and for throwaway sessions.
    group_commit : bool
        Let one ``fsync`` cover every record written while the previous one was in flight
        (the default). ``False`` holds the lock across write *and* ``fsync``, so each append
        pays its own ``fsync`` one after another: the baseline the benchmark compares with.

    Attributes
    ----------
    appended : int
        Records written.
    fsyncs : int
        ``fsync`` calls made; ``appended / fsyncs`` is the mean group size.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True, group_commit: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.group_commit = group_commit
        self._repair_torn_tail()
        self._fh = open(self.path, "ab", buffering=0)
        self.appended = 0
        self.fsyncs = 0
        self._cond = threading.Condition(threading.Lock())
        self._written = 0  # appends (groups of records) written, in order
        self._durable = 0  # appends known to be on disk
        self._syncing = False  # a leader is inside fsync (lock released)
        self._error: BaseException | None = None

    def _repair_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, msg) -> None:
        """Write one message; returns once it is durable."""
        self.append_many((msg,))

    def append_many(self, msgs) -> None:
        """Write several messages as one write; returns once all are durable.

        After a crash the file holds all of them or a prefix (the torn remainder is dropped
        on recovery).

        Raises
        ------
        JournalWriteError
            If this or an earlier write/fsync failed (nothing from then on is acknowledged).
        """
        self.wait_durable(self.write_many(msgs))

    def write_many(self, msgs) -> int:
        """Write messages without waiting for the disk; returns a ticket for :meth:`wait_durable`.

        For a caller that must write under its own lock (to keep records in the order its
        state changes) but should not hold that lock across the ``fsync``: write under the
        lock, release it, then ``wait_durable(ticket)`` before any effect outside the process
        (sending the order, answering the caller). Durability is prefix-ordered -- a ticket
        is durable only when every earlier record is -- so waiting for one's own record also
        covers every record it depended on.
        """
        msgs = msgs if isinstance(msgs, (list, tuple)) else list(msgs)
        # encoding is the caller's CPU work: done outside the lock so appenders overlap it
        payload = b"".join(json.dumps(encode(m), separators=(",", ":")).encode() + b"\n" for m in msgs)
        with self._cond:
            if not payload:
                return self._written  # nothing new: durable once what came before is
            self._check()
            try:
                self._write_all(payload)
            except OSError as exc:
                self._fail(exc)
            self._written += 1
            self.appended += len(msgs)
            if self.fsync and not self.group_commit:
                self._sync_locked()
            return self._written

    def wait_durable(self, ticket: int) -> None:
        """Return once the write ``ticket`` (and every earlier one) is on disk.

        Raises
        ------
        JournalWriteError
            If a write or fsync failed before the ticket became durable.
        """
        if not self.fsync:
            return
        with self._cond:
            while self._durable < ticket:
                self._check()
                if self._syncing:
                    self._cond.wait()
                    continue
                self._lead()

    def _write_all(self, payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            n = self._fh.write(view)
            if not n:
                raise OSError("journal write made no progress")
            view = view[n:]

    def _lead(self) -> None:
        """fsync everything written so far with the lock released (called holding it)."""
        self._syncing = True
        target = self._written
        err: BaseException | None = None
        self._cond.release()
        try:
            os.fsync(self._fh.fileno())
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter below
            err = exc
        finally:
            self._cond.acquire()
            self._syncing = False
        if err is not None:
            self._fail(err)
        self.fsyncs += 1
        if target > self._durable:
            self._durable = target
        self._cond.notify_all()

    def _sync_locked(self) -> None:
        try:
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self._fail(exc)
        self.fsyncs += 1
        self._durable = self._written

    def _fail(self, exc: BaseException):
        self._error = exc
        self._cond.notify_all()
        raise JournalWriteError(f"{self.path}: journal write failed ({exc}); records after the last "
                                "durable one are not acknowledged -- restart and recover") from exc

    def _check(self) -> None:
        if self._error is not None:
            raise JournalWriteError(f"{self.path}: an earlier journal write failed ({self._error}); "
                                    "restart and recover")

    def close(self) -> None:
        """Close the file (appends still waiting are finished first: they hold the lock)."""
        with self._cond:
            while self._syncing:
                self._cond.wait()
            self._fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def read(path: str | os.PathLike) -> Iterator:
        """The messages in a journal file, in order (a torn final line is skipped)."""
        path = Path(path)
        if not path.exists():
            return
        data = path.read_bytes()
        lines = data.split(b"\n")
        # lines[-1] is b"" when the file ends with a newline, else a torn (unacknowledged) write
        for no, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                yield decode(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise JournalCorrupt(f"{path}: line {no}: {exc}") from None
