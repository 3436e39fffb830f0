"""The audit log file: append-only, hash-chained, safe for several writer processes.

Layout: ``audit.log`` (one canonical-JSON record per line, see :mod:`pyplatform.audit.chain`)
and ``audit.log.head`` (the newest ``seq``/``hash``, replaced atomically after each append).
An append takes an exclusive ``flock`` on the log, checks that the log's last line is the
head (so nothing builds on a tampered or truncated chain), writes the line, fsyncs it, and
then moves the head. A crash between the write and the head leaves a record the head does
not know yet: it was never acknowledged, so the next append drops it (and says so in the
log it writes), as it does a torn half-line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from pyplatform.audit.chain import AuditError, Head, Problem, VerifyReport, encode_record, verify_lines
from pyplatform.clock import Clock, LiveClock
from pyplatform.config import mask_value

__all__ = ["AuditLog", "open_audit_log", "verify_file", "read_records"]

log = logging.getLogger(__name__)
_SECRET_NAMES = ("token", "secret", "password", "passwd", "api_key", "credential")


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details with credentials masked: an audit log is read by more people than the secrets."""
    out: dict[str, Any] = {}
    for k, v in details.items():
        if any(s in str(k).lower() for s in _SECRET_NAMES) and isinstance(v, str):
            out[k] = "***"
        elif isinstance(v, Mapping):
            out[k] = _scrub(v)
        elif isinstance(v, (list, tuple)):
            out[k] = [mask_value(x) if isinstance(x, str) else x for x in v]
        else:
            out[k] = mask_value(v) if isinstance(v, str) else v
    return out


def _last_line(f) -> tuple[bytes, int]:
    """The last complete line of an open binary file and the offset just after it.

    Bytes after the last ``\\n`` (a torn append) are not part of it.
    """
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return b"", 0
    pos, chunk, tail = end, 4096, b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        f.seek(pos)
        tail = f.read(step) + tail
        nl = tail.rfind(b"\n")
        if nl >= 0:
            complete_end = pos + nl + 1
            body = tail[:nl]
            start = body.rfind(b"\n")
            while start < 0 and pos > 0:  # the whole last line is not in the window yet
                step = min(chunk, pos)
                pos -= step
                f.seek(pos)
                body = f.read(step) + body
                start = body.rfind(b"\n")
            return body[start + 1:] + b"\n", complete_end
    return b"", 0


class AuditLog:
    """Append-only, hash-chained audit log in one file (plus its ``.head``).

    Parameters
    ----------
    path : path
        The log file (its directory is created).
    clock : Clock
        Time of each record (required: :class:`~pyplatform.clock.LiveClock` at the edge,
        a ``SimClock`` in tests and backtests; nothing here reads wall time on its own).
    fsync : bool
        fsync the log and the head on every append (default True: an acknowledged
        audit record survives a crash of the machine, not only of the process).
    verify_first : bool
        Verify the whole chain before this object's first append (default True); later
        appends check only that the log still ends at its head, which costs O(1).

    Examples
    --------
    >>> log = AuditLog(tmp / "audit.log", LiveClock())                   # doctest: +SKIP
    >>> log.append("token.issue", actor="cli:alice", subject="bob", details={"jti": "j1"})
    """

    def __init__(self, path: str | Path, clock: Clock, fsync: bool = True,
                 verify_first: bool = True) -> None:
        self.path = Path(path)
        self._verified = not verify_first
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.head_path = _head_path(self.path)
        self.clock = clock
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def head(self) -> Head:
        """The head kept beside the log (``Head()`` when nothing was ever appended)."""
        try:
            return Head.from_json(self.head_path.read_text())
        except FileNotFoundError:
            return Head()

    def append(self, kind: str, actor: str, subject: str | None = None, outcome: str = "ok",
               details: Mapping[str, Any] | None = None, now_ns: int | None = None) -> Head:
        """Append one record; return the new head once it is durable.

        Parameters
        ----------
        kind : str
            What happened, e.g. ``token.issue`` (see :data:`~pyplatform.audit.KINDS`).
        actor : str
            Who did it (``cli:<user>``, ``service:<host>``, ``oms:<account>``).
        subject : str, optional
            What it was done to (a token subject, an order id, a factor name).
        outcome : str
            ``ok``, ``refused``, ``error``...
        details : mapping, optional
            Plain JSON; values under credential-like keys (``token``, ``password``...) and
            passwords inside URIs are masked before they are written.
        now_ns : int, optional
            The time of the record (default: the log's clock).

        Raises
        ------
        AuditError
            Bad input, or the log no longer ends at its head (tampered or truncated: run
            ``pyplatform audit verify``); nothing is written then.
        """
        return self.append_many([dict(kind=kind, actor=actor, subject=subject, outcome=outcome,
                                      details=details or {}, now_ns=now_ns)])

    def append_many(self, events: Iterable[Mapping[str, Any]]) -> Head:
        """Append several records under one lock and one fsync (fields as :meth:`append`)."""
        events = list(events)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            head = self._tail_matches_head(f)
            if not self._verified:
                f.seek(0)
                report = verify_lines(f, expected_head=head)
                if not report.ok:
                    raise AuditError(f"{self.path} fails verification ({report.summary()}); nothing appended: "
                                     "run `pyplatform audit verify`")
                self._verified = True
            lines, h, seq = [], head.hash, head.seq
            for ev in events:
                seq += 1
                ts = ev.get("now_ns")
                ts = self.clock.now_ns() if ts is None else ts
                line, h = encode_record(seq, ts, ev["kind"], ev["actor"], ev.get("subject"), ev.get("outcome", "ok"),
                                        _scrub(ev.get("details") or {}), h)
                lines.append(line)
            if not lines:
                return head
            f.seek(0, os.SEEK_END)
            f.write(b"".join(lines))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            new = Head(seq, h)
            self._write_head(new)
            return new

    def _tail_matches_head(self, f) -> Head:
        head = self.head()
        last, end = _last_line(f)
        size = f.seek(0, os.SEEK_END)
        if last:
            try:
                rec = json.loads(last)
                tail = Head(int(rec["seq"]), str(rec["hash"]))
            except (ValueError, KeyError, TypeError):
                raise AuditError(f"{self.path}: the last line is not an audit record; run `pyplatform audit verify`") from None
        else:
            tail = Head()
        if tail == head:
            if size > end:  # a torn half-line from a crash mid-append: never acknowledged
                log.warning("audit %s: dropping %d bytes of a torn, unacknowledged append", self.path, size - end)
                f.truncate(end)
            return head
        # a record past the head whose prev is the head: written, crash before the head moved
        if tail.seq == head.seq + 1 and json.loads(last)["prev"] == head.hash:
            log.warning("audit %s: dropping record seq=%d written but never acknowledged (crash before its head)",
                        self.path, tail.seq)
            f.truncate(end - len(last))
            return head
        raise AuditError(f"{self.path}: the log ends at seq {tail.seq} but its head says seq {head.seq}: "
                         "it was truncated or edited; run `pyplatform audit verify` (nothing appended)")

    def _write_head(self, head: Head) -> None:
        from pyplatform.fsio import atomic_write

        atomic_write(self.head_path, head.to_json(), durable=self.fsync)

    def verify(self, anchors: Iterable[str] = ()) -> VerifyReport:
        """Verify the whole chain against the head (see :func:`verify_file`)."""
        return verify_file(self.path, anchors)

    def records(self) -> Iterator[dict]:
        """Every complete record, oldest first (not verified; use :meth:`verify`)."""
        return read_records(self.path)


def verify_file(path: str | Path, anchors: Iterable[str] = ()) -> VerifyReport:
    """Verify an audit log file: every line, the chain, and its end against the ``.head``.

    A missing head beside a non-empty log is a problem (it was deleted); a torn last line is
    reported (``torn_tail``) but is not tampering: it is an append that crashed and was never
    acknowledged.
    """
    path = Path(path)
    head_file = _head_path(path)
    expected = Head.from_json(head_file.read_text()) if head_file.exists() else Head()
    if not path.exists():
        report = VerifyReport()
        if expected.seq >= 0:
            report.problems.append(Problem(0, f"{path} is missing but its head says {expected.seq + 1} records were written"))
        return report
    with open(path, "rb") as f:
        report = verify_lines(f, expected_head=expected, anchors=anchors)
    if not head_file.exists() and report.records > report.unacknowledged:
        report.problems.append(Problem(0, f"{head_file.name} is missing (deleted?): truncation cannot be ruled out"))
    return report


def read_records(path: str | Path) -> Iterator[dict]:
    """Parse every complete line of an audit log (a torn last line is skipped)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            if raw.endswith(b"\n"):
                yield json.loads(raw)


def open_audit_log(settings=None, clock: Clock | None = None) -> AuditLog:
    """The platform's audit log (``Settings.audit_path``: ``data_dir/audit/audit.log``).

    A builder at the edge: without a ``clock`` it is the one place that picks
    :class:`~pyplatform.clock.LiveClock` for the records' times.
    """
    from pyplatform.config import get_settings

    settings = settings or get_settings()
    return AuditLog(settings.audit_path, clock or LiveClock(), fsync=settings.fsync != "never")
