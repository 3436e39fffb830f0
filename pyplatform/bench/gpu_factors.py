"""``pyplatform bench gpu-factors``: the whole bar library over a long history, three ways.

Times the CPU batch runtime (``compile_batch`` per factor, the reference), the array-module
path of :mod:`pyplatform.factors.gpu` on NumPy, and the same path on CuPy when an NVIDIA GPU
is present, and prints medians and ratios measured in one run (see ``docs/gpu.md``).
"""

from __future__ import annotations

import typer

from pyplatform.bench.report import machine_line

__all__ = ["register"]


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
        from pyplatform.factors.gpu import format_gpu_bench, run_gpu_bench

        if quick:
            symbols, bars, repeat = 2, 300, 1
        typer.echo(machine_line())
        typer.echo(format_gpu_bench(run_gpu_bench(symbols, bars, repeat, seed)))
