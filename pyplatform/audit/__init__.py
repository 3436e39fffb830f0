"""Append-only, hash-chained audit log of the platform's security and trading operations.

``AuditLog(path, clock).append(kind, actor, subject, outcome, details)`` writes one record;
``verify_file(path)`` / ``pyplatform audit verify`` detects an edited, inserted, removed,
reordered or truncated record; ``read_audit(...)`` returns the records as a DataFrame for a
notebook. Hooks call :func:`audit` with the process's settings. See ``docs/audit.md``.
"""

from __future__ import annotations

from pyplatform.audit.chain import GENESIS, KINDS, AuditError, Head, Problem, VerifyReport, verify_lines
from pyplatform.audit.log import AuditLog, open_audit_log, read_records, verify_file
from pyplatform.audit.query import audit, read_audit

__all__ = ["AuditLog", "AuditError", "Head", "Problem", "VerifyReport", "KINDS", "GENESIS", "verify_lines",
           "verify_file", "read_records", "open_audit_log", "read_audit", "audit"]
