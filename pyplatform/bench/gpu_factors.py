"""``pyplatform bench gpu-factors``: the whole bar library over a long history, three ways.

Times the CPU batch runtime (``compile_batch`` per factor, the reference), the array-module
path of :mod:`pyplatform.factors.gpu` on NumPy, and the same path on CuPy when an NVIDIA GPU
is present, and prints medians and ratios measured in one run (see ``docs/gpu.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from pyplatform.bench.report import machine_line

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register", "synthetic_bars", "run_gpu_bench", "format_gpu_bench"]


def synthetic_bars(n_symbols: int, n_bars: int, seed: int = 0) -> pd.DataFrame:
    """Long random-walk bar histories, fast to build (the benchmark's input).

    Indexed by (datetime, symbol) with the bar columns the library reads; symbols get
    histories of different lengths (the last one 10% shorter) so the panel is ragged, as real
    data is.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_symbols):
        n = n_bars if s < n_symbols - 1 or n_symbols == 1 else int(n_bars * 0.9)
        close = (20.0 + 80.0 * rng.random()) * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
        opn = np.r_[close[0], close[:-1]]
        wick = np.abs(rng.normal(0, 0.001, (2, n)))
        frames.append(pd.DataFrame({
            "datetime": pd.date_range("2010-01-04", periods=n, freq="1min"), "symbol": f"S{s:04d}.US",
            "open": opn, "high": np.maximum(opn, close) * (1 + wick[0]), "low": np.minimum(opn, close) * (1 - wick[1]),
            "close": close, "volume": np.round(rng.lognormal(8, 1, n)), "vwap": (opn + close) / 2,
            "trades": rng.integers(1, 500, n).astype(float),
        }))
    return pd.concat(frames).set_index(["datetime", "symbol"]).sort_index()


def run_gpu_bench(n_symbols: int = 10, n_bars: int = 20_000, repeat: int = 3, seed: int = 0) -> dict:
    """Time the whole bar library: CPU batch runtime vs the array-module path on NumPy (and CuPy if present).

    Returns medians in seconds, the ratios ``cpu_batch / path`` and the largest deviation of
    each path from the CPU batch runtime (scaled like the tests: relative, or relative to the
    factor's largest magnitude for near-zero values).
    """
    import time

    import numpy as np
    import pandas as pd

    from pyplatform.factors import compile_batch
    from pyplatform.factors.gpu import compute_factors_gpu, select_array_module
    from pyplatform.factors.library import load_library

    frame = synthetic_bars(n_symbols, n_bars, seed)
    defs = [d for d in load_library() if d.input == "bars"]
    exprs = {d.name: d.factor for d in defs}

    def cpu_batch() -> pd.DataFrame:
        return pd.DataFrame({name: compile_batch(e)(frame) for name, e in exprs.items()})

    def timed(fn) -> tuple[float, pd.DataFrame]:
        out, times = None, []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), out

    def deviation(got: pd.DataFrame, ref: pd.DataFrame) -> tuple[float, bool]:
        # worst relative deviation among values not near zero, and whether every value is within
        # the tests' tolerance (1e-9 relative + 1e-12 x the factor's largest magnitude per symbol)
        sym = frame.index.get_level_values("symbol")
        worst, ok = 0.0, True
        for c in ref.columns:
            r, g = ref[c].to_numpy(), got[c].to_numpy()
            if (np.isnan(r) != np.isnan(g)).any():
                return float("inf"), False
            scale = pd.Series(np.abs(r)).groupby(sym).transform("max").to_numpy()
            m = ~np.isnan(r)
            d = np.abs(g[m] - r[m])
            ok = ok and bool(np.all(d <= 1e-9 * np.abs(r[m]) + 1e-12 * scale[m]))
            big = np.abs(r[m]) >= 1e-3 * scale[m]
            if big.any():
                worst = max(worst, float(np.max(d[big] / np.abs(r[m][big]))))
        return worst, ok

    result = {"rows": len(frame), "symbols": n_symbols, "bars_per_symbol": n_bars, "factors": len(exprs),
              "repeat": repeat, "paths": []}
    t_cpu, ref = timed(cpu_batch)
    result["cpu_batch_s"] = t_cpu
    devices = ["cpu"]
    _, where = select_array_module("auto")
    if not where.startswith("numpy"):
        devices.append("gpu")
    else:
        result["gpu_note"] = where
    for dev in devices:
        compute_factors_gpu(frame.iloc[:1000], exprs, dev)  # warm (CuPy compiles kernels on first use)
        t, got = timed(lambda: compute_factors_gpu(frame, exprs, dev))
        dev_rel, within = deviation(got, ref)
        result["paths"].append({"device": got.attrs["device"], "median_s": t, "speedup_vs_cpu_batch": t_cpu / t,
                                "max_rel_dev": dev_rel, "within_tolerance": within, "rows_per_s": len(frame) / t})
    return result


def format_gpu_bench(r: dict) -> str:
    """Printable lines of :func:`run_gpu_bench`'s result."""
    lines = [f"gpu-factors: {r['factors']} bar factors x {r['rows']:,} rows ({r['symbols']} symbols x "
             f"{r['bars_per_symbol']:,} bars), medians of {r['repeat']} runs",
             f"  CPU batch runtime (compile_batch per factor)    {r['cpu_batch_s']:9.3f} s"]
    for p in r["paths"]:
        lines.append(f"  array-module path, {p['device']:<28s} {p['median_s']:9.3f} s   "
                     f"x{p['speedup_vs_cpu_batch']:.2f} vs CPU batch   {p['rows_per_s']:,.0f} rows/s   "
                     f"max rel. deviation {p['max_rel_dev']:.1e} "
                     f"({'within' if p['within_tolerance'] else 'OUTSIDE'} the tests' tolerance)")
    if "gpu_note" in r:
        lines.append(f"  GPU (CuPy) path not measured: {r['gpu_note']}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the ``gpu-factors`` command to the ``bench`` app."""

    @app.command("gpu-factors")
    def gpu_factors(
        symbols: int = typer.Option(10, min=1, help="Symbols in the synthetic history."),
        bars: int = typer.Option(20_000, min=100, help="Bars per symbol (the last symbol gets 10% fewer)."),
        repeat: int = typer.Option(3, min=1, help="Timed runs per path; medians are printed."),
        seed: int = typer.Option(0, help="Seed of the synthetic history."),
        quick: bool = typer.Option(False, "--quick", help="2 symbols x 300 bars, one run (a smoke test of the "
                                                          "command, not figures)."),
    ) -> None:
        """Library factors over long histories: CPU batch runtime vs the GPU path (NumPy, and CuPy on a GPU)."""
        if quick:
            symbols, bars, repeat = 2, 300, 1
        typer.echo(machine_line())
        typer.echo(format_gpu_bench(run_gpu_bench(symbols, bars, repeat, seed)))
