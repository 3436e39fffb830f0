"""TradingNode: factor stream -> strategies -> signals -> risk -> order manager -> broker.

The glue between stream tables and the pure pieces. ``step()`` does one round: new quotes
(latest per symbol -- the broker and risk see a conflated view per step), new factor rows,
due VWAP slices, asynchronous broker events. The same node runs under a ``SimClock`` in a
backtest and a ``LiveClock`` live; only the broker differs (``"paper"`` or ``"fix"``).
"""

from __future__ import annotations

import json
from collections import Counter
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pyplatform.clock import Clock
from pyplatform.domain import Direction, Quote, Signal, asset_class_of, round_price
from pyplatform.domain.schemas import to_columns
from pyplatform.execution.matching import FillModel
from pyplatform.execution.messages import (
    CancelOrder, OrderFilled, OrderRejected, OrdType, Side, SubmitOrder, stop_order,
)
from pyplatform.execution.states import OrderStatus
from pyplatform.execution.oms import OrderManager
from pyplatform.execution.paper import PaperBroker
from pyplatform.execution.positions import to_decimal
from pyplatform.execution.vwap import SliceScheduler, vwap_slices
from pyplatform.risk.config import RiskConfig
from pyplatform.risk.manager import AccountSnapshot, RiskManager
from pyplatform.risk.market import MarketState
from pyplatform.risk.sizing import Sizer, lot_size_of
from pyplatform.risk.stops import StopPolicy
from pyplatform.strategies.base import Strategy, signals_to_batch

__all__ = ["TradingNode", "StepReport"]


@dataclass
class StepReport:
    signals: list[Signal] = field(default_factory=list)
    orders: list[SubmitOrder] = field(default_factory=list)
    refused: list = field(default_factory=list)  # RiskDecision
    events: list = field(default_factory=list)


class TradingNode:
    """One account trading a set of strategies.

    Parameters
    ----------
    settings : Settings, optional
        Data directory (journal, FIX session files) and the FIX port.
    tables : mapping, optional
        Stream tables by role: ``factors`` (input rows: ts, symbol, factor columns),
        ``quotes`` (input, ``QUOTES`` schema), ``signals`` (output, ``SIGNALS`` schema).
    clock : Clock
        Required: ``LiveClock()`` live, ``SimClock`` in a backtest (nothing else reads time).
    broker : "paper" | "fix" | object
        ``fix`` starts a FIX initiator: to ``fix_session`` (any venue: comp ids, host, port,
        reset policy; see ``pyplatform.execution.fix.session.parse_venue``) or, without it,
        to ``fix_port`` on loopback (the exchange simulator).
    aggression : float
        Limit price offset from the last trade for entries (0.002 = 0.2% through it).
    fix_session : FixSessionConfig, optional
    on_session_down : {"refuse", "queue"}
        While the broker's session is down, new orders are refused by risk (rule
        ``session_down``, with the session's own words), or queued and routed -- checked
        again -- after the next logon.
    on_sequence_reset : {"report", "follow"}
        Passed to ``FixBroker``: what to do when the venue resets its sequence numbers.
    fix_logon_wait_s : float
        How long construction waits for the first logon before giving up (TimeoutError,
        with everything it started stopped and the journal closed).
    oms, risk : OrderManager, RiskManager, optional
        Objects to compose instead of building them from ``journal``/``risk_config`` (a
        backtest's own risk policy, a recovered order manager); see
        ``pyplatform.execution.builder.build_trading_node`` for the settings-driven graph.
        The risk manager is attached to the order manager's :class:`MarketState`
        (``node.market``), so both read the same prices and positions.

    Attributes
    ----------
    market : MarketState
        Last quotes, prices and positions: the one copy the node, the order manager's
        position book, risk checks, sizing and stops all read. ``node.quotes``,
        ``node.risk.last_price`` and each position's ``mark`` are views of it.
    kill_file : Path, optional
        The file ``pyplatform trade kill`` writes (default: from ``settings``).
    sizer, stops : Sizer, StopPolicy, optional
        The sizing rule and stop policy of the risk manager the node builds (e.g.
        ``pyplatform.risk.all_in``, ``pyplatform.risk.NoStops()``); with ``risk=`` given,
        give them to that manager instead.
    """

    def __init__(self, settings=None, tables: Mapping[str, Any] | None = None, clock: Clock | None = None,
                 broker: str | Any = "paper", *, strategies: list[Strategy] | None = None,
                 risk_config: RiskConfig | None = None, account: str = "main", capital: float = 1_000_000,
                 fill_model: FillModel | None = None, journal: str | Path | None = None, fix_port: int | None = None,
                 aggression: float = 0.002, max_participation: float = 0.10, fsync: bool = True,
                 fix_session=None, on_session_down: str = "refuse", on_sequence_reset: str = "report",
                 fix_logon_wait_s: float = 10.0, oms: OrderManager | None = None,
                 risk: RiskManager | None = None, kill_file: str | Path | None = None,
                 sizer: Sizer | None = None, stops: StopPolicy | None = None) -> None:
        if on_session_down not in ("refuse", "queue"):
            raise ValueError(f"on_session_down must be 'refuse' or 'queue', got {on_session_down!r}")
        self.on_session_down = on_session_down
        self._held: list[SubmitOrder] = []
        self._logons_seen = 0
        if clock is None:
            # time is an input: a live node and a backtest differ in the clock they are handed,
            # so a node never picks the wall clock behind its caller's back
            raise ValueError("TradingNode needs a clock: LiveClock() to trade live, SimClock(...) in a backtest")
        self.clock = clock
        self.settings = settings
        self.tables = dict(tables or {})
        self.strategies = list(strategies or [])
        self.account = account
        self.capital = Decimal(str(capital))
        self.aggression = aggression
        self.max_participation = max_participation
        self._lock = threading.RLock()
        jpath = journal
        if jpath is None and settings is not None:
            jpath = settings.path("trading", account, "orders.journal")
        if settings is not None and getattr(settings, "fsync", "always") == "never":
            fsync = False  # PYPLATFORM_FSYNC=never: throwaway sessions; "batch"/"always" keep fsync per record
        if oms is not None:
            self.oms = oms
        else:
            self.oms = OrderManager.recover(jpath, fsync=fsync) if jpath is not None else OrderManager()
        # prices and positions live once, in the order manager's book; risk reads them there
        self.market: MarketState = self.oms.positions.market
        if risk is not None and (sizer is not None or stops is not None):
            raise ValueError("TradingNode: with risk= given, pass sizer/stops to that RiskManager")
        self.risk = risk if risk is not None else RiskManager(risk_config, self.clock, market=self.market,
                                                              sizer=sizer, stops=stops)
        if kill_file is not None:
            self.kill_file = Path(kill_file)
        else:
            self.kill_file = settings.path("trading", account, "kill.json") if settings is not None else None
        self._kill_seen: float | None = None
        self.slices = SliceScheduler()
        self._overnight_done: set[tuple[int, str]] = set()
        self.minute_volume: dict[str, float] = {}
        self._seq = 0
        if broker == "paper":
            self.broker = PaperBroker(self.clock, fill_model)
        elif broker == "fix":
            from pyplatform.execution.fix.initiator import FixBroker

            from pyplatform.execution.fix.session import FixSessionConfig

            base = settings.path("trading", account, "fix") if settings is not None else Path(str(jpath) + ".fix")
            if fix_session is None:
                port = fix_port or (settings.fix_port if settings is not None else None)
                if port is None:
                    raise ValueError("broker='fix' needs fix_session, fix_port or settings.fix_port")
                fix_session = FixSessionConfig(base, "initiator", port)
            broker_obj = FixBroker(config=fix_session, order_lookup=lambda cl: self.oms.orders[cl],
                                   on_event=self._on_async_event, clock=self.clock,
                                   on_sequence_reset=on_sequence_reset)
            try:
                self.broker = broker_obj.start(fix_logon_wait_s)  # a start that fails stops what it started
            except BaseException:
                if self.oms.journal is not None:
                    self.oms.journal.close()
                raise
        else:
            self.broker = broker
        self._subs = {}
        for role in ("factors", "quotes"):
            t = self.tables.get(role)
            if t is not None:
                from pyplatform.stream import OFFSET_ACKED

                # resume after the last acknowledged row: a restarted node neither skips nor repeats
                self._subs[role] = t.subscribe(f"trading-{account}-{role}", offset=OFFSET_ACKED)

    # ------------------------------------------------------------------ state
    def __getstate__(self) -> dict:
        # A backtest checkpoints the node between windows (``pyplatform.backtest.checkpoint``):
        # everything but the lock (and live subscriptions, which a backtest node never has)
        # is plain data. A live node's subscriptions resume from their acknowledged offsets.
        if self._subs:
            raise TypeError("a TradingNode subscribed to stream tables cannot be pickled; "
                            "a live node recovers from its journal instead")
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def risk(self) -> RiskManager:
        """The risk manager; one assigned here is attached to ``market`` first."""
        return self._risk

    @risk.setter
    def risk(self, manager: RiskManager) -> None:
        # a risk manager swapped in after construction (a backtest's sizing policy) must read
        # the node's prices and positions, not an empty state of its own
        manager.attach(self.market)
        self._risk = manager

    @property
    def quotes(self) -> dict[str, Quote]:
        """The latest quote per symbol (``market.quotes``)."""
        return self.market.quotes

    def snapshot(self) -> AccountSnapshot:
        with self._lock:
            return AccountSnapshot(self.account, self.equity(), self.market.holdings(self.account))

    def equity(self) -> Decimal:
        book = self.oms.positions
        total = Fraction(self.capital) + book.realised(self.account) + book.unrealised(self.account)
        return to_decimal(total, 2)

    # ------------------------------------------------------------------ inputs
    def on_quote(self, q: Quote) -> list:
        """One quote: marks, stops, the broker's matching."""
        with self._lock:
            last = self.market.on_quote(q)  # the quote, the last price and every position's mark
            stops = self.risk.on_trade(q.symbol, last, q.ts)
            events = self._apply_all(self.broker.on_quote(q))
        for stop in stops:
            self._seq += 1
            cmd = stop_order(stop, f"stop-{stop.kind}-{stop.symbol}-{stop.ts}-{self._seq}")
            events += self._route(cmd, StepReport())
        return events

    def on_signal(self, sig: Signal, report: StepReport | None = None) -> SubmitOrder | None:
        """Turn a signal into an order (sized by risk), check it and route it.

        Returns the order risk accepted (None: nothing to do, or refused -- see ``report``).
        """
        report = report or StepReport()
        last = self.market.price(sig.symbol)
        if last is None:
            return None
        self.cancel_symbol(sig.symbol, f"superseded by signal {sig.strategy} {sig.direction.name}")
        snap = self.snapshot()
        held = Decimal(snap.positions.get(sig.symbol, 0))
        if sig.direction is Direction.FLAT:
            target = Decimal(0)
        else:
            target = self.risk.size(self.account, sig.symbol, snap.equity, sig.strength) * int(sig.direction)
        delta = target - held
        if delta == 0:
            return None
        side = Side.BUY if delta > 0 else Side.SELL
        px = round_price(float(last) * (1 + int(side) * self.aggression), asset_class_of(sig.symbol))
        cmd = SubmitOrder(f"{sig.strategy}-{sig.symbol}-{sig.ts}", self.account, sig.symbol, side, abs(delta),
                          OrdType.LIMIT, px, ts=self.clock.now_ns(), reason=sig.reason)
        refused = len(report.refused)
        self._route(cmd, report)
        return None if len(report.refused) > refused else cmd

    def submit(self, cmd: SubmitOrder) -> StepReport:
        """Route a prepared order the way a signal's order goes: risk, journal, broker.

        Returns what happened (``refused`` holds the risk decision when it was refused).
        """
        report = StepReport()
        report.events += self._route(cmd, report)
        return report

    def cancel(self, client_order_id: str, reason: str = "") -> None:
        """Ask the venue to cancel an open order (also one it has not acknowledged yet).

        Raises
        ------
        UnknownOrder, IllegalTransition
            For an id never seen, or an order that is already closed or pending a request.
        SessionDown
            While the broker's session is down (the order stays as it was).
        """
        cmd = CancelOrder(client_order_id, self.clock.now_ns(), reason)
        down = self.session_down()
        if down is not None:
            from pyplatform.execution.fix import SessionDown

            raise SessionDown(down)
        with self._lock:
            self.oms.request_cancel(cmd)
        self._audit("order.cancel", client_order_id, {"reason": reason})
        events = self.broker.send(cmd)
        with self._lock:
            self._apply_all(events)

    def _audit(self, kind: str, subject: str, details: dict, outcome: str = "ok") -> None:
        # a live node (settings and a journal) records orders, risk refusals and the kill
        # switch in the audit log (docs/audit.md); a failure there is logged, not fatal
        if self.settings is None or self.oms.journal is None:
            return
        from pyplatform.audit import audit

        audit(kind, f"oms:{self.account}", subject, outcome, details, settings=self.settings,
              now_ns=self.clock.now_ns())

    def cancel_symbol(self, symbol: str, reason: str = "") -> int:
        """Cancel working orders and unreleased VWAP slices in ``symbol`` (a new signal
        supersedes them: the new order is sized against the position actually held)."""
        self.slices.cancel_symbol(symbol)
        n = 0
        if self.session_down() is not None:
            return 0  # a cancel cannot reach the venue; the new order is refused for the same reason
        for o in self.oms.open_orders(self.account, symbol):
            if o.status not in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                continue
            cmd = CancelOrder(o.client_order_id, self.clock.now_ns(), reason)
            with self._lock:
                self.oms.request_cancel(cmd)
            self._audit("order.cancel", o.client_order_id, {"reason": reason})
            events = self.broker.send(cmd)
            with self._lock:
                self._apply_all(events)
            n += 1
        return n

    def session_down(self) -> str | None:
        """Why the broker cannot take orders now (None: it can, or it has no session)."""
        probe = getattr(self.broker, "down_reason", None)
        return probe() if probe is not None else None

    def _route(self, cmd: SubmitOrder, report: StepReport) -> list:
        down = self.session_down()
        if down is not None and self.on_session_down == "queue":
            self._held.append(cmd)  # routed (and risk-checked again) after the next logon
            return []
        self.risk.session_down = down
        decision = self.risk.check(cmd, self.snapshot())
        if not decision.accepted:
            report.refused.append(decision)
            self._audit("risk.refused", cmd.client_order_id, {"rule": decision.rule, "reason": decision.reason,
                                                               "symbol": cmd.symbol}, outcome="refused")
            return []
        vol = self.minute_volume.get(cmd.symbol, 0.0)
        children = vwap_slices(cmd, vol, max_participation=self.max_participation,
                               lot=lot_size_of(cmd.symbol)) if vol else [cmd]
        if len(children) > 1:
            self.slices.add(children)
            return self._send_due(report)
        return self._send(cmd, report)

    def _send(self, cmd: SubmitOrder, report: StepReport) -> list:
        with self._lock:
            result = self.oms.submit(cmd)
        if not result.created:
            return []  # idempotent replay of an order already routed
        report.orders.append(cmd)
        self._audit("order.submit", cmd.client_order_id, {
            "symbol": cmd.symbol, "side": cmd.side.name, "quantity": str(cmd.quantity),
            "price": None if cmd.price is None else str(cmd.price), "type": cmd.order_type.value, "reason": cmd.reason})
        try:
            events = self.broker.send(cmd)  # not under the lock: FIX reports arrive on another thread
        except Exception as exc:  # the session dropped between the risk check and the send
            from pyplatform.execution.fix import SessionDown

            if not isinstance(exc, SessionDown):
                raise
            events = [OrderRejected(cmd.client_order_id, self.clock.now_ns(), f"not sent: {exc}")]
        with self._lock:
            return self._apply_all(events)

    def _send_due(self, report: StepReport) -> list:
        out = []
        for child in self.slices.due(self.clock.now_ns()):
            out += self._send(child, report)
        return out

    def _apply_all(self, events) -> list:
        applied = []
        events = list(events)
        try:
            # one wait for the journal covers the batch (a broker's accept and fill together)
            results = self.oms.apply_many(events)
        except BaseException:
            # the events before the failing one are applied and durable: the stops must see
            # their fills (re-reading a position no fill changed is harmless)
            for ev in events:
                order = self.oms.orders.get(self.oms.live_id(ev.client_order_id)) \
                    if isinstance(ev, OrderFilled) else None
                if order is not None:
                    self.risk.sync_position(order.account, order.symbol, ts=ev.ts)
            raise
        for ev, order in zip(events, results):
            if order is not None:
                applied.append(ev)
                if isinstance(ev, OrderFilled):
                    # the stops read the booked position from the shared state
                    self.risk.sync_position(order.account, order.symbol, ts=ev.ts)
        return applied

    def _on_async_event(self, event) -> None:
        with self._lock:
            self._apply_all([event])

    # ------------------------------------------------------------------ the loop
    def step(self) -> StepReport:
        """Consume new quotes and factor rows, route what they produce; returns what happened."""
        report = StepReport()
        self._check_kill_file()
        self._after_logon(report)
        qsub = self._subs.get("quotes")
        if qsub is not None:
            batch = qsub.poll()
            if batch is not None and batch.num_rows:
                for q in _latest_quotes(batch):
                    report.events += self.on_quote(q)
                qsub.ack()
        fsub = self._subs.get("factors")
        if fsub is not None:
            batch = fsub.poll()
            if batch is not None and batch.num_rows:
                signals = [s for strat in self.strategies for s in strat.on_batch(batch)]
                signals.sort(key=lambda s: (s.ts, s.symbol, s.strategy))
                if signals and "signals" in self.tables:
                    self.tables["signals"].append(signals_to_batch(signals))
                report.signals += signals
                for s in signals:
                    self.on_signal(s, report)
                fsub.ack()
        report.events += self._send_due(report)
        report.events += self._reduce_for_overnight(report)
        if hasattr(self.broker, "poll"):
            polled = self.broker.poll()
            with self._lock:
                report.events += self._apply_all(polled)
        return report

    def _after_logon(self, report: StepReport) -> None:
        """On each new logon: ask the venue about orders whose state we cannot know, and
        route orders held while the session was down."""
        logons = getattr(self.broker, "logons", None)
        if logons is None or logons == self._logons_seen or self.session_down() is not None:
            return
        self._logons_seen = logons
        self.reconcile_venue()
        held, self._held = self._held, []
        for cmd in held:
            report.events += self._route(cmd, report)

    def reconcile_venue(self) -> list[str]:
        """Ask the venue (OrderStatusRequest) about every order still pending an answer.

        A venue that cannot answer says so with a business reject, which the broker
        records as a ``reconcile`` notice naming the order (``status()["notices"]``).
        Returns the ids asked about.
        """
        ask = getattr(self.broker, "request_status", None)
        if ask is None:
            return []
        pending = (OrderStatus.PENDING_NEW, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)
        with self._lock:
            ids = [o.client_order_id for o in self.oms.open_orders(self.account) if o.status in pending]
        for cl in ids:
            ask(cl)
        return ids

    def _reduce_for_overnight(self, report: StepReport) -> list:
        """Near the session close, bring positions down to their overnight limits (once a day)."""
        out = []
        now = self.clock.now_ns()
        for sym, qty in self.risk.overnight_excess(self.snapshot(), now).items():
            key = (self.risk.trading_day(self.account, now), sym)
            if key in self._overnight_done:
                continue
            self._overnight_done.add(key)
            cmd = SubmitOrder(f"overnight-{sym}-{key[0]}", self.account, sym, Side.BUY if qty > 0 else Side.SELL,
                              abs(qty), OrdType.MARKET, ts=now, reason="reduce to the overnight position limit")
            out += self._route(cmd, report)
        return out

    def kill(self, mode: str = "halt", reason: str = "by command") -> None:
        """Throw (``halt``/``reduce_only``) or reset (``off``) the kill switch for all accounts."""
        if mode == "off":
            self.risk.reset_kill()
        else:
            self.risk.kill(mode, reason)
        self._audit("killswitch.release" if mode == "off" else "killswitch.engage", self.account,
                    {"mode": mode, "reason": reason})

    def _check_kill_file(self) -> None:
        # ``pyplatform trade kill`` writes this file; a running node picks it up on its next step
        if self.kill_file is None or not self.kill_file.exists():
            return
        mtime = self.kill_file.stat().st_mtime
        if mtime == self._kill_seen:
            return
        self._kill_seen = mtime
        data = json.loads(self.kill_file.read_text())
        self.kill(data.get("mode", "halt"), data.get("reason", "kill file"))

    def status(self) -> dict[str, Any]:
        """Positions, P&L and risk state as plain data (CLI, dashboards)."""
        snap = self.snapshot()
        mode, why = self.risk.kill_state(self.account)
        return {
            "account": self.account, "equity": str(snap.equity),
            "realised": str(to_decimal(self.oms.positions.realised(self.account), 2)),
            "unrealised": str(to_decimal(self.oms.positions.unrealised(self.account), 2)),
            "positions": [_snap(p)
                          for p in self.oms.positions.positions(self.account) if p.quantity],
            "open_orders": len(self.oms.open_orders(self.account)),
            "kill_switch": mode.name, "kill_reason": why,
            "daily_loss_hit": self.risk.loss_limit_hit(self.account),
            "decisions": len(self.risk.decisions),
            "refused": sum(1 for d in self.risk.decisions if not d.accepted),
            "refused_by_rule": dict(Counter(d.rule for d in self.risk.decisions if not d.accepted)),
            "session": self.broker.status() if hasattr(self.broker, "status") else None,
            "held_orders": len(self._held),
            "notices": [f"{n.kind}: {n.text}" for n in self.oms.notices[-10:]],
            "late_fills": {o.client_order_id: str(o.late_fill_qty) for o in self.oms.orders.values()
                           if o.late_fill_qty},
            "duplicates_dropped": len(self.oms.duplicates),
        }

    def close(self) -> None:
        self.broker.close()
        if self.oms.journal is not None:
            self.oms.journal.close()


def _snap(p) -> dict:
    s = p.snapshot(4)
    return {"symbol": s.symbol, "quantity": str(s.quantity), "avg_price": str(s.avg_price),
            "realised": str(s.realised), "unrealised": str(s.unrealised)}


def _latest_quotes(batch) -> list[Quote]:
    """The last quote per symbol in a batch (vectorised pick, then one object per symbol)."""
    cols = to_columns(batch)
    sym = np.asarray(cols["symbol"]).astype(str)
    rev = sym[::-1]
    _, first_in_rev = np.unique(rev, return_index=True)
    idx = np.sort(len(sym) - 1 - first_in_rev)
    names = ("ts", "symbol", "last", "open", "high", "low", "volume", "turnover", "bid", "ask", "bid_size", "ask_size")
    out = []
    for i in idx:
        kw = {n: cols[n][i] for n in names if n in cols}
        kw["ts"], kw["symbol"] = int(kw["ts"]), str(kw["symbol"])
        for n in names[2:]:
            if n in kw:
                kw[n] = float(kw[n])
        out.append(Quote(**kw))
    return out
