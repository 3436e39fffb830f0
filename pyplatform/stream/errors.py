"""Errors raised by stream tables, with the values a caller needs to recover."""

from __future__ import annotations

__all__ = ["StreamError", "SchemaError", "RetentionError", "CorruptLogError"]


class StreamError(Exception):
    """Base class of stream-table errors."""


class SchemaError(StreamError, ValueError):
    """A batch does not match the table's schema; the message names the column."""


class RetentionError(StreamError, LookupError):
    """Rows before ``oldest_offset`` were deleted by retention (or never existed).

    Attributes
    ----------
    table : str
        Name of the table.
    requested : int
        The offset that was asked for.
    oldest_offset : int
        The oldest offset still available; resume from there (rows in between are gone).
    """

    def __init__(self, table: str, requested: int, oldest_offset: int) -> None:
        self.table = table
        self.requested = int(requested)
        self.oldest_offset = int(oldest_offset)
        super().__init__(
            f"stream table {table!r}: offset {self.requested} is past retention; "
            f"the oldest offset still available is {self.oldest_offset}"
        )


class CorruptLogError(StreamError, OSError):
    """A log segment other than the last one is damaged (the last one is repaired on open)."""
