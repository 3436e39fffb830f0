"""``pyplatform bench``: benchmarks of the hot paths, each beside the obvious alternative.

Every area's commands live in :mod:`pyplatform.bench` and are added through the
``register(app)`` function of the modules listed in :data:`BENCH_MODULES`. Every listed
module must exist and define ``register``: a missing one is an error that names it, so a
renamed or deleted bench module can never silently drop its commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Benchmarks of the hot paths, each beside the obvious alternative, as ratios of medians.",
                  no_args_is_help=True)

#: Modules whose ``register(app)`` adds bench commands, in the order ``--help`` lists them
#: (add yours with a one-line edit).
BENCH_MODULES: list[str] = [
    "pyplatform.bench.history",      # history
    "pyplatform.bench.engine",       # engine
    "pyplatform.bench.feeds",        # feed, soak, codec
    "pyplatform.bench.stream",       # stream
    "pyplatform.bench.signals",      # signals
    "pyplatform.bench.trading",      # journal, trading
    "pyplatform.bench.backtest",     # backtest
    "pyplatform.bench.models",       # models
    "pyplatform.bench.gpu_factors",  # gpu-factors
    "pyplatform.bench.research",     # research
    "pyplatform.bench.dashboard",    # dashboard
    "pyplatform.bench.dolphindb",    # dolphindb
]


def _register_modules() -> None:
    for name in BENCH_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"bench module {name!r} listed in pyplatform.cli.bench.BENCH_MODULES "
                              f"cannot be imported: {exc}") from exc
        register = getattr(mod, "register", None)
        if not callable(register):
            raise ImportError(f"bench module {name!r} has no register(app) function")
        register(app)


_register_modules()
