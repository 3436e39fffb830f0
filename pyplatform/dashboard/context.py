"""What the pages of one app instance share: settings, data sources, the live buffer.

Pages receive this object instead of importing globals, so tests build an app over a tmp
data directory (or in-memory frames) and several apps can live in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyplatform.clock import Clock
from pyplatform.config import Settings
from pyplatform.dashboard.data import BarSource
from pyplatform.dashboard.live_buffer import LiveBuffer

__all__ = ["AppContext"]


@dataclass
class AppContext:
    """Shared state of one Dash app.

    Attributes
    ----------
    settings : Settings
    bars : BarSource or None
        ``None`` when no history store is reachable (pages say so).
    live : LiveBuffer
        Fed by the signal-service client or another adapter.
    factors : object or None
        A :class:`pyplatform.dashboard.factor_data.FactorData`, ``None`` when unavailable.
    backtests : object or None
        A :class:`pyplatform.dashboard.backtest_data.BacktestRuns`, ``None`` when unavailable.
    unavailable : dict
        Page name -> reason, shown instead of the page's charts.
    """

    settings: Settings
    bars: BarSource | None
    live: LiveBuffer
    clock: Clock  # required: the Market page's 'now' (an edge builder such as create_app picks LiveClock)
    factors: object | None = None
    backtests: object | None = None
    cap: int = 3000
    poll_ms: int = 1000
    unavailable: dict[str, str] = field(default_factory=dict)
