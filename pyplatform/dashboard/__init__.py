"""The Dash research app: market, factors, backtests and live pages over one shared context.

Build it with :func:`create_app` (what ``pyplatform dash`` and the demo run); figures come
from :mod:`pyplatform.plots`, the same functions the notebook API exposes.
"""

from pyplatform.dashboard.app import create_app
from pyplatform.dashboard.live import LiveBuffer

__all__ = ["create_app", "LiveBuffer"]
