"""Plain-JSON encoding of order commands and events (for the journal and reports).

Decimals travel as strings (exact), enums as their values; decoding names the record type
and field on bad input instead of guessing.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation
from typing import Any

from pyplatform.execution.messages import COMMAND_TYPES, EVENT_TYPES, OrdType, Side, TimeInForce

__all__ = ["encode", "decode", "MESSAGE_TYPES"]

MESSAGE_TYPES: dict[str, type] = {**COMMAND_TYPES, **EVENT_TYPES}
_DECIMALS = {"quantity", "price", "last_qty", "last_px", "leaves_qty"}
_ENUMS = {"side": Side, "order_type": OrdType, "tif": TimeInForce}


def encode(msg) -> dict[str, Any]:
    """A message as a JSON-able dict with a ``type`` key."""
    out: dict[str, Any] = {"type": type(msg).__name__}
    for f in dataclasses.fields(msg):
        v = getattr(msg, f.name)
        if isinstance(v, Decimal):
            v = str(v)
        elif isinstance(v, (Side,)):
            v = int(v)
        elif isinstance(v, (OrdType, TimeInForce)):
            v = v.value
        out[f.name] = v
    return out


def decode(record: dict[str, Any]):
    """The message a dict from :func:`encode` describes.

    Raises
    ------
    ValueError
        Naming the type or field that is wrong.
    """
    kind = record.get("type")
    cls = MESSAGE_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown message type {kind!r} (known: {', '.join(sorted(MESSAGE_TYPES))})")
    kwargs = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for k, v in record.items():
        if k == "type":
            continue
        if k not in names:
            raise ValueError(f"{kind}: unknown field {k!r}")
        if k in _DECIMALS and v is not None:
            try:
                v = Decimal(v)
            except (InvalidOperation, TypeError):
                raise ValueError(f"{kind}.{k}: not a decimal: {v!r}") from None
        elif k in _ENUMS:
            v = _ENUMS[k](v)
        kwargs[k] = v
    return cls(**kwargs)
