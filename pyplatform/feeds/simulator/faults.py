"""Fault injection for the exchange simulator (typed, frozen plan + pure message transforms)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FaultPlan", "MALFORMED", "mangle"]

#: Bad messages the simulator can inject, one of each kind the client must survive:
#: not JSON, truncated JSON, a wrong field type, a JSON array, an unknown message type,
#: a tick with a missing price.
MALFORMED: tuple[bytes, ...] = (
    b"this is not json",
    b'{"code":1,"data":{"s":"AAPL.US","ld":225.1,',
    b'{"code":1,"data":{"s":"AAPL.US","ld":"abc","v":1,"t":1,"type":"tick"}}',
    b"[1,2,3]",
    b'{"code":1,"data":{"s":"AAPL.US","type":"weather","temp":21}}',
    b'{"code":1,"data":{"s":"AAPL.US","v":100,"t":1731689407000,"type":"tick"}}',
)


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and when (counts are data messages sent on one connection).

    Parameters
    ----------
    reject_auth : bool
        Answer every connection's token with ``auth failed`` and close it.
    drop_after : int or None
        Drop the TCP connection (no close frame) after this many data messages.
    max_drops : int
        How many connections are dropped in total (then the simulator behaves).
    stall_after : int or None
        After this many data messages, stop sending *and reading* (no pongs, no WebSocket
        pong frames) for ``stall_s`` seconds: a silent half-dead connection.
    max_stalls : int
        How many connections are stalled in total.
    malformed_every, duplicate_every, reorder_every : int
        Every N-th data message: insert a malformed message after it / send it twice /
        swap it with the one before. 0 disables.
    handshake_status : int or None
        Refuse the WebSocket upgrade with this HTTP status (401 and 403 are what a gateway
        answers a bad or unentitled key with) on ``handshake_paths`` (empty: every path).
    limit_paths : tuple of str
        Connections on these paths get ``exceeding the maximum subscription limit`` for any
        subscription (one endpoint of several failing, as a plan limit per class does).
    """

    reject_auth: bool = False
    drop_after: int | None = None
    max_drops: int = 1
    stall_after: int | None = None
    stall_s: float = 2.0
    max_stalls: int = 1
    malformed_every: int = 0
    duplicate_every: int = 0
    reorder_every: int = 0
    handshake_status: int | None = None
    handshake_paths: tuple[str, ...] = ()
    limit_paths: tuple[str, ...] = ()

    def refuses_handshake(self, path: str) -> int | None:
        """The HTTP status the upgrade on ``path`` is refused with, or ``None``."""
        if self.handshake_status is None:
            return None
        return self.handshake_status if not self.handshake_paths or path in self.handshake_paths else None


def mangle(messages: list[bytes], rows: np.ndarray, plan: FaultPlan, counter: int
           ) -> tuple[list[bytes], np.ndarray]:
    """Apply duplicate / reorder / malformed faults to one outgoing batch.

    ``rows`` maps each message to the tick row it carries (-1 for non-tick messages) and is
    transformed alongside, so the simulator can record exactly which ticks it sent.
    ``counter`` is the number of data messages already sent on the connection, so the
    faults fire every N messages across batches.
    """
    m = len(messages)
    if not m:
        return messages, rows
    pos = counter + np.arange(1, m + 1)
    order = np.arange(m)
    if plan.reorder_every and m > 1:
        swap = np.flatnonzero((pos % plan.reorder_every == 0) & (np.arange(m) > 0))
        swap = swap[np.r_[True, np.diff(swap) > 1]] if len(swap) else swap  # no chained swaps
        order[swap], order[swap - 1] = order[swap - 1], order[swap].copy()
    if plan.duplicate_every:
        order = np.repeat(order, 1 + (pos % plan.duplicate_every == 0))
    out = [messages[i] for i in order]
    out_rows = rows[order]
    if plan.malformed_every:
        at = np.flatnonzero((counter + np.arange(1, len(out) + 1)) % plan.malformed_every == 0)
        for k, i in enumerate(at[::-1]):  # insert from the back so indices stay valid
            out.insert(int(i) + 1, MALFORMED[(counter + k) % len(MALFORMED)])
            out_rows = np.insert(out_rows, int(i) + 1, -1)
    return out, out_rows
