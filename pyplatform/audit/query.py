"""Reading the audit log into a DataFrame, and the one-call hook other packages use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from pyplatform.audit.log import AuditLog, read_records
from pyplatform.clock import LiveClock

__all__ = ["read_audit", "audit"]

log = logging.getLogger(__name__)
_COLUMNS = ["seq", "datetime", "kind", "actor", "subject", "outcome", "details", "hash"]


def _ts(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    t = pd.Timestamp(value)
    if t.tz is not None:  # an aware time is converted; a naive one is taken as UTC
        t = t.tz_convert("UTC").tz_localize(None)
    return int(t.value)


def read_audit(path: str | Path | None = None, kinds: Iterable[str] | str | None = None, actor: str | None = None,
               subject: str | None = None, start=None, end=None, settings=None) -> pd.DataFrame:
    """The audit records as a frame, oldest first.

    Parameters
    ----------
    path : path, optional
        The log (default ``Settings.audit_path``).
    kinds : str or iterable of str, optional
        Keep these kinds; a name ending in ``.*`` keeps a family (``token.*``).
    actor, subject : str, optional
        Keep records of this actor / subject.
    start, end : int ns, str or Timestamp, optional
        Keep ``start <= ts < end`` (UTC).

    Returns
    -------
    pandas.DataFrame
        Columns ``seq, datetime (UTC, tz-naive), kind, actor, subject, outcome, details
        (dict), hash``. Not verified: run :func:`~pyplatform.audit.verify_file` to trust it.
    """
    if path is None:
        from pyplatform.config import get_settings

        path = (settings or get_settings()).audit_path
    rows = list(read_records(path))
    frame = pd.DataFrame(rows, columns=["seq", "ts", "kind", "actor", "subject", "outcome", "details", "hash"])
    if isinstance(kinds, str):
        kinds = [kinds]
    if kinds is not None:
        kinds = list(kinds)
        exact = [k for k in kinds if not k.endswith(".*")]
        fams = tuple(k[:-1] for k in kinds if k.endswith(".*"))
        frame = frame[frame["kind"].isin(exact) | (frame["kind"].str.startswith(fams) if fams else False)]
    if actor is not None:
        frame = frame[frame["actor"] == actor]
    if subject is not None:
        frame = frame[frame["subject"] == subject]
    lo, hi = _ts(start), _ts(end)
    if lo is not None:
        frame = frame[frame["ts"] >= lo]
    if hi is not None:
        frame = frame[frame["ts"] < hi]
    frame = frame.assign(datetime=pd.to_datetime(frame["ts"].astype("int64"), unit="ns"))
    return frame[_COLUMNS].reset_index(drop=True)


_logs: dict[Path, AuditLog] = {}


def audit(kind: str, actor: str, subject: str | None = None, outcome: str = "ok",
          details: Mapping[str, Any] | None = None, *, settings=None, now_ns: int | None = None,
          strict: bool = False) -> bool:
    """Record one operation in the platform's audit log; the hook for other packages.

    Parameters
    ----------
    kind, actor, subject, outcome, details, now_ns
        As :meth:`AuditLog.append`. Without ``now_ns`` the record is stamped with wall time:
        this hook builds the platform's log from settings (an edge builder, like
        :func:`~pyplatform.audit.open_audit_log`); a caller on a clock (the trading node)
        passes ``now_ns=clock.now_ns()``.
    settings : Settings, optional
        Which log (``settings.audit_path``); default :func:`~pyplatform.config.get_settings`.
    strict : bool
        Raise when the record cannot be written. By default a failure is logged at ERROR
        and ``False`` returned, so an audit problem (full disk, tampered log) is loud but
        does not stop a risk check or a cancel; security-critical callers (token issue,
        secret rotation) pass ``strict=True`` so the operation fails with it.

    Returns
    -------
    bool
        Whether the record was written.
    """
    from pyplatform.config import get_settings

    settings = settings or get_settings()
    path = Path(settings.audit_path)
    try:
        lg = _logs.get(path)
        if lg is None:
            lg = _logs[path] = AuditLog(path, LiveClock(), fsync=settings.fsync != "never")
        lg.append(kind, actor, subject, outcome, details, now_ns=now_ns)
        return True
    except Exception as exc:
        if strict:
            raise
        log.error("audit: could not record %s by %s: %s", kind, actor, exc)
        return False
