"""The audit log's pure core: record encoding, the hash chain, and verification (no I/O).

Each record is one line of canonical JSON (sorted keys, no spaces, UTF-8) holding ``seq``
(0, 1, 2, ... with no gap), ``ts`` (int ns UTC, from the caller's clock), ``kind``,
``actor``, ``subject``, ``outcome``, ``details`` and ``prev`` (the previous record's
``hash``; 64 zeros for the first). ``hash`` is SHA-256 over the canonical JSON of every
other field, so editing, inserting, deleting or reordering a line breaks the chain at that
line. Dropping lines from the *end* leaves a valid shorter chain: that is caught by the
head (the last ``seq``/``hash``, kept beside the log and printable for an outside anchor).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["GENESIS", "KINDS", "AuditError", "Head", "Problem", "VerifyReport", "encode_record",
           "record_hash", "verify_lines", "check_kind"]

#: ``prev`` of the first record.
GENESIS = "0" * 64

#: The operations the platform audits (a kind outside this list is allowed if well formed;
#: these are the names the hooks use, so queries can rely on them).
KINDS: dict[str, str] = {
    "token.issue": "a signal-service token was issued (subject, jti, topics, expiry)",
    "token.revoke": "a token (jti) or every token of a subject was revoked",
    "secret.rotate": "the JWT master secret or a signing key was created or rotated",
    "login.refused": "a connection's token was refused (reason)",
    "entitlement.refused": "an authenticated subscriber asked for a topic/symbol it may not see",
    "factor.publish": "a factor version was published to the registry",
    "factor.retire": "a factor was retired",
    "order.submit": "an order was submitted to a broker",
    "order.cancel": "a cancel was requested",
    "risk.refused": "a pre-trade check refused an order",
    "killswitch.engage": "trading was halted",
    "killswitch.release": "trading was resumed",
    "deploy": "scripts were deployed to / removed from a server",
}

_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_FIELDS = ("seq", "ts", "kind", "actor", "subject", "outcome", "details", "prev")


class AuditError(Exception):
    """The audit log refused an operation (bad record, or a log that fails verification)."""


def check_kind(kind: str) -> str:
    """``kind`` if it is dotted lower-case words (``token.issue``), else :class:`AuditError`."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise AuditError(f"audit kind {kind!r} must be dotted lower-case words such as 'token.issue'")
    return kind


def _canonical(obj: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit record is not plain JSON (str, int, float, bool, None, list, dict): {exc}") from None


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of every field but ``hash``."""
    return hashlib.sha256(_canonical({k: record[k] for k in _FIELDS})).hexdigest()


def encode_record(seq: int, ts: int, kind: str, actor: str, subject: str | None, outcome: str,
                  details: Mapping[str, Any], prev: str) -> tuple[bytes, str]:
    """One record as a line (with ``\\n``) and its hash.

    Raises
    ------
    AuditError
        A field has the wrong type or ``details`` is not plain JSON.
    """
    check_kind(kind)
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise AuditError(f"audit ts must be int nanoseconds UTC, got {ts!r}")
    if not isinstance(actor, str) or not actor:
        raise AuditError("audit actor must be a non-empty string (who did it: 'cli:alice', 'oms:demo')")
    for k, v in _walk(details):
        if isinstance(v, float) and not math.isfinite(v):
            raise AuditError(f"audit details[{k!r}] is {v}: not JSON")
    rec = {"seq": int(seq), "ts": ts, "kind": kind, "actor": actor, "subject": subject, "outcome": str(outcome),
           "details": dict(details), "prev": prev}
    h = record_hash(rec)
    rec["hash"] = h
    return _canonical(rec) + b"\n", h


def _walk(obj: Any, key: str = ""):
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _walk(v, str(k))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _walk(v, key)
    else:
        yield key, obj


@dataclass(frozen=True)
class Head:
    """The newest record's ``seq`` and ``hash`` (an empty log has ``seq == -1``)."""

    seq: int = -1
    hash: str = GENESIS

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash})

    @classmethod
    def from_json(cls, text: str) -> Head:
        try:
            obj = json.loads(text)
            return cls(int(obj["seq"]), str(obj["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"audit head is not {{'seq': int, 'hash': hex}}: {exc}") from None


@dataclass(frozen=True)
class Problem:
    """One verification failure: the 1-based ``line`` and what is wrong there."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class VerifyReport:
    """What :func:`verify_lines` found. ``ok`` when there is no problem."""

    records: int = 0
    head: Head = field(default_factory=Head)
    problems: list[Problem] = field(default_factory=list)
    torn_tail: bool = False  #: the last line has no newline (a crash mid-append; not acknowledged)
    #: records after the head that chain onto it: written by an append that crashed before
    #: moving the head, so never acknowledged (the next append drops them). Not tampering by
    #: itself, but not vouched for either: ``pyplatform audit verify`` prints a warning.
    unacknowledged: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            if self.unacknowledged:
                return (f"ok, with a warning: {self.records} records; the last one was written after the head "
                        "(an append that crashed before it was acknowledged, or a forged line); head seq="
                        f"{self.head.seq - 1}")
            return f"ok: {self.records} records, chain intact, head seq={self.head.seq} hash={self.head.hash}"
        first = "; ".join(str(p) for p in self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return f"TAMPERED: {len(self.problems)} problem(s): {first}{more}"


def verify_lines(lines: Iterable[bytes], expected_head: Head | None = None,
                 anchors: Iterable[str] = ()) -> VerifyReport:
    """Check a log's lines: parse, contiguous ``seq``, ``prev`` links, recomputed hashes, head.

    Parameters
    ----------
    lines : iterable of bytes
        The file's lines, each with its ``\\n`` (a last line without one is a torn append).
    expected_head : Head, optional
        The head kept beside the log: the chain must end exactly there (else lines were
        dropped from the end, or appended by something that bypassed the writer).
    anchors : iterable of str
        Hashes recorded elsewhere earlier (``pyplatform audit head``): each must be in the
        chain, so a chain rewritten wholesale from before an anchor is caught too.

    Returns
    -------
    VerifyReport
    """
    report = VerifyReport()
    prev, expect_seq, n, seen, last_prev = GENESIS, 0, 0, set(), None
    for n, raw in enumerate(lines, 1):
        if not raw.endswith(b"\n"):
            report.torn_tail = True
            n -= 1
            break
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
            missing = [k for k in (*_FIELDS, "hash") if k not in rec]
            if missing:
                raise ValueError(f"missing {missing}")
        except ValueError as exc:
            report.problems.append(Problem(n, f"not an audit record ({exc})"))
            prev, expect_seq = None, None
            continue
        if expect_seq is not None and rec["seq"] != expect_seq:
            report.problems.append(Problem(n, f"seq {rec['seq']} where {expect_seq} was expected (a line was removed or inserted)"))
        if prev is not None and rec["prev"] != prev:
            report.problems.append(Problem(n, "prev does not match the previous record's hash (chain broken)"))
        try:
            ok = record_hash(rec) == rec["hash"]
        except (AuditError, KeyError):
            ok = False
        if not ok:
            report.problems.append(Problem(n, f"hash mismatch: record seq={rec.get('seq')} was edited"))
        last_prev = rec["prev"]
        prev, expect_seq = rec["hash"], (rec["seq"] + 1 if isinstance(rec["seq"], int) else None)
        seen.add(rec["hash"])
        report.head = Head(rec["seq"] if isinstance(rec["seq"], int) else -1, rec["hash"])
        report.records += 1
    if (expected_head is not None and report.head.seq == expected_head.seq + 1 and last_prev == expected_head.hash
            and not report.problems):
        report.unacknowledged = 1
    elif expected_head is not None and expected_head != report.head:
        if expected_head.seq > report.head.seq:
            report.problems.append(Problem(n + 1, f"log ends at seq {report.head.seq} but its head says {expected_head.seq}: "
                                                  f"{expected_head.seq - report.head.seq} record(s) truncated"))
        else:
            report.problems.append(Problem(n, f"log ends at seq {report.head.seq} hash {report.head.hash[:12]}... but its head "
                                              f"says seq {expected_head.seq} hash {expected_head.hash[:12]}... "
                                              "(rewritten, or appended by something other than the audit writer)"))
    for a in anchors:
        if a not in seen:
            report.problems.append(Problem(0, f"anchor {a[:12]}... is not in the chain (rewritten since it was taken)"))
    return report
