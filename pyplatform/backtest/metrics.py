"""Performance metrics of a backtest, computed with empyrical-reloaded where it has them.

Inputs are the per-period returns of the equity curve (a Series indexed by datetime), the
closed trades (one row per round trip with its P&L) and the positions/turnover frames.
``periods_per_year`` is given explicitly because minute bars of a stock (~98,280 a year)
and of a crypto pair (525,600 a year) annualise differently.
"""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd

__all__ = ["drawdown", "max_drawdown_duration", "compute_metrics"]


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown of an equity curve: equity / running peak - 1 (<= 0)."""
    return equity / equity.cummax() - 1.0


def max_drawdown_duration(equity: pd.Series) -> int:
    """Longest run of periods spent below a previous peak (peak to recovery, or to the end)."""
    under = (equity < equity.cummax()).to_numpy()
    if not under.any():
        return 0
    # lengths of consecutive True runs
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def compute_metrics(returns: pd.Series, trades: pd.DataFrame | None = None,
                    turnover: pd.Series | None = None, exposure: pd.Series | None = None,
                    periods_per_year: float = 252.0, risk_free: float = 0.0) -> dict[str, float]:
    """All headline metrics as a flat dict.

    Parameters
    ----------
    returns : Series
        Simple returns per period of the whole portfolio.
    trades : DataFrame, optional
        Closed trades with a ``pnl`` column (win rate, profit factor).
    turnover : Series, optional
        Traded notional / equity per period (mean is reported, annualised).
    exposure : Series, optional
        Gross exposure / equity per period (mean is reported).
    """
    r = returns.fillna(0.0).astype(float)
    equity = (1.0 + r).cumprod()
    out = {
        "total_return": float(equity.iloc[-1] - 1.0) if len(equity) else 0.0,
        "annual_return": float(ep.annual_return(r, annualization=periods_per_year)),
        "annual_volatility": float(ep.annual_volatility(r, annualization=periods_per_year)),
        "sharpe": float(ep.sharpe_ratio(r, risk_free=risk_free, annualization=periods_per_year)),
        "sortino": float(ep.sortino_ratio(r, annualization=periods_per_year)),
        "calmar": float(ep.calmar_ratio(r, annualization=periods_per_year)),
        "max_drawdown": float(ep.max_drawdown(r)),
        "max_drawdown_duration": max_drawdown_duration(equity),
        "n_periods": int(len(r)),
    }
    if trades is not None and len(trades):
        pnl = trades["pnl"].astype(float)
        wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
        out["n_trades"] = int(len(pnl))
        out["win_rate"] = float((pnl > 0).mean())
        out["profit_factor"] = float(wins / losses) if losses > 0 else float("inf")
    else:
        out.update(n_trades=0, win_rate=float("nan"), profit_factor=float("nan"))
    out["turnover"] = float(turnover.mean() * periods_per_year) if turnover is not None and len(turnover) else float("nan")
    out["exposure"] = float(exposure.mean()) if exposure is not None and len(exposure) else float("nan")
    return out
