"""Factor evaluation: forward returns, rank IC, IC decay, quantile returns, turnover, coverage.

Pure functions over the canonical frame: a factor is a ``Series`` indexed by
``(datetime, symbol)``; prices are a wide ``DataFrame`` (datetime x symbol). Every function
is vectorised with NumPy/pandas group-bys (no per-date Python loop) and follows alphalens'
definitions so results can be cross-checked against alphalens-reloaded:

* forward return over ``h`` periods, on each symbol's **own** trading calendar: the close
  ``h`` of that symbol's own rows ahead over today's close (``calendar="own"``, the
  default). On a grid where every symbol trades on every row this is exactly alphalens'
  ``prices.ffill().pct_change(h).shift(-h)`` (``calendar="grid"``); on a mixed grid
  (24/7 crypto beside stocks) the grid version carries Friday's stock price onto Saturday,
  so every Friday return would be 0 and "5p" would mean five calendar rows -- hence the
  default;
* rank IC: Spearman correlation across symbols on each date, on dates with at least
  ``min_names`` names (alphalens has no such floor; a weekend with two crypto names is noise);
* quantiles: the equal-count buckets ``pd.qcut`` makes on each date (1..q), computed from
  ranks in one vectorised pass (dates with tied values, where ``qcut`` merges edges, fall
  back to ``qcut`` itself);
* quantile returns, named as alphalens names them: ``mean_return_by_quantile`` is the mean
  over dates of each date's mean forward return per quantile (alphalens'
  ``mean_return_by_quantile``), ``pooled_return_by_quantile`` the mean over all rows of a
  quantile; both demeaned per date by default. They agree when every date has the same
  number of names per quantile and differ otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "MIN_NAMES", "forward_returns", "pooled_quantile_returns", "min_names_filter", "clean_factor", "rank_ic", "ic_summary", "ic_decay", "quantize",
    "quantile_returns", "quantile_turnover", "rank_autocorrelation", "coverage",
    "factor_correlation", "evaluate", "FactorEvaluation",
]


#: Default floor of names per date below which a date is left out of cross-sectional statistics.
MIN_NAMES = 5


def _check_factor(factor: pd.Series) -> pd.Series:
    if not isinstance(factor, pd.Series) or factor.index.nlevels != 2:
        raise TypeError("factor must be a Series indexed by (datetime, symbol)")
    return factor.rename("factor").astype(float)


def forward_returns(prices: pd.DataFrame, horizons=(1, 5, 10), calendar: str = "own") -> pd.DataFrame:
    """Forward simple returns for each horizon, long format.

    Parameters
    ----------
    prices : DataFrame
        Wide prices, datetime index, one column per symbol; NaN where a symbol does not trade.
    horizons : sequence of int
        Periods ahead: rows of the symbol's own trading calendar (``calendar="own"``) or rows
        of ``prices`` (``calendar="grid"``).
    calendar : {"own", "grid"}
        ``"own"``: each symbol steps over its own rows only (a stock's Friday return is the
        Friday-to-Monday move even when 24/7 crypto puts a Saturday row in the grid).
        ``"grid"``: alphalens' convention, forward-filled over every row of ``prices``.

    Returns
    -------
    DataFrame
        Indexed by (datetime, symbol), one column per horizon named ``"{h}p"``; only rows
        where the symbol has a price.
    """
    if not horizons or any(int(h) <= 0 for h in horizons):
        raise ValueError(f"horizons must be positive integers, got {horizons!r}")
    if calendar not in ("own", "grid"):
        raise ValueError(f"calendar must be 'own' or 'grid', got {calendar!r}")
    hs = sorted({int(h) for h in horizons})
    prices = prices.sort_index()
    if calendar == "grid":
        filled = prices.ffill()
        cols = {f"{h}p": filled.pct_change(periods=h, fill_method=None).shift(-h).stack(future_stack=True)
                for h in hs}
        out = pd.DataFrame(cols)
    else:
        # Long format keeps only the rows a symbol trades on; a per-symbol shift then
        # walks that symbol's own sessions (one vectorised group-by shift per horizon).
        long = prices.stack(future_stack=True).dropna()
        long.index.names = ["datetime", "symbol"]
        long = long.sort_index(level=["symbol", "datetime"])
        g = long.groupby(level="symbol", sort=False)
        out = pd.DataFrame({f"{h}p": g.shift(-h) / long - 1.0 for h in hs}).sort_index()
    out.index.names = ["datetime", "symbol"]
    return out


def min_names_filter(data: pd.DataFrame, min_names: int = MIN_NAMES) -> pd.DataFrame:
    """Rows of ``data`` on dates that have at least ``min_names`` symbols."""
    if min_names < 1:
        raise ValueError(f"min_names must be >= 1, got {min_names}")
    n = data.groupby(level="datetime")[data.columns[0]].transform("size")
    return data[n.to_numpy() >= min_names]


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
    """Equal-count quantile (1..q) of the factor within each date, as ``pd.qcut`` assigns it.

    ``qcut`` takes the ``k/q`` sample quantiles of the date's values as edges (NumPy's
    linear interpolation), drops duplicate edges, and gives a value the number of distinct
    edges below it (at least 1). Here the edges of every date are interpolated at once
    from the date-sorted values, with the same float arithmetic NumPy uses (so an edge that
    rounds onto a data value does so here too), and each row counts the distinct edges below
    it: ``q + 1`` vectorised passes over all rows instead of one ``qcut`` call per date.
    """
    if quantiles < 2:
        raise ValueError("quantiles must be >= 2")
    factor = _check_factor(factor).dropna()
    if factor.empty:
        return factor.rename("quantile")
    dates = factor.index.get_level_values(0)
    codes, _ = pd.factorize(dates)
    vals = factor.to_numpy()
    order = np.lexsort((vals, codes))  # by date, then value
    sorted_vals = vals[order]
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    start, n = starts[codes], counts[codes]
    # the float points qcut hands to np.quantile: linspace, nudged up where k/q is not
    # representable in base 2 (pandas >= 2.2 does this so k/q lands on the right sample)
    points = np.linspace(0, 1, quantiles + 1)
    np.putmask(points, quantiles * points != np.arange(quantiles + 1), np.nextafter(points, 1))
    below = np.zeros(len(vals), dtype=np.int64)
    prev_edge = None
    for p in points:
        vi = (n - 1) * p
        lo = np.floor(vi).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        gamma = vi - lo
        a, b = sorted_vals[start + lo], sorted_vals[start + hi]
        diff = b - a
        # NumPy's _lerp: a + diff*t, but b - diff*(1-t) where t >= 0.5
        edge = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
        distinct = np.ones(len(vals), dtype=bool) if prev_edge is None else edge != prev_edge
        below += distinct & (edge < vals)
        prev_edge = edge
    return pd.Series(np.maximum(below, 1).astype(float), index=factor.index, name="quantile")


def quantile_returns(data: pd.DataFrame, quantiles: int = 5, demeaned: bool = True,
                     q: pd.Series | None = None) -> pd.DataFrame:
    """alphalens' ``mean_return_by_quantile``: each date's mean forward return per quantile,
    averaged over dates (rows: quantile, columns: horizon)."""
    rets, q = _quantile_frame(data, quantiles, demeaned, q)
    per_date = rets.groupby([q, rets.index.get_level_values("datetime")]).mean()
    return per_date.groupby(level=0).mean().rename_axis("quantile")


def pooled_quantile_returns(data: pd.DataFrame, quantiles: int = 5, demeaned: bool = True,
                            q: pd.Series | None = None) -> pd.DataFrame:
    """Mean forward return over all rows of each quantile, pooled across dates (a date with
    more names weighs more)."""
    rets, q = _quantile_frame(data, quantiles, demeaned, q)
    return rets.groupby(q).mean().rename_axis("quantile")


def _quantile_frame(data: pd.DataFrame, quantiles: int, demeaned: bool, q: pd.Series | None = None):
    horizons = [c for c in data.columns if c != "factor"]
    q = (quantize(data["factor"], quantiles) if q is None else q).reindex(data.index)
    rets = data[horizons]
    if demeaned:
        rets = rets - rets.groupby(level="datetime").transform("mean")
    return rets, q.rename("quantile")


def quantile_turnover(factor: pd.Series, quantiles: int = 5, q: pd.Series | None = None) -> pd.DataFrame:
    """Share of each quantile's names on a date that were not in it on the previous date.

    ``q`` is the factor's :func:`quantize` result when the caller already has it.
    """
    q = quantize(factor, quantiles) if q is None else q
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
    """All evaluation results for one factor; renders as HTML in Jupyter.

    ``quantile_returns`` is alphalens' ``mean_return_by_quantile`` (per-date means averaged
    over dates); ``pooled_quantile_returns`` pools all rows of a quantile. ``window`` says
    which dates every metric was computed on (first and last date, number of dates, the
    floor of names per date and the calendar convention).
    """

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
    pooled_quantile_returns: pd.DataFrame | None = None
    window: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-friendly summary (attached to published factors), with the window it covers."""
        s = self.summary.replace({np.nan: None})
        return {
            "name": self.name,
            "window": dict(self.window),
            "ic": {h: {k: (None if v is None else float(v)) for k, v in row.items()} for h, row in s.iterrows()},
            "decay": {k: float(v) for k, v in self.decay.dropna().items()},
            "spread": {k: float(v) for k, v in self.spread.dropna().items()},
            "turnover": float(np.nanmean(self.turnover.to_numpy())) if self.turnover.size else None,
            "coverage": float(self.coverage.mean()) if len(self.coverage) else None,
        }

    def _repr_html_(self) -> str:
        w = self.window
        span = (f"<p>{w.get('n_dates')} dates from {w.get('start')} to {w.get('end')} "
                f"(dates with at least {w.get('min_names')} names; forward returns on each "
                f"symbol's {w.get('calendar')} calendar)</p>") if w else ""
        pooled = ("" if self.pooled_quantile_returns is None else
                  f"<b>Pooled return by quantile (demeaned)</b>"
                  f"{self.pooled_quantile_returns.to_html(float_format='%.5f')}")
        return (f"<h4>Factor evaluation: {self.name}</h4>{span}"
                f"<b>Rank IC</b>{self.summary.to_html(float_format='%.4f')}"
                f"<b>Mean return by quantile (demeaned, averaged per date as alphalens)</b>"
                f"{self.quantile_returns.to_html(float_format='%.5f')}{pooled}"
                f"<p>mean turnover {np.nanmean(self.turnover.to_numpy()):.3f}, "
                f"mean coverage {self.coverage.mean():.3f}</p>")


def evaluate(factor: pd.Series, prices: pd.DataFrame, horizons=(1, 5, 10), quantiles: int = 5,
             name: str = "factor", *, min_names: int = MIN_NAMES, calendar: str = "own") -> FactorEvaluation:
    """Evaluate a factor against prices: IC, decay, quantile returns and spread, turnover, coverage.

    Parameters
    ----------
    factor : Series
        Indexed by (datetime, symbol).
    prices : DataFrame
        Wide closes (datetime x symbol), NaN where a symbol does not trade.
    horizons : sequence of int
        Forward periods on each symbol's own calendar (see :func:`forward_returns`).
    quantiles : int
        Equal-count buckets per date.
    min_names : int
        Dates with fewer names (after dropping missing values) are left out of every metric.
    calendar : {"own", "grid"}
        Forward-return convention (see :func:`forward_returns`).

    Raises
    ------
    ValueError
        When no date has ``min_names`` names with a factor value and forward returns.
    """
    factor = _check_factor(factor)
    decay_h = sorted(set(list(horizons) + [1, 2, 5, 10, 20]))
    # one forward-return pass serves the report's horizons and the decay curve
    fwd_all = forward_returns(prices, decay_h, calendar)
    fwd = fwd_all[[f"{int(h)}p" for h in sorted({int(h) for h in horizons})]]
    data = clean_factor(factor, fwd)
    rows_before = len(data)
    data = min_names_filter(data, min_names) if len(data) else data
    if data.empty:
        raise ValueError(f"factor {name!r}: no date has at least {min_names} names with a factor value and "
                         f"forward returns ({rows_before} rows before the floor); widen the universe or the "
                         f"dates, or lower min_names")
    ic = rank_ic(data)
    q = quantize(data["factor"], quantiles)
    qr = quantile_returns(data, quantiles, q=q)
    pooled = pooled_quantile_returns(data, quantiles, q=q)
    spread = (qr.iloc[-1] - qr.iloc[0]).rename("top_minus_bottom")
    decay_data = clean_factor(factor, fwd_all)
    decay = rank_ic(min_names_filter(decay_data, min_names)).mean() if len(decay_data) else pd.Series(dtype=float)
    dates = data.index.get_level_values("datetime")
    kept = factor[factor.index.get_level_values(0).isin(dates.unique())]
    window = {"start": str(dates.min()), "end": str(dates.max()), "n_dates": int(dates.nunique()),
              "min_names": int(min_names), "calendar": calendar}
    return FactorEvaluation(
        name=name, ic=ic, summary=ic_summary(ic), decay=decay, quantile_returns=qr, spread=spread,
        turnover=quantile_turnover(data["factor"], quantiles, q=q),
        autocorrelation=rank_autocorrelation(data["factor"]), coverage=coverage(kept, prices.columns),
        pooled_quantile_returns=pooled, window=window,
    )
