"""Audit records of the signal service (refused logins, entitlement refusals) off the event loop.

The audit log fsyncs every record (``docs/audit.md``); doing that on the event loop would let
a flood of refused handshakes stall every connected client. :class:`AuditSink` hands records
to one writer thread through a bounded queue: the loop only enqueues. When the queue is full
(a flood faster than the disk) the surplus is counted, logged, and the count goes into the
next record written (``details["suppressed_before"]``), so a flood is visible in the log
without the log becoming the bottleneck.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["AuditSink", "audit_sink_from_settings"]

log = logging.getLogger(__name__)

#: ``write(kind, subject, outcome, details)``: records one operation (raises on failure).
AuditWrite = Callable[[str, "str | None", str, dict], Any]

_STOP = object()


class AuditSink:
    """Writes audit records on a background thread, in the order they were submitted.

    Parameters
    ----------
    write : callable
        ``write(kind, subject, outcome, details)``, e.g. a closure over
        :func:`pyplatform.audit.audit`. Called on the sink's thread only.
    max_pending : int
        Records waiting to be written before further ones are counted and dropped.
    """

    def __init__(self, write: AuditWrite, max_pending: int = 10_000) -> None:
        self._write = write
        self._q: queue.Queue = queue.Queue(max_pending)
        self._suppressed = 0
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="signal-audit", daemon=True)
        self._thread.start()

    def submit(self, kind: str, subject: str | None, outcome: str, details: dict[str, Any]) -> None:
        """Queue one record; never blocks (a full queue counts the record as suppressed)."""
        try:
            self._q.put_nowait((kind, subject, outcome, details))
        except queue.Full:
            with self._lock:
                self._suppressed += 1
                n = self._suppressed
            if n == 1 or n % 1000 == 0:
                log.warning("audit queue full: %d records suppressed so far", n)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):  # a flush() marker
                item.set()
                continue
            kind, subject, outcome, details = item
            with self._lock:
                suppressed, self._suppressed = self._suppressed, 0
            if suppressed:
                details = {**details, "suppressed_before": suppressed}
            try:
                self._write(kind, subject, outcome, details)
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - an audit failure is loud but never kills the service
                self.failed += 1
                log.error("audit: could not record %s: %s", kind, exc)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every record queued so far was handed to ``write``; ``False`` on timeout."""
        done = threading.Event()
        try:
            self._q.put(done, timeout=timeout_s)  # a marker: the thread sets it when it gets there
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then stop the thread."""
        try:
            self._q.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.error("audit queue still full at shutdown; %d records not written", self._q.qsize())
            return
        self._thread.join(timeout_s)


def audit_sink_from_settings(settings: Any, actor: str) -> AuditSink:
    """A sink writing to ``settings.audit_path`` through :func:`pyplatform.audit.audit` (strict, so failures count)."""
    from pyplatform.audit import audit

    def write(kind: str, subject: str | None, outcome: str, details: dict) -> None:
        audit(kind, actor, subject, outcome, details, settings=settings, strict=True)

    return AuditSink(write)
