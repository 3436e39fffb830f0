"""Backends for the contract suite: embedded always, DolphinDB when PYPLATFORM_DOLPHINDB_URI is set.

Each backend is wrapped in an adapter with the same small surface (history store, stream
tables, bar and factor pipeline, publishing), so every contract test states its
assertions once and they apply to both.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pyplatform.config import Settings

DOLPHINDB_URI = os.environ.get("PYPLATFORM_DOLPHINDB_URI")
FACTORS = {"ma3": "mavg(close, 3)", "ret1": "close / prev(close) - 1"}


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, tmp_path):
        from pyplatform.factors import FactorEngine
        from pyplatform.store import open_store
        from pyplatform.stream.bars import BarEngine

        self.store = open_store(Settings(data_dir=tmp_path))
        self.dir = tmp_path / "streams"
        self.tables = {}
        self.bar_engine = BarEngine("1min")
        self.factor_engine = FactorEngine(dict(FACTORS))

    def stream(self, name, schema):
        from pyplatform.stream import StreamTable

        if name not in self.tables:
            self.tables[name] = StreamTable(name, schema, directory=self.dir)
        return self.tables[name]

    def append(self, name, schema, batch) -> tuple[int, int]:
        return self.stream(name, schema).append(batch)

    def read_stream(self, name, schema, start) -> pa.Table:
        return self.stream(name, schema).read(start)

    def ticks_to_bars(self, ticks: pa.Table) -> pa.Table:
        return self.bar_engine.feed(ticks)

    def bars_to_factors(self, bars: pa.Table) -> pd.DataFrame:
        wide = self.factor_engine.feed(bars).to_pandas()
        return wide.melt(id_vars=["ts", "symbol"], var_name="factor", value_name="value")

    def publish(self, name: str, expression: str) -> None:
        self.factor_engine.add_factor(name, expression)

    def close(self):
        for t in self.tables.values():
            t.close()


class DolphinDBBackend:
    """The same surface on a deployed DolphinDB pipeline with a unique prefix (removed after)."""

    name = "dolphindb"

    def __init__(self, tmp_path):
        from pyplatform.dolphindb.connection import connect, target_from_settings
        from pyplatform.dolphindb.deployer import Deployer
        from pyplatform.dolphindb.render import DeployConfig, FactorMetric
        from pyplatform.dolphindb.store import DolphinDBStore
        from pyplatform.factors import parse, to_dolphindb

        settings = Settings(data_dir=tmp_path, dolphindb_uri=DOLPHINDB_URI)
        self.target = target_from_settings(settings)
        self.session = connect(self.target)
        self.config = DeployConfig(prefix="ct" + uuid.uuid4().hex[:8],
                                   snapshot_dir=os.environ.get("DOLPHINDB_SNAPSHOT_DIR",
                                                               DeployConfig().snapshot_dir))
        metrics = [FactorMetric(n, to_dolphindb(parse(e))) for n, e in FACTORS.items()]
        self.deployer = Deployer(self.session, self.config, metrics)
        self.deployer.deploy()
        self.store = DolphinDBStore(settings, session=self.session, config=self.config)
        self._seen = {}

    def _name(self, name):
        return f"{self.config.prefix}_{name}"

    def append(self, name, schema, batch) -> tuple[int, int]:
        frame = pa.table(batch) if isinstance(batch, dict) else batch
        frame = frame.to_pandas()
        frame["ts"] = frame["ts"].to_numpy().astype("datetime64[ns]").astype("datetime64[ms]")
        from pyplatform.dolphindb.signals import next_offset

        first = next_offset(self.session, self._name(name))
        self.session.run(f'tableInsert{{objByName("{self._name(name)}")}}', frame)
        return first, first + len(frame) - 1

    def read_stream(self, name, schema, start) -> pa.Table:
        from pyplatform.dolphindb.signals import persistence_meta_script

        first = int(self.session.run(persistence_meta_script(self._name(name)))["memoryOffset"])
        got = self.session.run(f'select * from objByName("{self._name(name)}")')
        got["ts"] = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
        got.insert(0, "offset", np.arange(first, first + len(got), dtype=np.int64))
        return pa.Table.from_pandas(got[got["offset"] >= start], preserve_index=False)

    def _wait_rows(self, name, n_before, timeout=10.0) -> pd.DataFrame:
        deadline = time.monotonic() + timeout
        while True:
            got = self.session.run(f'select * from objByName("{self._name(name)}")')
            if len(got) > n_before or time.monotonic() > deadline:
                return got.iloc[n_before:]
            time.sleep(0.1)

    def ticks_to_bars(self, ticks: pa.Table) -> pa.Table:
        before = self._seen.setdefault("bars_1m", 0)
        self.append("ticks", None, ticks)
        got = self._wait_rows("bars_1m", before)
        self._seen["bars_1m"] = before + len(got)
        got["ts"] = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
        return pa.Table.from_pandas(got.reset_index(drop=True), preserve_index=False)

    def bars_to_factors(self, bars: pa.Table) -> pd.DataFrame:
        before = self._seen.setdefault("factors", 0)
        self.append("bars_1m", None, bars)
        got = self._wait_rows("factors", before)
        self._seen["factors"] = before + len(got)
        got["ts"] = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
        return got[["ts", "symbol", "factor", "value"]].reset_index(drop=True)

    def publish(self, name: str, expression: str) -> None:
        from pyplatform.dolphindb.render import FactorMetric
        from pyplatform.factors import parse, to_dolphindb

        self.deployer.publish([FactorMetric(name, to_dolphindb(parse(expression)))])

    def close(self):
        try:
            self.deployer.undeploy(drop_streams=True, drop_data=True)
        finally:
            self.session.close()


@pytest.fixture(params=[
    "embedded",
    pytest.param("dolphindb", marks=[
        pytest.mark.dolphindb,
        pytest.mark.skipif(not DOLPHINDB_URI, reason="DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI"),
    ]),
])
def backend(request, tmp_path):
    b = EmbeddedBackend(tmp_path) if request.param == "embedded" else DolphinDBBackend(tmp_path)
    yield b
    b.close()
