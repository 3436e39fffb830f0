"""Factor evaluation: forward returns, rank IC, IC decay, quantile returns, turnover, coverage.

Pure functions over the canonical frame: a factor is a ``Series`` indexed by
``(datetime, symbol)``; prices are a wide ``DataFrame`` (datetime x symbol). Every function
is vectorised with pandas group-bys (no per-date Python loops) and follows alphalens'
definitions so results can be cross-checked against alphalens-reloaded:

* forward return over ``h`` periods: ``prices.ffill().pct_change(h).shift(-h)``;
* rank IC: Spearman correlation across symbols on each date;
* quantiles: ``pd.qcut`` of the factor on each date into ``q`` equal-count buckets (1..q);
* quantile returns: mean forward return per quantile, demeaned per date by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "forward_returns", "clean_factor", "rank_ic", "ic_summary", "ic_decay", "quantize",
    "quantile_returns", "quantile_turnover", "rank_autocorrelation", "coverage",
    "factor_correlation", "evaluate", "FactorEvaluation",
]


def _check_factor(factor: pd.Series) -> pd.Series:
    if not isinstance(factor, pd.Series) or factor.index.nlevels != 2:
        raise TypeError("factor must be a Series indexed by (datetime, symbol)")
    return factor.rename("factor").astype(float)


def forward_returns(prices: pd.DataFrame, horizons=(1, 5, 10)) -> pd.DataFrame:
    """Forward simple returns for each horizon, long format.

    Parameters
    ----------
    prices : DataFrame
        Wide prices, datetime index, one column per symbol.
    horizons : sequence of int
        Periods (rows of ``prices``) ahead.

    Returns
    -------
    DataFrame
        Indexed by (datetime, symbol), one column per horizon named ``"{h}p"``.
    """
    if not horizons or any(int(h) <= 0 for h in horizons):
        raise ValueError(f"horizons must be positive integers, got {horizons!r}")
    filled = prices.sort_index().ffill()
    cols = {}
    for h in sorted(int(h) for h in horizons):
        cols[f"{h}p"] = filled.pct_change(periods=h, fill_method=None).shift(-h).stack(future_stack=True)
    out = pd.DataFrame(cols)
    out.index.names = ["datetime", "symbol"]
    return out


def clean_factor(factor: pd.Series, fwd: pd.DataFrame) -> pd.DataFrame:
    """Join a factor with its forward returns, dropping rows where any value is missing."""
    factor = _check_factor(factor)
    fwd = fwd.copy()
    fwd.index.names = factor.index.names = ["datetime", "symbol"]
    data = fwd.join(factor, how="inner").replace([np.inf, -np.inf], np.nan).dropna()
    return data


def _spearman_by_date(data: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Spearman correlation of columns x and y within each date, vectorised."""
    g = data.groupby(level="datetime")
    rx = g[x].rank()
    ry = g[y].rank()
    dx = rx - rx.groupby(level="datetime").transform("mean")
    dy = ry - ry.groupby(level="datetime").transform("mean")
    num = (dx * dy).groupby(level="datetime").sum()
    den = np.sqrt((dx * dx).groupby(level="datetime").sum() * (dy * dy).groupby(level="datetime").sum())
    ic = num / den.replace(0.0, np.nan)
    return ic


def rank_ic(data: pd.DataFrame) -> pd.DataFrame:
    """Rank IC per date and horizon from a :func:`clean_factor` frame."""
    horizons = [c for c in data.columns if c != "factor"]
    return pd.DataFrame({h: _spearman_by_date(data, "factor", h) for h in horizons})


def ic_summary(ic: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, information ratio, t-statistic and p-value of an IC series per horizon."""
    rows = {}
    for h in ic.columns:
        s = ic[h].dropna()
        n = len(s)
        mean, std = s.mean(), s.std(ddof=1)
        t, p = stats.ttest_1samp(s, 0.0) if n > 1 else (np.nan, np.nan)
        rows[h] = {"ic_mean": mean, "ic_std": std, "ir": mean / std if std else np.nan,
                   "t_stat": float(t), "p_value": float(p), "n_dates": n,
                   "hit_rate": float((s > 0).mean()) if n else np.nan}
    return pd.DataFrame(rows).T


def ic_decay(factor: pd.Series, prices: pd.DataFrame, horizons=(1, 2, 5, 10, 20)) -> pd.Series:
    """Mean rank IC as a function of the horizon (non-cumulative decay curve)."""
    data = clean_factor(factor, forward_returns(prices, horizons))
    return rank_ic(data).mean().rename("ic_mean")


def quantize(factor: pd.Series, quantiles: int = 5) -> pd.Series:
    """Equal-count quantile (1..q) of the factor within each date."""
    if quantiles < 2:
        raise ValueError("quantiles must be >= 2")
    factor = _check_factor(factor).dropna()

    def _q(x: pd.Series) -> pd.Series:
        return pd.qcut(x, quantiles, labels=False, duplicates="drop") + 1

    return factor.groupby(level=0, group_keys=False).transform(_q).rename("quantile")


def quantile_returns(data: pd.DataFrame, quantiles: int = 5, demeaned: bool = True) -> pd.DataFrame:
    """Mean forward return per factor quantile (rows) and horizon (columns)."""
    horizons = [c for c in data.columns if c != "factor"]
    q = quantize(data["factor"], quantiles)
    rets = data[horizons]
    if demeaned:
        rets = rets - rets.groupby(level="datetime").transform("mean")
    return rets.groupby(q.reindex(rets.index)).mean().rename_axis("quantile")


def quantile_turnover(factor: pd.Series, quantiles: int = 5) -> pd.DataFrame:
    """Share of each quantile's names on a date that were not in it on the previous date."""
    q = quantize(factor, quantiles)
    wide = q.unstack("symbol")
    out = {}
    for k in range(1, quantiles + 1):
        member = wide == k
        prev = member.shift(1)
        new = (member & ~prev.fillna(False).astype(bool)).sum(axis=1)
        count = member.sum(axis=1)
        t = new / count.replace(0, np.nan)
        t.iloc[0] = np.nan
        out[k] = t
    return pd.DataFrame(out)


def rank_autocorrelation(factor: pd.Series, lag: int = 1) -> pd.Series:
    """Spearman correlation of each date's factor ranks with those ``lag`` dates earlier."""
    wide = _check_factor(factor).unstack("symbol").rank(axis=1)
    prev = wide.shift(lag)
    a = wide.sub(wide.mean(axis=1), axis=0)
    b = prev.sub(prev.mean(axis=1), axis=0)
    mask = a.notna() & b.notna()
    a, b = a.where(mask), b.where(mask)
    return ((a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))).replace(0, np.nan)


def coverage(factor: pd.Series, universe: pd.Index | None = None) -> pd.Series:
    """Share of the universe with a finite factor value on each date."""
    factor = _check_factor(factor)
    n = len(universe) if universe is not None else factor.index.get_level_values("symbol").nunique()
    ok = np.isfinite(factor)
    return ok.groupby(level=0).sum() / n


def factor_correlation(factors: dict[str, pd.Series]) -> pd.DataFrame:
    """Mean cross-sectional Spearman correlation between factors (a square matrix)."""
    names = list(factors)
    frame = pd.DataFrame({n: _check_factor(factors[n]) for n in names}).dropna()
    ranks = frame.groupby(level=0).rank()
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            c = _spearman_by_date(ranks, a, b).mean()
            out.loc[a, b] = out.loc[b, a] = c
    return out


@dataclass(frozen=True)
class FactorEvaluation:
    """All evaluation results for one factor; renders as HTML in Jupyter."""

    name: str
    ic: pd.DataFrame
    summary: pd.DataFrame
    decay: pd.Series
    quantile_returns: pd.DataFrame
    spread: pd.Series
    turnover: pd.DataFrame
    autocorrelation: pd.Series
    coverage: pd.Series
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-friendly summary (attached to published factors)."""
        s = self.summary.replace({np.nan: None})
        return {
            "name": self.name,
            "ic": {h: {k: (None if v is None else float(v)) for k, v in row.items()} for h, row in s.iterrows()},
            "decay": {k: float(v) for k, v in self.decay.dropna().items()},
            "spread": {k: float(v) for k, v in self.spread.dropna().items()},
            "turnover": float(np.nanmean(self.turnover.to_numpy())) if self.turnover.size else None,
            "coverage": float(self.coverage.mean()) if len(self.coverage) else None,
        }

    def _repr_html_(self) -> str:
        return (f"<h4>Factor evaluation: {self.name}</h4>"
                f"<b>Rank IC</b>{self.summary.to_html(float_format='%.4f')}"
                f"<b>Quantile returns (demeaned)</b>{self.quantile_returns.to_html(float_format='%.5f')}"
                f"<p>mean turnover {np.nanmean(self.turnover.to_numpy()):.3f}, "
                f"mean coverage {self.coverage.mean():.3f}</p>")


def evaluate(factor: pd.Series, prices: pd.DataFrame, horizons=(1, 5, 10), quantiles: int = 5,
             name: str = "factor") -> FactorEvaluation:
    """Evaluate a factor against prices: IC, decay, quantile returns and spread, turnover, coverage."""
    factor = _check_factor(factor)
    fwd = forward_returns(prices, horizons)
    data = clean_factor(factor, fwd)
    if data.empty:
        raise ValueError(f"factor {name!r} has no rows overlapping the prices' forward returns")
    ic = rank_ic(data)
    qr = quantile_returns(data, quantiles)
    spread = (qr.iloc[-1] - qr.iloc[0]).rename("top_minus_bottom")
    decay_h = sorted(set(list(horizons) + [1, 2, 5, 10, 20]))
    decay = rank_ic(clean_factor(factor, forward_returns(prices, decay_h))).mean()
    return FactorEvaluation(
        name=name, ic=ic, summary=ic_summary(ic), decay=decay, quantile_returns=qr, spread=spread,
        turnover=quantile_turnover(data["factor"], quantiles),
        autocorrelation=rank_autocorrelation(data["factor"]), coverage=coverage(factor),
    )
