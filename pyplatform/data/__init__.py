"""Data to work on: a synthetic market (bars and ticks on real calendars) and importers."""

from __future__ import annotations

from pyplatform.data.bars import BarSimulator, generate_bars
from pyplatform.data.universe import make_universe, symbol_params

__all__ = ["make_universe", "symbol_params", "generate_bars", "generate_ticks", "generate_market",
           "import_files", "BarSimulator"]


def __getattr__(name):
    # heavier pieces load on first use so `import pyplatform.data` stays light
    if name == "generate_ticks":
        from pyplatform.data.ticks import generate_ticks
        return generate_ticks
    if name == "generate_market":
        from pyplatform.data.market import generate_market
        return generate_market
    if name == "import_files":
        from pyplatform.data.importer import import_files
        return import_files
    raise AttributeError(name)
