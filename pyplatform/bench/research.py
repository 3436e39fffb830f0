"""Benchmark: ``evaluate`` with vectorised quantiles beside the per-date ``pd.qcut`` loop.

The obvious alternative, measured in the same run on the same synthetic factor, is what
the evaluation did before (and what alphalens does): ``pd.qcut`` called once per date
through a group-by ``transform``. The bench also checks the two agree bucket for bucket,
so the old path is the oracle of the new one.

``pyplatform bench research [--quick]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyplatform.bench.report import markdown_table, median_time, ratio

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["synthetic_factor", "qcut_per_date", "run_research_bench", "format_result", "register"]


def synthetic_factor(n_dates: int, n_symbols: int, seed: int = 0) -> tuple[pd.Series, pd.DataFrame]:
    """A factor with some predictive power and its wide prices (business days, no gaps)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2014-01-02", periods=n_dates)
    syms = [f"S{i:03d}.US" for i in range(n_symbols)]
    rets = rng.normal(0, 0.02, (n_dates, n_symbols))
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rets, axis=0)), index=dates, columns=syms)
    fut = prices.pct_change().shift(-1)
    f = (fut + rng.normal(0, 0.04, fut.shape)).stack(future_stack=True).dropna()
    f.index.names = ["datetime", "symbol"]
    return f.rename("factor"), prices


def qcut_per_date(factor: pd.Series, quantiles: int) -> pd.Series:
    """The baseline: ``pd.qcut`` once per date through a group-by ``transform`` (alphalens'
    definition, and what the evaluation did before it was vectorised)."""
    import pandas as pd

    def _q(x: pd.Series) -> pd.Series:
        return pd.qcut(x, quantiles, labels=False, duplicates="drop") + 1

    return factor.groupby(level=0, group_keys=False).transform(_q)


def run_research_bench(n_dates: int = 3000, n_symbols: int = 25, repeat: int = 3) -> dict:
    """Time quantiles and a whole evaluation, vectorised and with the per-date qcut loop."""
    import numpy as np

    from pyplatform.research import evaluation as ev

    f, prices = synthetic_factor(n_dates, n_symbols)
    new_q = ev.quantize(f, 5)
    old_q = qcut_per_date(f.dropna(), 5).reindex(new_q.index)
    mismatches = int((new_q.to_numpy() != old_q.to_numpy()).sum())
    t_new_q = median_time(lambda: ev.quantize(f, 5), repeat)
    t_old_q = median_time(lambda: qcut_per_date(f, 5), repeat)

    orig = ev.quantize

    def _old_quantize(factor, quantiles=5):
        # what quantize did before: the same checks (a float factor), then a qcut per date
        return qcut_per_date(factor.rename("factor").astype(float).dropna(), quantiles).rename("quantile")

    t_new_e = median_time(lambda: ev.evaluate(f, prices, horizons=(1, 5, 10)), repeat)
    new_eval = ev.evaluate(f, prices, horizons=(1, 5, 10))
    ev.quantize = _old_quantize  # the old evaluation: a qcut per date
    try:
        t_old_e = median_time(lambda: ev.evaluate(f, prices, horizons=(1, 5, 10)), repeat)
        old_eval = ev.evaluate(f, prices, horizons=(1, 5, 10))
    finally:
        ev.quantize = orig
    qr_diff = float(np.nanmax(np.abs(new_eval.quantile_returns.to_numpy() - old_eval.quantile_returns.to_numpy())))
    return {"n_dates": n_dates, "n_symbols": n_symbols, "rows": int(len(f)), "bucket_mismatches": mismatches,
            "quantile_returns_max_diff": qr_diff,
            "quantize_s": t_new_q, "qcut_loop_s": t_old_q, "evaluate_s": t_new_e, "evaluate_qcut_loop_s": t_old_e}


def format_result(r: dict) -> str:
    """The figures as a markdown table with ratios."""
    lines = [f"research evaluate, {r['n_dates']} dates x {r['n_symbols']} symbols ({r['rows']:,} rows); "
             f"buckets differing from per-date qcut: {r['bucket_mismatches']}, quantile returns max diff "
             f"{r['quantile_returns_max_diff']:.2e}", ""]
    lines += markdown_table(
        ["measurement", "vectorised", "per-date pd.qcut loop", "speed-up"],
        [["quantize", f"{r['quantize_s'] * 1e3:.1f} ms", f"{r['qcut_loop_s'] * 1e3:.1f} ms",
          f"{ratio(r['qcut_loop_s'], r['quantize_s']):.1f}x"],
         ["evaluate (horizons 1, 5, 10)", f"{r['evaluate_s'] * 1e3:.1f} ms", f"{r['evaluate_qcut_loop_s'] * 1e3:.1f} ms",
          f"{ratio(r['evaluate_qcut_loop_s'], r['evaluate_s']):.1f}x"]])
    return "\n".join(lines)


def register(app) -> None:
    """Add ``research`` to the shared ``pyplatform bench`` Typer app."""
    import typer

    @app.command("research")
    def research(
        dates: int = typer.Option(3000, help="Business days of the synthetic factor (3,000 = 12 years)."),
        symbols: int = typer.Option(25, help="Names per date."),
        repeat: int = typer.Option(3, help="Timed runs; medians are printed."),
        quick: bool = typer.Option(False, "--quick", help="250 dates, one run (a smoke test of the command)."),
    ) -> None:
        """Time pp.evaluate's vectorised quantiles beside the per-date qcut loop (and check they agree)."""
        if quick:
            dates, repeat = 250, 1
        typer.echo(format_result(run_research_bench(dates, symbols, repeat)))
