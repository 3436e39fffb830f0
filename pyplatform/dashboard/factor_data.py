"""Inputs of the factor page: a factor over a universe, evaluated with ``pyplatform.research``.

Values come from the factor language's batch compiler over daily bars read from the
history store; the evaluation (rank IC, decay, quantile returns, turnover, correlation) is
:mod:`pyplatform.research.evaluation`, the same functions a notebook calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

__all__ = ["FactorData", "FactorResult"]


@dataclass(frozen=True)
class FactorResult:
    """One factor evaluated over one universe."""

    name: str
    universe: str
    values: pd.Series
    evaluation: object  # pyplatform.research.evaluation.FactorEvaluation
    correlation: pd.DataFrame


class FactorData:
    """Evaluate library factors over universes, caching recent results.

    Parameters
    ----------
    load_daily : callable
        ``load_daily(symbols) -> DataFrame`` of daily bars indexed by ``(datetime, symbol)``.
    universes : dict
        Universe name -> list of symbols.
    library : dict
        Factor name -> expression.
    horizons : tuple of int
        Forward-return horizons in days.
    """

    def __init__(self, load_daily: Callable[[list[str]], pd.DataFrame], universes: dict[str, list[str]],
                 library: dict[str, str], horizons: tuple[int, ...] = (1, 5, 10), quantiles: int = 5,
                 max_correlated: int = 6) -> None:
        if not universes:
            raise ValueError("FactorData needs at least one universe")
        self.load_daily = load_daily
        self.universes = universes
        self.library = library
        self.horizons = horizons
        self.quantiles = quantiles
        self.max_correlated = max_correlated
        self._cache: OrderedDict[tuple, FactorResult] = OrderedDict()
        self._lock = threading.Lock()

    def _values(self, frame: pd.DataFrame, name: str) -> pd.Series:
        from pyplatform.factors import compile_batch, parse

        if name not in self.library:
            raise KeyError(f"factor {name!r} is not in the library ({len(self.library)} factors)")
        out = compile_batch(parse(self.library[name]))(frame)
        return pd.Series(out, index=frame.index, name=name).astype(float)

    def evaluate(self, name: str, universe: str) -> FactorResult:
        """Values, evaluation and correlation with other library factors (cached)."""
        from pyplatform.research.evaluation import evaluate, factor_correlation

        key = (name, universe)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if universe not in self.universes:
            raise KeyError(f"universe {universe!r} unknown; choose one of {sorted(self.universes)}")
        frame = self.load_daily(self.universes[universe]).sort_index()
        if frame.empty:
            raise ValueError(f"no daily bars for universe {universe!r}")
        values = self._values(frame, name)
        prices = frame["close"].unstack("symbol")
        # a floor of names per date (5, or the whole universe when smaller) keeps dates with a
        # handful of names -- crypto weekends in a mixed universe -- out of the IC chart
        ev = evaluate(values.dropna(), prices, horizons=self.horizons, quantiles=self.quantiles, name=name,
                      min_names=max(2, min(5, prices.shape[1])))
        others = [n for n in self.library if n != name][: self.max_correlated - 1]
        series = {name: values}
        for other in others:
            try:
                series[other] = self._values(frame, other)
            except Exception:  # noqa: BLE001 - a factor that fails on this universe is left out of the matrix
                continue
        corr = factor_correlation({k: v.dropna() for k, v in series.items()}) if len(series) > 1 else pd.DataFrame()
        result = FactorResult(name, universe, values, ev, corr)
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > 16:
                self._cache.popitem(last=False)
        return result
