"""Data to work on: a synthetic market (bars and ticks on real calendars) and importers."""

from __future__ import annotations

from pyplatform._lazy import lazy_exports
from pyplatform.data.bar_simulator import BarSimulator, generate_bars
from pyplatform.data.universe import make_universe, symbol_params

__all__ = ["make_universe", "symbol_params", "generate_bars", "generate_ticks", "generate_market",
           "import_files", "BarSimulator"]

# heavier pieces load on first use so `import pyplatform.data` stays light
__getattr__, __dir__ = lazy_exports(__name__, {
    "generate_ticks": "ticks", "generate_market": "synthetic_market", "import_files": "importer",
})
