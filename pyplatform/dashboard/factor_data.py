"""Inputs of the factor page: a factor over a universe, evaluated with ``pyplatform.research``.

Values come from the factor language's batch compiler over daily bars read from the
history store; the evaluation (rank IC, decay, quantile returns, turnover, correlation) is
:mod:`pyplatform.research.evaluation`, the same functions a notebook calls.

A first evaluation of a factor over a long history takes seconds, so the page runs it as a
background job (:meth:`FactorData.start`) and polls :meth:`FactorData.job` for its progress
(stage and fraction done) instead of blocking behind a spinner; results are cached per
(factor, universe), so going back to a factor, or comparing it with others, is instant.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

__all__ = ["FactorData", "FactorResult", "Job"]


@dataclass(frozen=True)
class FactorResult:
    """One factor evaluated over one universe."""

    name: str
    universe: str
    values: pd.Series
    evaluation: object  # pyplatform.research.evaluation.FactorEvaluation
    correlation: pd.DataFrame


@dataclass
class Job:
    """Progress of one background evaluation: ``fraction`` in [0, 1], the current ``stage``,
    and, once finished, ``done`` with either ``result`` or ``error``."""

    name: str
    universe: str
    fraction: float = 0.0
    stage: str = "queued"
    done: bool = False
    result: FactorResult | None = None
    error: str | None = None


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
        self._jobs: dict[tuple, Job] = {}
        self._frames: OrderedDict[str, pd.DataFrame] = OrderedDict()  # universe -> daily bars

    def cached(self, name: str, universe: str) -> FactorResult | None:
        """The cached result of (name, universe), or None."""
        with self._lock:
            return self._cache.get((name, universe))

    def start(self, name: str, universe: str) -> Job:
        """Start evaluating (name, universe) in a background thread (once); returns its job.

        A cached result gives a finished job at once. Unknown names or universes fail the
        job with the reason rather than raising in the page's callback.
        """
        key = (name, universe)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (job.done and job.error):
                return job
            hit = self._cache.get(key)
            job = Job(name, universe)
            if hit is not None:
                job.fraction, job.stage, job.done, job.result = 1.0, "cached", True, hit
                return job
            self._jobs[key] = job

        def run() -> None:
            try:
                def report(fraction: float, stage: str) -> None:
                    job.fraction, job.stage = fraction, stage
                job.result = self.evaluate(name, universe, progress=report)
                job.fraction, job.stage = 1.0, "done"
            except Exception as exc:  # noqa: BLE001 - reported on the page, named
                job.error = f"{type(exc).__name__}: {exc}"
            finally:
                job.done = True
                with self._lock:
                    if job.error is None:
                        self._jobs.pop(key, None)  # the cache holds the result from now on

        threading.Thread(target=run, daemon=True, name=f"factor-{name}-{universe}").start()
        return job

    def job(self, name: str, universe: str) -> Job | None:
        """The running (or failed) job of (name, universe); a finished one when cached."""
        with self._lock:
            job = self._jobs.get((name, universe))
            hit = self._cache.get((name, universe))
        if job is not None:
            return job
        if hit is not None:
            return Job(name, universe, 1.0, "cached", True, hit)
        return None

    def _daily(self, universe: str) -> pd.DataFrame:
        # one read of a universe's bars serves every factor evaluated on it
        with self._lock:
            if universe in self._frames:
                self._frames.move_to_end(universe)
                return self._frames[universe]
        frame = self.load_daily(self.universes[universe]).sort_index()
        with self._lock:
            self._frames[universe] = frame
            while len(self._frames) > 4:
                self._frames.popitem(last=False)
        return frame

    def _values(self, frame: pd.DataFrame, name: str) -> pd.Series:
        from pyplatform.factors import compile_batch, parse

        if name not in self.library:
            raise KeyError(f"factor {name!r} is not in the library ({len(self.library)} factors)")
        out = compile_batch(parse(self.library[name]))(frame)
        return pd.Series(out, index=frame.index, name=name).astype(float)

    def evaluate(self, name: str, universe: str, progress: Callable[[float, str], None] | None = None) -> FactorResult:
        """Values, evaluation and correlation with other library factors (cached).

        Parameters
        ----------
        progress : callable, optional
            ``progress(fraction, stage)`` called between the stages (reading bars, computing
            values, rank IC and quantiles, correlation with each other factor).
        """
        from pyplatform.research.evaluation import evaluate, factor_correlation

        say = progress or (lambda f, s: None)
        key = (name, universe)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if universe not in self.universes:
            raise KeyError(f"universe {universe!r} unknown; choose one of {sorted(self.universes)}")
        say(0.02, f"reading daily bars of {len(self.universes[universe])} symbols")
        frame = self._daily(universe)
        if frame.empty:
            raise ValueError(f"no daily bars for universe {universe!r}")
        say(0.15, f"computing {name} on {len(frame):,} bars")
        values = self._values(frame, name)
        prices = frame["close"].unstack("symbol")
        say(0.35, "rank IC, decay, quantile returns, turnover")
        # a floor of names per date (5, or the whole universe when smaller) keeps dates with a
        # handful of names -- crypto weekends in a mixed universe -- out of the IC chart
        ev = evaluate(values.dropna(), prices, horizons=self.horizons, quantiles=self.quantiles, name=name,
                      min_names=max(2, min(5, prices.shape[1])))
        others = [n for n in self.library if n != name][: self.max_correlated - 1]
        series = {name: values}
        for i, other in enumerate(others):
            say(0.7 + 0.28 * i / max(len(others), 1), f"correlation with {other} ({i + 1}/{len(others)})")
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
