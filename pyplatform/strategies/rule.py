"""The rule-based strategy kind: entry/exit conditions in the factor language, plus stops.

This is what a drafted strategy (``pp.draft_strategy(text).to_config()``) runs as, in the
backtest, the live node and the app -- anything that builds strategies from a
:class:`~pyplatform.strategies.base.StrategyConfig`::

    {"kind": "rule", "name": "draft",
     "rules": {"entry_long": "cross(mavg(close, 5), mavg(close, 20)) == 1",
               "exit_long": "cross(mavg(close, 5), mavg(close, 20)) == -1"},
     "params": {"position_pct": 0.02, "stop_loss_points": 100},
     "symbols": ["EURUSD.GB"]}

Semantics, per symbol, evaluated on each bar's close (the signal then fills like any other):

* an entry condition that is true (non-zero and not NaN) opens that side -- also from the
  other side (a reversal); entries win over exits on the same bar;
* an exit condition closes its own side only (``exit_long`` does nothing while short);
* stops, measured from the close of the bar that entered: ``stop_loss_pct`` /
  ``stop_loss_points`` (a point is the symbol's price step, 1e-5 for forex), ``take_profit_pct``
  and ``trailing_stop_pct`` (from the best close since entry) go flat when touched by a close;
* the position is flat until the first entry.

All of it is vectorised over a batch: the state after each row is "the side of the last
entry, unless an exit of that side or a stop came after it", which cumulative sums over
per-entry segments compute without a per-row loop. The side, entry price and best price
are carried between batches, so any batching gives the same signals (the backtest's
look-ahead audit checks this).

Sizing (``position_pct``, ``risk_pct``) is not the strategy's business -- it travels in
``params`` so that :func:`risk_overrides` can turn it into the risk limits of the run.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pyplatform.domain.instruments import PRICE_DECIMALS, asset_class_of
from pyplatform.strategies.base import Strategy

__all__ = ["RuleStrategy", "RULE_KEYS", "rule_class", "risk_overrides"]

RULE_KEYS = ("entry_long", "exit_long", "entry_short", "exit_short")
_STOP_KEYS = ("stop_loss_pct", "stop_loss_points", "take_profit_pct", "trailing_stop_pct")
_CLASSES: dict[str, type] = {}


class RuleStrategy(Strategy):
    """Entry/exit expressions and stops (see the module docstring). Build with :func:`rule_class`."""

    KIND = "rule"
    INITIAL = np.int8(0)  # flat until the first entry, so the first entry is a signal
    PARAMS = {"position_pct": 0.0, "risk_pct": 0.0, "stop_loss_pct": 0.0, "stop_loss_points": 0.0,
              "take_profit_pct": 0.0, "trailing_stop_pct": 0.0}
    RULES: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str | None = None, symbols=None, **params: float) -> None:
        if not self.RULES:
            raise ValueError("rule strategy: no rules; build it with rule_class(rules) or "
                             "{'kind': 'rule', 'rules': {'entry_long': ...}}")
        super().__init__(name=name, symbols=symbols, **params)
        self._carry: dict[str, tuple[int, float, float]] = {}  # symbol -> (side, entry px, best px)

    def validate(self, p):
        for k in ("position_pct", "risk_pct"):
            if not 0 <= p[k] <= 1:
                raise ValueError(f"rule: {k} must be in [0, 1] (a fraction of equity), got {p[k]}")
        for k in _STOP_KEYS:
            if p[k] < 0:
                raise ValueError(f"rule: {k} must be >= 0 (0 switches it off), got {p[k]}")
        for k in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct"):
            if p[k] >= 1:
                raise ValueError(f"rule: {k} is a fraction (0.02 = 2%), got {p[k]}")

    # the rules are the factors; "px" is the close the stops are measured on
    @property
    def FACTORS(self) -> dict[str, str]:  # type: ignore[override]
        out = dict(self.RULES)
        out["px"] = "close"
        return out

    def factors(self) -> dict[str, str]:
        return {self.column(k): t for k, t in self.FACTORS.items()}

    def describe(self, prev: int, new: int, row: dict[str, float]) -> str:
        what = {1: "enter long", -1: "enter short", 0: "flat"}[new]
        return f"rule: {what} at close {row.get('px', float('nan')):.6g}"

    # ------------------------------------------------------------------ the state machine
    def _regime_rows(self, f: dict[str, np.ndarray], symbols: np.ndarray) -> np.ndarray:
        n = len(symbols)
        px = f["px"]

        def on(key: str) -> np.ndarray:
            v = f.get(key)
            return np.zeros(n, dtype=bool) if v is None else np.nan_to_num(v, nan=0.0) != 0

        el, xl, es, xs = on("entry_long"), on("exit_long"), on("entry_short"), on("exit_short")
        uniq, code = np.unique(symbols, return_inverse=True)
        order = np.argsort(code, kind="stable")  # per symbol, time order kept
        c = code[order]
        m = len(order)
        first = np.ones(m, dtype=bool)
        first[1:] = c[1:] != c[:-1]
        carry = [self._carry.get(str(s), (0, np.nan, np.nan)) for s in uniq]
        c_side = np.array([x[0] for x in carry], dtype=np.int64)
        c_entry = np.array([x[1] for x in carry], dtype=float)
        c_best = np.array([x[2] for x in carry], dtype=float)
        p = px[order]
        entry_dir = np.where(el[order], 1, np.where(es[order], -1, 0))
        # segments start at each symbol's first row (seeded by the carry) and at every entry
        seg_start = first | (entry_dir != 0)
        seg = np.cumsum(seg_start) - 1
        starts = np.flatnonzero(seg_start)
        s_first = first[starts]
        s_dir = np.where(s_first & (entry_dir[starts] == 0), c_side[c[starts]], entry_dir[starts])
        s_entry = np.where(s_first & (entry_dir[starts] == 0), c_entry[c[starts]], p[starts])
        side0, entry = s_dir[seg], s_entry[seg]
        # best close since entry (for the trailing stop), seeded by the carried one
        s_best0 = np.where(s_first & (entry_dir[starts] == 0), c_best[c[starts]], p[starts])
        signed = np.where(side0 >= 0, p, -p)
        seed = np.where(side0[starts] >= 0, s_best0, -s_best0)
        seeded = signed.copy()
        seeded[starts] = np.fmax(signed[starts], seed)
        best_signed = _segment_cummax(np.nan_to_num(seeded, nan=-np.inf), seg)
        best = np.where(side0 >= 0, best_signed, -best_signed)
        # an exit of the open side or a stop touched closes the segment from that row on
        close = ((side0 == 1) & xl[order]) | ((side0 == -1) & xs[order])
        close |= self._stops_hit(side0, p, entry, best, symbols[order])
        close &= ~(entry_dir != 0) | (side0 == 0)  # the entering row itself is not closed by its exits
        closed = _segment_cumsum(close.astype(np.int64), seg) > 0
        after = np.where(closed, 0, side0).astype(np.int8)
        # carry the last row of each symbol into the next batch
        last = np.ones(m, dtype=bool)
        last[:-1] = first[1:]
        for k in np.flatnonzero(last):
            sym = str(uniq[c[k]])
            self._carry[sym] = (int(after[k]), float(entry[k]) if after[k] else np.nan,
                                float(best[k]) if after[k] else np.nan)
        out = np.empty(n, dtype=np.int8)
        out[order] = after
        return out

    def _stops_hit(self, side, px, entry, best, symbols) -> np.ndarray:
        p = self.params
        hit = np.zeros(len(px), dtype=bool)
        with np.errstate(invalid="ignore"):
            move = np.where(side == 1, px - entry, np.where(side == -1, entry - px, 0.0))  # profit per unit
            if p["stop_loss_pct"]:
                hit |= (side != 0) & (move <= -p["stop_loss_pct"] * entry)
            if p["stop_loss_points"]:
                step = _price_step(symbols)
                hit |= (side != 0) & (move <= -p["stop_loss_points"] * step)
            if p["take_profit_pct"]:
                hit |= (side != 0) & (move >= p["take_profit_pct"] * entry)
            if p["trailing_stop_pct"]:
                give = np.where(side == 1, best - px, px - best)
                hit |= (side != 0) & (give >= p["trailing_stop_pct"] * np.abs(best))
        return hit

    def state(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self._carry.items()}

    def restore(self, state: dict[str, Any]) -> None:
        self._carry = {str(k): (int(v[0]), float(v[1]), float(v[2])) for k, v in state.items()}
        self._last = {k: v[0] for k, v in self._carry.items()}


def _segment_cumsum(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    return pd.Series(x).groupby(seg).cumsum().to_numpy()


def _segment_cummax(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    return pd.Series(x).groupby(seg).cummax().to_numpy()


def _price_step(symbols: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(symbols, return_inverse=True)
    steps = np.array([10.0 ** -PRICE_DECIMALS[asset_class_of(str(s))] for s in uniq])
    return steps[inv]


def rule_class(rules: dict[str, str]) -> type[RuleStrategy]:
    """The :class:`RuleStrategy` subclass for ``rules`` (cached; recreating an instance from
    its type -- as the backtest's fresh copies do -- keeps the rules)."""
    from pyplatform.factors import FactorError, parse

    bad = sorted(set(rules) - set(RULE_KEYS))
    if bad:
        raise ValueError(f"rule strategy: unknown rule(s) {bad} (known: {list(RULE_KEYS)})")
    if not (rules.get("entry_long") or rules.get("entry_short")):
        raise ValueError("rule strategy: needs an entry_long or entry_short condition")
    clean = {}
    for k in RULE_KEYS:
        if rules.get(k):
            try:
                clean[k] = str(parse(rules[k]))
            except FactorError as exc:
                raise ValueError(f"rule strategy: {k} does not parse:\n{exc}") from None
    key = hashlib.sha1(repr(sorted(clean.items())).encode()).hexdigest()[:12]
    if key not in _CLASSES:
        _CLASSES[key] = type(f"RuleStrategy_{key}", (RuleStrategy,), {"RULES": clean})
    return _CLASSES[key]


def risk_overrides(params: dict[str, float], symbols=()) -> dict:
    """Risk-limit fields (``AccountLimits``) that give a rule strategy its sizing.

    ``position_pct`` caps each position's value at that share of equity (the concentration
    limit, which the risk sizing already honours), so "2% position per trade" is a 2%
    position; ``risk_pct`` is the equity lost if the stop is hit (``risk_per_trade``, with
    ``stop_loss_pct`` as the stop distance). Forex symbols are sized in micro lots (1,000)
    rather than standard lots, or a 2% position of a million would round to nothing.
    """
    out: dict = {}
    if params.get("position_pct"):
        out["concentration"] = float(params["position_pct"])
    if params.get("risk_pct"):
        out["risk_per_trade"] = float(params["risk_pct"])
    if params.get("stop_loss_pct"):
        out["fixed_stop"] = float(params["stop_loss_pct"])
    fx = [s for s in symbols or () if s.endswith(".GB")]
    if fx:
        out["symbols"] = {s: {"lot_size": 1000.0} for s in fx}
    return out
