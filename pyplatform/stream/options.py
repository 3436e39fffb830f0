"""Typed, frozen settings of one stream table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TableOptions"]


@dataclass(frozen=True)
class TableOptions:
    """How a stream table keeps its rows.

    Parameters
    ----------
    memory_rows : int
        Rows kept in memory for fast reads (whole appended batches, newest last). For a
        table without a directory this is also its retention.
    fsync : {"always", "batch", "never"}
        ``always``: fsync after every append (an append returns only once it is durable).
        ``batch``: group commit, at most every ``fsync_interval_s`` seconds, plus on
        :meth:`~StreamTable.flush`, segment roll and close. ``never``: leave it to the OS
        except on explicit ``flush()``/close.
    fsync_interval_s : float
        Group-commit interval of the ``batch`` policy.
    segment_bytes : int
        A segment file is closed and a new one started once it reaches this size.
    retention_rows, retention_bytes : int or None
        Keep at least this many rows/bytes on disk; older whole segments are deleted.
    retention_age_s : float or None
        Delete a segment once its newest row is older than this (by the table's clock).
    """

    memory_rows: int = 1_000_000
    fsync: Literal["always", "batch", "never"] = "batch"
    fsync_interval_s: float = 0.2
    segment_bytes: int = 64 << 20
    retention_rows: int | None = None
    retention_bytes: int | None = None
    retention_age_s: float | None = None

    def __post_init__(self) -> None:
        if self.fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync must be 'always', 'batch' or 'never', got {self.fsync!r}")
        if self.memory_rows < 1:
            raise ValueError(f"memory_rows must be >= 1, got {self.memory_rows}")
        if self.segment_bytes < 1:
            raise ValueError(f"segment_bytes must be >= 1, got {self.segment_bytes}")
        for name in ("retention_rows", "retention_bytes", "retention_age_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {value}")
