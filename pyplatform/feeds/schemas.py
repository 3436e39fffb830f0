"""Arrow schemas owned by the feeds package.

``TICKS``/``QUOTES`` come from :mod:`pyplatform.domain.schemas`; depth is ours: one row per
book level (long format), so a depth message of 5 bids and 5 asks becomes 10 rows that
share ``ts`` and ``symbol``. ``side`` is +1 for bids and -1 for asks.
"""

from __future__ import annotations

import pyarrow as pa

from pyplatform.domain.schemas import QUOTES, TICKS

__all__ = ["TICKS", "QUOTES", "DEPTH", "WIRE_TICKS", "WIRE_SCHEMA"]

DEPTH = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("side", pa.int8()), ("position", pa.int32()),
    ("price", pa.float64()), ("volume", pa.float64()), ("orders", pa.float64()),
])

#: Ticks as decoded from the wire: the table columns plus the per-symbol sequence number
#: (``-1`` when the source sends none; iTick does not, the simulator does as ``sq``).
WIRE_TICKS = TICKS.append(pa.field("seq", pa.int64()))

_LEVEL = pa.struct([("po", pa.int64()), ("p", pa.float64()), ("v", pa.float64()), ("o", pa.float64())])

#: What the batch decoder asks pyarrow's JSON reader for: every documented field of every
#: message shape, typed, so a wrong type fails the (fast) batch and falls back to per-line.
WIRE_SCHEMA = pa.schema([
    ("code", pa.int64()), ("msg", pa.string()), ("resAc", pa.string()),
    ("data", pa.struct([
        ("s", pa.string()), ("ld", pa.float64()), ("o", pa.float64()), ("h", pa.float64()),
        ("l", pa.float64()), ("t", pa.int64()), ("v", pa.float64()), ("tu", pa.float64()),
        ("ts", pa.int64()), ("sq", pa.int64()), ("type", pa.string()), ("params", pa.string()),
        ("a", pa.list_(_LEVEL)), ("b", pa.list_(_LEVEL)),
    ])),
])
