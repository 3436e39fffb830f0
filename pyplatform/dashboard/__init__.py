"""The Dash research app: market, factors, backtests and live pages over one shared context.

Build it with :func:`create_app` (what ``pyplatform dash`` and the demo run); figures come
from :mod:`pyplatform.plots`, the same functions the notebook API exposes.
"""

from pyplatform._lazy import lazy_exports

_EXPORTS = {
    "create_app": "app",
    "LiveBuffer": "live_buffer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["create_app", "LiveBuffer"]
