"""Trivial engines for the runtime tests (imported by name from this folder)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

RUNNING = pa.schema([("ts", pa.int64()), ("symbol", pa.string()), ("total", pa.float64()), ("n", pa.int64())])


class RunningVolume:
    """Per symbol running volume and row count, one output row per input row.

    Stateful and batch-invariant: exactly what an engine under the runner must be.
    """

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def feed(self, batch: pa.Table) -> pa.Table:
        df = batch.select(["ts", "symbol", "volume"]).to_pandas()
        g = df.groupby("symbol", sort=False)
        base_t = df.symbol.map(self.total).fillna(0.0).to_numpy()
        base_n = df.symbol.map(self.count).fillna(0).astype(np.int64).to_numpy()
        total = g.volume.cumsum().to_numpy() + base_t
        n = g.cumcount().to_numpy() + 1 + base_n
        last = pd.DataFrame({"symbol": df.symbol, "t": total, "n": n}).groupby("symbol").last()
        self.total.update(last.t.to_dict())
        self.count.update({k: int(v) for k, v in last.n.items()})
        return pa.table({"ts": df.ts.to_numpy(), "symbol": df.symbol.to_numpy(), "total": total, "n": n},
                        schema=RUNNING)

    def snapshot(self) -> bytes:
        return json.dumps({"total": self.total, "count": self.count}).encode()

    def restore(self, data: bytes) -> None:
        state = json.loads(data)
        self.total, self.count = state["total"], state["count"]
