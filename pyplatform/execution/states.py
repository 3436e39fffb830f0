"""The order lifecycle as a transition table.

Code consults :data:`TRANSITIONS`; ``docs/trading.md`` renders it (``render_markdown``). A
pair that is not in the table is an illegal transition and raises
:class:`IllegalTransition` -- an order manager that shrugs at an impossible report hides
the bug that produced it.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["OrderStatus", "EventKind", "TRANSITIONS", "PREVIOUS", "IllegalTransition",
           "next_status", "TERMINAL", "render_markdown"]


class OrderStatus(str, Enum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    PENDING_REPLACE = "pending_replace"
    REPLACED = "replaced"


class EventKind(str, Enum):
    """What happened to an order, as the table sees it (a fill splits by leaves quantity)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACE_REQUESTED = "replace_requested"
    REPLACED = "replaced"
    REPLACE_REJECTED = "replace_rejected"
    EXPIRED = "expired"


#: Marker target: go back to the status the order had before the pending request.
PREVIOUS = "previous"

S, E = OrderStatus, EventKind

#: (status, event) -> next status. Anything absent is illegal.
TRANSITIONS: dict[tuple[OrderStatus, EventKind], OrderStatus | str] = {
    (S.PENDING_NEW, E.ACCEPTED): S.NEW,
    (S.PENDING_NEW, E.REJECTED): S.REJECTED,
    # Some venues report an immediate fill without a separate acknowledgement.
    (S.PENDING_NEW, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PENDING_NEW, E.FILL): S.FILLED,
    # FIX lets a cancel chase an order the venue has not acknowledged yet (OrdStatus 6 from A).
    (S.PENDING_NEW, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.NEW, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.NEW, E.FILL): S.FILLED,
    (S.NEW, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.NEW, E.REPLACE_REQUESTED): S.PENDING_REPLACE,
    (S.NEW, E.CANCELLED): S.CANCELLED,  # unsolicited (IOC remainder, venue cancel)
    (S.NEW, E.EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.REPLACE_REQUESTED): S.PENDING_REPLACE,
    (S.PARTIALLY_FILLED, E.CANCELLED): S.CANCELLED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    # Fills race cancels and replaces: the order keeps waiting for the answer.
    (S.PENDING_CANCEL, E.PARTIAL_FILL): S.PENDING_CANCEL,
    # the acknowledgement or refusal of an order whose cancel was sent before the ack
    (S.PENDING_CANCEL, E.ACCEPTED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.REJECTED): S.REJECTED,
    (S.PENDING_CANCEL, E.FILL): S.FILLED,
    (S.PENDING_CANCEL, E.CANCELLED): S.CANCELLED,
    (S.PENDING_CANCEL, E.CANCEL_REJECTED): PREVIOUS,
    (S.PENDING_CANCEL, E.EXPIRED): S.EXPIRED,
    (S.PENDING_REPLACE, E.PARTIAL_FILL): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, E.FILL): S.FILLED,
    (S.PENDING_REPLACE, E.REPLACED): S.REPLACED,
    (S.PENDING_REPLACE, E.REPLACE_REJECTED): PREVIOUS,
    (S.PENDING_REPLACE, E.CANCELLED): S.CANCELLED,
    (S.PENDING_REPLACE, E.EXPIRED): S.EXPIRED,
    # Late fills: an execution that crossed the cancel (or the expiry) on the wire really
    # happened at the venue, so it is applied -- the position must match the venue's -- and
    # the order stays closed, recording how much it filled past its cancel (``late_fill_qty``).
    (S.CANCELLED, E.PARTIAL_FILL): S.CANCELLED,
    (S.CANCELLED, E.FILL): S.CANCELLED,
    (S.EXPIRED, E.PARTIAL_FILL): S.EXPIRED,
    (S.EXPIRED, E.FILL): S.EXPIRED,
}

#: Closed statuses: no command applies to them and no event moves them to another status
#: (a replaced order lives on under its new client order id). Only late fills still land on
#: a cancelled or expired order, which stays where it is.
TERMINAL = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED, S.REPLACED})


class IllegalTransition(RuntimeError):
    """An event that the order's current status does not allow."""

    def __init__(self, client_order_id: str, status: OrderStatus, kind: EventKind) -> None:
        allowed = sorted(k.value for (s, k) in TRANSITIONS if s is status)
        super().__init__(
            f"order {client_order_id!r}: illegal transition {kind.value!r} from {status.value!r} "
            f"(allowed: {', '.join(allowed) or 'none, the status is terminal'})"
        )
        self.client_order_id, self.status, self.kind = client_order_id, status, kind


def next_status(client_order_id: str, status: OrderStatus, kind: EventKind,
                previous: OrderStatus | None = None) -> OrderStatus:
    """The status after ``kind`` happens to an order in ``status``.

    Raises
    ------
    IllegalTransition
        If the table has no entry for ``(status, kind)``.
    """
    try:
        target = TRANSITIONS[(status, kind)]
    except KeyError:
        raise IllegalTransition(client_order_id, status, kind) from None
    if target == PREVIOUS:
        if previous is None:
            raise IllegalTransition(client_order_id, status, kind)
        return previous
    return target  # type: ignore[return-value]


def render_markdown() -> str:
    """The transition table as a Markdown table (rows: status, columns: event)."""
    kinds = list(EventKind)
    lines = ["| status \\ event | " + " | ".join(k.value for k in kinds) + " |",
             "|---|" + "---|" * len(kinds)]
    for st in OrderStatus:
        cells = []
        for k in kinds:
            t = TRANSITIONS.get((st, k))
            cells.append("" if t is None else (t if isinstance(t, str) and t == PREVIOUS else t.value))
        lines.append(f"| **{st.value}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)
