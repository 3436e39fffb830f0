"""Stream tables, the bar engine and the runtime that wires tables to engines.

See ``docs/stream.md`` for offsets, subscription semantics, retention, the fsync policy
and the late-tick policy of the bar engine.
"""

from pyplatform._lazy import lazy_exports
from pyplatform.stream.errors import CorruptLogError, RetentionError, SchemaError, StreamError
from pyplatform.stream.options import TableOptions
from pyplatform.stream.registry import StreamTables
from pyplatform.stream.subscription import OFFSET_ACKED, OFFSET_NEW, OFFSET_OLDEST, Subscription
from pyplatform.stream.runtime import EngineRunner, Pipeline
from pyplatform.stream.table import StreamTable

__all__ = [
    "StreamTable", "StreamTables", "Subscription", "TableOptions", "BarEngine", "EngineRunner", "Pipeline",
    "OFFSET_NEW", "OFFSET_ACKED", "OFFSET_OLDEST",
    "StreamError", "SchemaError", "RetentionError", "CorruptLogError",
]


# The bar engine pulls in numba (a second or two to import); services that only use
# tables should not pay for it.
__getattr__, __dir__ = lazy_exports(__name__, {"BarEngine": "bar_engine"})
