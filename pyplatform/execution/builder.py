"""Settings -> the trading object graph: paths, journal, kill file, risk, broker, FIX session.

``TradingNode`` composes the objects it is handed (order manager, risk manager, broker,
clock); this module is the one place that turns configuration into those objects, so the
node itself needs no settings and a backtest, a test or a live process each build exactly
the graph they mean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pyplatform.clock import Clock
from pyplatform.execution.matching import FillModel
from pyplatform.execution.node import TradingNode
from pyplatform.execution.oms import OrderManager
from pyplatform.execution.paper import PaperBroker
from pyplatform.risk.config import RiskConfig
from pyplatform.risk.manager import RiskManager

__all__ = ["build_trading_node", "trading_paths"]


def trading_paths(settings, account: str) -> dict[str, Path]:
    """Where an account's journal, kill file and FIX session files live under ``data_dir``."""
    return {"journal": settings.path("trading", account, "orders.journal"),
            "kill_file": settings.path("trading", account, "kill.json"),
            "fix": settings.path("trading", account, "fix")}


def build_trading_node(settings, clock: Clock, *, broker: str = "paper", venue: str | None = None,
                       tables: Mapping[str, Any] | None = None, account: str = "main", strategies=None,
                       risk_config: RiskConfig | None = None, capital: float = 1_000_000,
                       journal: str | Path | None = None, fill_model: FillModel | None = None,
                       on_session_down: str = "refuse", on_sequence_reset: str = "report",
                       logon_wait_s: float = 10.0, **session_overrides) -> TradingNode:
    """A ready :class:`TradingNode` for ``account``, built from ``settings``.

    Parameters
    ----------
    settings : Settings
        ``data_dir`` (journal, kill file, FIX store), ``fsync``, ``fix_port``.
    clock : Clock
        Required, as for the node.
    broker : {"paper", "fix"}
    venue : str, optional
        With ``broker="fix"``: a quickfix session file or ``host:port``; without it the
        session goes to ``settings.fix_port`` on loopback (the exchange simulator).
    session_overrides
        ``sender_comp_id``, ``target_comp_id``, ``reset_on_logon``, ... for the FIX session.

    Raises
    ------
    ValueError
        For an unknown broker or a malformed venue (naming it).
    TimeoutError
        When the FIX session does not log on within ``logon_wait_s``; everything started
        is stopped and the journal closed.
    """
    if clock is None:
        raise ValueError("build_trading_node needs a clock")
    if broker not in ("paper", "fix"):
        raise ValueError(f"broker must be 'paper' or 'fix', got {broker!r}")
    if venue is not None and broker != "fix":
        raise ValueError("venue needs broker='fix'")
    if venue is None and broker == "fix":
        venue = getattr(settings, "fix_venue", None)  # PYPLATFORM_FIX_VENUE
    paths = trading_paths(settings, account)
    fsync = getattr(settings, "fsync", "always") != "never"
    oms = OrderManager.recover(journal or paths["journal"], fsync=fsync)
    risk = RiskManager(risk_config, clock, market=oms.positions.market)  # one state for OMS and risk
    fix_broker = None
    try:
        if broker == "paper":
            broker_obj = PaperBroker(clock, fill_model)
        else:
            from pyplatform.execution.fix.initiator import FixBroker
            from pyplatform.execution.fix.session import FixSessionConfig, parse_venue

            if venue is not None:
                cfg = parse_venue(venue, paths["fix"], **session_overrides)
            else:
                cfg = FixSessionConfig(paths["fix"], "initiator", settings.fix_port, **session_overrides)
            broker_obj = fix_broker = FixBroker(config=cfg, clock=clock, order_lookup=lambda cl: oms.orders[cl],
                                                on_sequence_reset=on_sequence_reset)
        node = TradingNode(None, tables, clock, broker_obj, strategies=strategies, account=account,
                           capital=capital, oms=oms, risk=risk, kill_file=paths["kill_file"],
                           on_session_down=on_session_down)
        if fix_broker is not None:
            fix_broker.on_event = node._on_async_event  # reports apply under the node's lock
            fix_broker.start(logon_wait_s)
    except BaseException:
        if oms.journal is not None:
            oms.journal.close()
        raise
    return node
