"""Put a trading node's state on the Live page.

``TradingNode.status()`` (``pyplatform.execution.node``) returns positions, P&L and the risk
state as plain data; :func:`push_node_status` hands that to a :class:`LiveBuffer`. The demo (or
any process running a node next to the app) calls it on its own cadence.
"""

from __future__ import annotations

from pyplatform.dashboard.live_buffer import LiveBuffer

__all__ = ["push_node_status"]


def _f(x) -> float:
    # TradingNode.status() renders Decimals as strings, and a missing value as "None"
    return float(x) if x not in (None, "", "None") else 0.0


def push_node_status(buffer: LiveBuffer, status: dict, now_ns: int) -> None:
    """Positions, a P&L point and the risk state of one ``TradingNode.status()`` snapshot.

    P&L is realised + unrealised; the kill switch is engaged for any mode but ``OFF``.
    """
    positions = [{"symbol": p["symbol"], "qty": _f(p.get("quantity")), "avg_price": _f(p.get("avg_price")),
                  "unrealized_pnl": _f(p.get("unrealised")), "realized_pnl": _f(p.get("realised"))}
                 for p in status.get("positions", [])]
    if positions:
        buffer.on_positions(positions)
    buffer.on_pnl(now_ns, _f(status.get("realised")) + _f(status.get("unrealised")))
    mode = str(status.get("kill_switch", "OFF"))
    risk = {"kill_switch": mode != "OFF", "kill_mode": mode, "reason": status.get("kill_reason") or "",
            "daily loss limit hit": bool(status.get("daily_loss_hit")),
            "orders refused": f"{status.get('refused', 0)} of {status.get('decisions', 0)} decisions",
            "limits": status.get("limits") or {}}
    buffer.on_risk(risk)
