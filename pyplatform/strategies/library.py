"""The shipped strategies: dual moving-average crossover, z-score mean reversion, momentum."""

from __future__ import annotations

import numpy as np

from pyplatform.strategies.base import KEEP, Strategy, StrategyConfig

__all__ = ["DualMACrossover", "ZScoreMeanReversion", "Momentum", "STRATEGIES", "build"]


class DualMACrossover(Strategy):
    """Golden cross (fast MA crosses above slow) buys, death cross sells.

    Only a *cross* fires: the regime is the sign of ``fast - slow`` and a signal needs a
    previous opposite regime, so a trend that stays above never triggers twice. Equal MAs
    and warm-up rows (NaN) keep the previous regime.
    """

    KIND = "ma_cross"
    PARAMS = {"fast": 5.0, "slow": 20.0}
    FACTORS = {"fast": "mavg(close, {fast})", "slow": "mavg(close, {slow})"}

    def validate(self, p):
        if not 1 <= p["fast"] < p["slow"]:
            raise ValueError(f"ma_cross: need 1 <= fast < slow, got fast={p['fast']}, slow={p['slow']}")

    def regime(self, f):
        d = f["fast"] - f["slow"]
        out = np.full(len(d), KEEP, dtype=np.int8)
        out[d > 0] = 1
        out[d < 0] = -1
        return out

    # strength stays 1: at the moment of a cross the MAs are nearly equal, so their gap says
    # nothing about conviction (scaling by it would size every crossover to zero)

    def describe(self, prev, new, row):
        kind = "golden cross" if new > 0 else "death cross"
        return f"{kind}: fast MA {row['fast']:.6g} {'above' if new > 0 else 'below'} slow MA {row['slow']:.6g}"


class ZScoreMeanReversion(Strategy):
    """Buy when price is ``entry`` standard deviations below its mean, sell when above;
    go flat when the z-score comes back inside ``exit`` (hysteresis in between)."""

    KIND = "zscore"
    PARAMS = {"window": 20.0, "entry": 2.0, "exit": 0.5}
    FACTORS = {"z": "(close - mavg(close, {window})) / mstd(close, {window})"}

    def validate(self, p):
        if not 0 <= p["exit"] < p["entry"]:
            raise ValueError(f"zscore: need 0 <= exit < entry, got exit={p['exit']}, entry={p['entry']}")
        if p["window"] < 2:
            raise ValueError(f"zscore: window must be >= 2, got {p['window']}")

    def regime(self, f):
        z = f["z"]
        out = np.full(len(z), KEEP, dtype=np.int8)
        out[z <= -self.params["entry"]] = 1
        out[z >= self.params["entry"]] = -1
        out[np.abs(z) <= self.params["exit"]] = 0
        return out

    def strength(self, f):
        return np.nan_to_num(np.abs(f["z"]) / (2 * self.params["entry"]), nan=0.0)

    def describe(self, prev, new, row):
        what = {1: "oversold: buy", -1: "overbought: sell", 0: "back to the mean: flat"}[new]
        return f"z-score {row['z']:.3f} {what}"


class Momentum(Strategy):
    """Rate of change over ``window`` bars: above ``threshold`` long, below minus it short,
    flat in between."""

    KIND = "momentum"
    PARAMS = {"window": 20.0, "threshold": 0.02}
    FACTORS = {"roc": "close / move(close, {window}) - 1"}

    def validate(self, p):
        if p["threshold"] < 0 or p["window"] < 1:
            raise ValueError(f"momentum: need window >= 1 and threshold >= 0, got {p}")

    def regime(self, f):
        r = f["roc"]
        t = self.params["threshold"]
        out = np.full(len(r), KEEP, dtype=np.int8)
        out[np.abs(r) <= t] = 0
        out[r > t] = 1
        out[r < -t] = -1
        return out

    def strength(self, f):
        return np.nan_to_num(np.abs(f["roc"]) / (2 * self.params["threshold"] or 1.0), nan=0.0)

    def describe(self, prev, new, row):
        return f"momentum {row['roc']:+.4%} over the window: {'long' if new > 0 else 'short' if new < 0 else 'flat'}"


STRATEGIES: dict[str, type[Strategy]] = {c.KIND: c for c in (DualMACrossover, ZScoreMeanReversion, Momentum)}


def build(config: StrategyConfig | dict) -> Strategy:
    """A strategy from its configuration (``kind`` picks the class; ``"rule"`` takes ``rules``)."""
    if isinstance(config, dict):
        config = StrategyConfig(**config)
    if config.kind == "rule":
        from pyplatform.strategies.rule import rule_class

        return rule_class(dict(config.rules))(name=config.name or None, symbols=config.symbols, **config.params)
    if config.rules:
        raise ValueError(f"strategy kind {config.kind!r} takes no rules (only kind 'rule' does)")
    try:
        cls = STRATEGIES[config.kind]
    except KeyError:
        raise ValueError(f"unknown strategy kind {config.kind!r} (known: {sorted(STRATEGIES) + ['rule']})") from None
    return cls(name=config.name or None, symbols=config.symbols, **config.params)
