"""The paper broker: the matching engine driven by a clock (quotes and clock in, reports out)."""

from __future__ import annotations

from pyplatform.clock import Clock
from pyplatform.domain import Quote
from pyplatform.execution.matching import FillModel, MatchingEngine

__all__ = ["PaperBroker"]


class PaperBroker:
    """Fills orders against live quotes with a configurable :class:`FillModel`.

    Every method returns the order events it produced, synchronously; nothing runs in the
    background, so a backtest under a ``SimClock`` is deterministic.

    Parameters
    ----------
    clock : Clock
        Stamps commands (``send``) and decides when delayed commands arrive.
    fill_model : FillModel, optional
    """

    name = "paper"

    def __init__(self, clock: Clock, fill_model: FillModel | None = None, venue: str = "PAPER") -> None:
        self.clock = clock
        self.engine = MatchingEngine(fill_model, venue=venue)

    def send(self, cmd) -> list:
        """Send a SubmitOrder / CancelOrder / ReplaceOrder; returns the events due now."""
        return self.engine.send(cmd, self.clock.now_ns())

    def on_quote(self, quote: Quote) -> list:
        return self.engine.on_quote(quote)

    def poll(self) -> list:
        """Events that became due as the clock moved (commands delayed by latency)."""
        return self.engine.advance(self.clock.now_ns())

    def end_of_day(self) -> list:
        return self.engine.expire_day_orders(self.clock.now_ns())

    def order_reports(self, client_order_id: str) -> list | None:
        return self.engine.order_reports(client_order_id)

    def close(self) -> None:
        pass
