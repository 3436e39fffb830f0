"""``pyplatform bench backtest``: event-driven and vectorised dual-MA backtests beside a plain
pandas loop doing the same backtest, over a generated market, as ratios of medians."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from pyplatform.bench.report import machine_line, median_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register", "pandas_loop_dual_ma", "run_bench"]


def pandas_loop_dual_ma(bars: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """The obvious alternative: pandas rolling windows, then a row-by-row loop deciding at each
    close and filling at the next open (long-only, no fees) -- the vectorised rules.

    A crossing compares the two averages exactly: prices are decimals at the instrument's
    precision, so the windows are summed in units of that precision (integers, which pandas
    sums exactly) and ``mavg_f > mavg_s`` is decided as ``slow * sum_f > fast * sum_s`` in
    Python integers. Comparing ``rolling().mean()`` floats instead decides a tie of the two
    averages by the last bit of two differently rounded sums: on EURUSD minute bars that
    turned a tie into a one-bar death-and-golden cross the exact arithmetic does not have.
    """
    import pandas as pd

    from pyplatform.backtest.vectorized import fixed_point_scale

    out = []
    for sym, g in bars.groupby(level="symbol", sort=True):
        close = g["close"]
        scale = fixed_point_scale(close.to_numpy(), max(fast, slow))
        if scale is not None:
            units = (close * scale).round()
            f, s, wf, ws = units.rolling(fast).sum(), units.rolling(slow).sum(), slow, fast
        else:  # not fixed-point decimals: compare the float means
            f, s, wf, ws = close.rolling(fast).mean(), close.rolling(slow).mean(), 1, 1
        rets = pd.Series(0.0, index=g.index)
        cur = prev_held = 0
        for t in range(1, len(g)):
            held = cur
            o, c, c0 = g["open"].iloc[t], g["close"].iloc[t], g["close"].iloc[t - 1]
            if held and prev_held:
                rets.iloc[t] = c / c0 - 1
            elif held:
                rets.iloc[t] = c / o - 1
            elif prev_held:
                rets.iloc[t] = o / c0 - 1
            prev_held = held
            a0, b0, a1, b1 = f.iloc[t - 1], s.iloc[t - 1], f.iloc[t], s.iloc[t]
            if not (pd.isna(a0) or pd.isna(b0) or pd.isna(a1) or pd.isna(b1)):
                if scale is not None:  # exact: integers (the sums are whole units, below 2**53)
                    a0, b0, a1, b1 = int(a0) * wf, int(b0) * ws, int(a1) * wf, int(b1) * ws
                if cur == 0 and a1 > b1 and a0 <= b0:
                    cur = 1
                elif cur == 1 and a1 < b1 and a0 >= b0:
                    cur = 0
        out.append(rets)
    return pd.concat(out)


def run_bench(symbols: int, start: str, end: str, fast: int, slow: int, repeat: int, loop_bars: int,
              progress: bool = True) -> dict:
    """Time the three ways over the same generated minute bars; returns the figures.

    ``progress`` prints each phase to stderr as it starts (a long run is never silent).
    The pandas loop's returns are checked equal to the vectorised path's on every symbol's
    first ``loop_bars`` bars (a mismatch raises ``AssertionError`` naming the symbol).
    """
    import sys

    import numpy as np

    def say(what: str) -> None:
        if progress:
            print(f"[bench backtest] {what}", file=sys.stderr, flush=True)

    from pyplatform.backtest import BacktestConfig, run_backtest
    from pyplatform.backtest.run import bars_table
    from pyplatform.backtest.signals import generate_signals
    from pyplatform.backtest.vectorized import dual_ma_returns, sweep_dual_ma
    from pyplatform.data import generate_bars
    from pyplatform.strategies import build

    say(f"generating {symbols} symbols of 1-minute bars {start} .. {end}")
    t0 = time.perf_counter()
    bars = generate_bars(symbols, start, end, freq="1min", seed=0)
    gen_s = time.perf_counter() - t0
    n = len(bars)
    table = bars_table(bars)
    strat = {"kind": "ma_cross", "params": {"fast": fast, "slow": slow}}
    fric = BacktestConfig.frictionless(freq="1min", audit_timestamps=0)
    real = BacktestConfig(freq="1min", audit_timestamps=0)
    # warm numba caches and imports once
    warm = bars.iloc[: min(n, 5000)]
    run_backtest(strat, bars=warm, backtest=fric)
    sweep_dual_ma(warm, [fast], [slow])
    out: dict = {"bars": n, "symbols": symbols, "start": start, "end": end, "generate_s": gen_s}
    res: dict = {}

    def ev(cfg, key):
        def go():
            res[key] = run_backtest(strat, bars=table, backtest=cfg)
        return go

    say(f"{n:,} bars; timing signals, then the frictionless and the realistic run ({repeat} each)")
    out["signals_s"] = median_time(lambda: generate_signals([build(strat)], table, 262_144), repeat)
    out["event_frictionless_s"] = median_time(ev(fric, "fric"), repeat)
    out["event_realistic_s"] = median_time(ev(real, "real"), repeat)
    out["orders_frictionless"] = len(res["fric"].orders)
    out["orders_realistic"] = len(res["real"].orders)
    out["fills_frictionless"] = len(res["fric"].trades)
    out["fills_realistic"] = len(res["real"].trades)
    fw, sw = [5, 10, 15, 20, 30, 40, 50, 60], [50, 100, 150, 200, 250, 300, 400, 500]
    pairs = sum(1 for f in fw for s in sw if f < s)
    out["pairs"] = pairs
    say("timing the vectorised sweep and the pandas loop")
    out["vector_s"] = median_time(lambda: sweep_dual_ma(bars, fw, sw, freq="1min"), repeat)
    # the pandas loop is slow: time it on the first ``loop_bars`` bars of one symbol and scale
    one = bars.xs(bars.index.get_level_values("symbol")[0], level="symbol", drop_level=False).iloc[:loop_bars]
    out["loop_bars"] = len(one)
    out["loop_s"] = median_time(lambda: pandas_loop_dual_ma(one, fast, slow), max(1, min(repeat, 3)))
    # the loop computes what the vectorised path computes (checked here, not just timed),
    # on every symbol: stocks, forex and crypto prices have different precisions
    for sym, g in bars.groupby(level="symbol", sort=True):
        head = g.iloc[:loop_bars]
        ref = dual_ma_returns(head["open"].to_numpy(), head["close"].to_numpy(), fast, slow)
        np.testing.assert_allclose(pandas_loop_dual_ma(head, fast, slow).to_numpy(), ref, atol=1e-12,
                                   err_msg=f"pandas loop != vectorised dual MA on {sym}")
    out["loop_checked_symbols"] = int(bars.index.get_level_values("symbol").nunique())
    return out


def format_bench(r: dict) -> str:
    n = r["bars"]
    loop_rate = r["loop_bars"] / r["loop_s"]
    ev_f, ev_r = n / r["event_frictionless_s"], n / r["event_realistic_s"]
    sig = n / r["signals_s"]
    vec = n * r["pairs"] / r["vector_s"]
    lines = [
        machine_line(),
        f"market: {r['symbols']} symbols of 1-minute bars {r['start']} .. {r['end']}: {n:,} bars "
        f"(generated in {r['generate_s']:.1f} s)",
        f"{'path':58s} {'median s':>9s} {'bars/s':>14s} {'x pandas loop':>14s}",
        f"{'pandas loop, dual MA 1 pair (' + format(r['loop_bars'], ',') + ' bars)':58s} {r['loop_s']:9.3f} "
        f"{loop_rate:14,.0f} {1.0:14.1f}",
        f"{'event-driven: signals (factor engine + strategy)':58s} {r['signals_s']:9.3f} {sig:14,.0f} "
        f"{sig / loop_rate:14.1f}",
        f"{'event-driven: whole run, frictionless (' + format(r['orders_frictionless'], ',') + ' orders)':58s} "
        f"{r['event_frictionless_s']:9.3f} {ev_f:14,.0f} {ev_f / loop_rate:14.1f}",
        f"{'event-driven: whole run, realistic (' + format(r['orders_realistic'], ',') + ' orders)':58s} "
        f"{r['event_realistic_s']:9.3f} {ev_r:14,.0f} {ev_r / loop_rate:14.1f}",
        f"{'  per fill, realistic (' + format(r['fills_realistic'], ',') + ' fills)':58s} "
        f"{r['event_realistic_s'] / max(r['fills_realistic'], 1) * 1e6:8.0f}us",
        f"{'vectorised sweep, ' + str(r['pairs']) + ' pairs (bar-evaluations/s)':58s} {r['vector_s']:9.3f} "
        f"{vec:14,.0f} {vec / loop_rate:14.1f}",
    ]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest_bench(
        symbols: int = typer.Option(6, help="Symbols in the generated market (stocks, forex, crypto)."),
        start: str = typer.Option("2024-01-02", help="First session (minute bars)."),
        end: str = typer.Option("2024-01-09", help="End session (exclusive)."),
        fast: int = typer.Option(20, help="Fast MA window of the timed strategy."),
        slow: int = typer.Option(100, help="Slow MA window."),
        repeat: int = typer.Option(3, help="Timed runs per path; medians are printed."),
        loop_bars: int = typer.Option(3_000, help="Bars per symbol the (slow) pandas loop is checked on "
                                                  "(the first symbol's are timed)."),
        quick: bool = typer.Option(False, "--quick", help="A tiny run: 2 symbols, 2 sessions, one repeat "
                                                           "(the tests run it: correctness, not timing)."),
    ) -> None:
        """Bar-events/s of the event-driven backtest and bar-evaluations/s of the vectorised sweep,
        beside a plain pandas loop doing the same dual-MA backtest (ratios of medians).

        The defaults (6 symbols, one week of minute bars, 3 repeats) finish in about a minute
        on a 2-core machine; ``--symbols/--start/--end`` scale it up."""
        if quick:
            symbols, start, end, repeat, loop_bars = 2, "2024-01-02", "2024-01-04", 1, 400
            fast, slow = min(fast, 5), min(slow, 20)
        typer.echo(format_bench(run_bench(symbols, start, end, fast, slow, repeat, loop_bars)))
