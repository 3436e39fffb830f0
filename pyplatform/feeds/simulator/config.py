"""Typed, frozen configuration of the exchange simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyplatform.feeds.simulator.faults import FaultPlan
from pyplatform.feeds.simulator.tape import DEFAULT_SYMBOLS

__all__ = ["SimulatorConfig"]


@dataclass(frozen=True)
class SimulatorConfig:
    """How the local exchange behaves.

    Parameters
    ----------
    host, port : str, int
        Where to listen (port 0 picks a free port; see ``ExchangeSimulator.port``).
    symbols : tuple of str
        The universe (platform spelling ``AAPL.US``); subscriptions name them ``AAPL$US``.
    token : str or None
        The token a client must send in the ``token`` handshake header (and REST header).
        ``None`` accepts any non-empty token.
    rate : float
        Ticks per second over the whole universe (up to a few hundred thousand).
    period_s : float
        Publishing cycle: each cycle generates ``rate * period_s`` ticks and sends them
        to every subscriber in one write, so high rates cost few event-loop iterations.
    quotes, depth : bool
        Also push a ``quote`` / ``depth`` message per symbol that traded in a cycle.
    send_seq : bool
        Add the per-symbol sequence ``sq`` to tick messages (a simulator extension that
        iTick does not send; clients then detect gaps and duplicates by sequence).
    frame_batch : int
        Messages per WebSocket frame. 1 is iTick's framing; more joins messages with
        newlines into one frame (the client accepts both) for throughput experiments.
    max_subscriptions : int
        Symbols one connection may subscribe to; beyond it the answer is iTick's
        ``exceeding the maximum subscription limit``.
    sessions : bool
        Respect trading sessions per asset class (off: everything trades at any hour).
    history_s : float
        Seconds of tape kept to answer REST K-line requests.
    record : bool
        Keep every tick sent on every connection (``ExchangeSimulator.sent_ticks()``):
        the oracle tests compare the client's table against.
    max_pending : int
        Cycles queued for one connection before it is dropped as a slow consumer, as iTick
        does.
    faults : FaultPlan
        Fault injection.
    start_prices : tuple of (symbol, price)
        First prices (others get plausible defaults); see :meth:`from_universe`.
    """

    host: str = "127.0.0.1"
    port: int = 0
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    token: str | None = None
    rate: float = 1000.0
    period_s: float = 0.005
    quotes: bool = True
    depth: bool = True
    depth_levels: int = 5
    send_seq: bool = True
    frame_batch: int = 1
    max_subscriptions: int = 1000
    sessions: bool = True
    seed: int = 7
    history_s: float = 3600.0
    record: bool = False
    max_pending: int = 2000
    max_burst_s: float = 0.25
    faults: FaultPlan = field(default_factory=FaultPlan)
    start_prices: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_universe(cls, n_symbols: int, seed: int = 0, indices: int = 0, **overrides) -> SimulatorConfig:
        """Symbols and first prices from the synthetic market (``pyplatform.data``)."""
        from pyplatform.data import make_universe, symbol_params

        universe = make_universe(n_symbols, seed=seed, indices=indices)
        prices = symbol_params(universe, seed=seed)["price0"]
        return cls(symbols=tuple(i.symbol for i in universe),
                   start_prices=tuple((s, float(p)) for s, p in prices.items()), seed=seed, **overrides)

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError(f"rate must be >= 0 ticks/s, got {self.rate}")
        if self.period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {self.period_s}")
        if self.frame_batch < 1:
            raise ValueError(f"frame_batch must be >= 1, got {self.frame_batch}")
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")
