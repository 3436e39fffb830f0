"""Topic names and how a topic selects rows and columns from its stream table.

Topics: ``quotes``, ``bars``, ``factors:<factor name>`` (or ``factors`` / ``factors:*`` for
every factor column), ``signals:<strategy>`` (or ``signals`` / ``signals:*`` for every strategy). A topic's sequence
number is the offset of the row in its stream table, so a subscriber that remembers the
last sequence it saw can resume exactly there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TOPIC_TABLES", "Topic", "TopicError", "parse_topic", "project_rows", "validate_symbol"]

#: topic kind -> stream table name the service reads it from
TOPIC_TABLES: dict[str, str] = {"quotes": "quotes", "bars": "bars", "factors": "factors", "signals": "signals"}

_ARG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}\.[A-Za-z]{1,8}$")


class TopicError(ValueError):
    """A topic or symbol in a request is not valid (the message names it)."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic.

    Parameters
    ----------
    kind : str
        ``quotes``, ``bars``, ``factors`` or ``signals``.
    arg : str or None
        Factor name or strategy; ``None`` means all of them.
    """

    kind: str
    arg: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"

    @property
    def table(self) -> str:
        return TOPIC_TABLES[self.kind]

    def __str__(self) -> str:
        return self.name


def parse_topic(text: object) -> Topic:
    """Parse ``"factors:mom_20"`` and friends; raises :class:`TopicError` naming the text."""
    if not isinstance(text, str):
        raise TopicError(f"topic must be a string, got {type(text).__name__}")
    kind, sep, arg = text.partition(":")
    if kind not in TOPIC_TABLES:
        raise TopicError(f"unknown topic {text!r}: expected one of quotes, bars, factors[:name], signals[:strategy]")
    if not sep or (arg == "*" and kind in ("factors", "signals")):
        return Topic(kind)  # "factors:*" is another name for "factors" (every factor)
    if kind in ("quotes", "bars"):
        raise TopicError(f"topic {text!r}: {kind} takes no ':' argument")
    if not _ARG_RE.match(arg):
        raise TopicError(f"topic {text!r}: invalid {'factor name' if kind == 'factors' else 'strategy'} {arg!r}")
    return Topic(kind, arg)


def validate_symbol(symbol: object) -> str:
    """A ``CODE.REGION`` symbol or ``"*"``; raises :class:`TopicError` naming the value."""
    if symbol == "*":
        return "*"
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise TopicError(f"invalid symbol {symbol!r}: expected CODE.REGION such as AAPL.US, or '*'")
    return symbol


def check_topic_against_schema(topic: Topic, schema: pa.Schema) -> None:
    """Raise :class:`TopicError` when ``topic`` names a factor the table does not have."""
    if topic.kind == "factors" and topic.arg is not None and topic.arg not in schema.names:
        have = [n for n in schema.names if n not in ("ts", "symbol", "offset")]
        raise TopicError(f"unknown factor {topic.arg!r}; the factor table has {have}")


def project_rows(topic: Topic, rows: pa.Table) -> pa.Table:
    """The rows and columns of ``rows`` (a stream-table read with ``offset``) for ``topic``.

    The output starts with ``seq`` (the stream offset), then ``ts`` and ``symbol``, then
    the topic's payload columns.
    """
    if topic.kind == "signals" and topic.arg is not None:
        rows = rows.filter(pc.equal(rows.column("strategy"), topic.arg))
    payload = [n for n in rows.schema.names if n not in ("offset", "ts", "symbol")]
    if topic.kind == "factors" and topic.arg is not None:
        payload = [topic.arg]
    cols = [rows.column("offset"), rows.column("ts"), rows.column("symbol")] + [rows.column(n) for n in payload]
    return pa.table(cols, names=["seq", "ts", "symbol"] + payload)


def filter_symbols(rows: pa.Table, symbols: frozenset[str] | None) -> pa.Table:
    """Rows whose symbol is in ``symbols`` (``None`` keeps all)."""
    if symbols is None:
        return rows
    mask = pc.is_in(rows.column("symbol"), value_set=pa.array(sorted(symbols), pa.string()))
    return rows.filter(mask)


def group_by_symbol(symbols: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Stable grouping of row positions by symbol.

    Returns
    -------
    (names, order, bounds)
        ``order`` lists row positions symbol by symbol (sequence order kept inside a
        symbol); rows of ``names[k]`` are ``order[bounds[k]:bounds[k+1]]``.
    """
    arr = symbols.combine_chunks() if isinstance(symbols, pa.ChunkedArray) else symbols
    enc = pc.dictionary_encode(arr)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    names = enc.dictionary
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(names))
    bounds = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    return names, order, bounds
