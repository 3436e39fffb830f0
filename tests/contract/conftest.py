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

from pyplatform.clock import SimClock
from pyplatform.config import Settings

DOLPHINDB_URI = os.environ.get("PYPLATFORM_DOLPHINDB_URI")
FACTORS = {"ma3": "mavg(close, 3)", "ret1": "close / prev(close) - 1"}


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, tmp_path, factors: dict[str, str] | None = None):
        from pyplatform.factors import FactorEngine
        from pyplatform.backends import open_store
        from pyplatform.stream.bar_engine import BarEngine

        self.store = open_store(Settings(data_dir=tmp_path))
        self.dir = tmp_path / "streams"
        self.tables = {}
        self.bar_engine = BarEngine("1min")
        self.factors = dict(factors or FACTORS)
        self.factor_engine = FactorEngine(dict(self.factors))

    def stream(self, name, schema):
        from pyplatform.stream import StreamTable

        if name not in self.tables:
            self.tables[name] = StreamTable(name, schema, directory=self.dir, clock=SimClock())
        return self.tables[name]

    def append(self, name, schema, batch) -> tuple[int, int]:
        return self.stream(name, schema).append(batch)

    def read_stream(self, name, schema, start) -> pa.Table:
        return self.stream(name, schema).read(start)

    def ticks_to_bars(self, ticks: pa.Table, expect: int | None = None) -> pa.Table:
        return self.bar_engine.feed(ticks)

    def bars_to_factors(self, bars: pa.Table, expect: int | None = None) -> pd.DataFrame:
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

    def __init__(self, tmp_path, factors: dict[str, str] | None = None, **config):
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
                                                               DeployConfig().snapshot_dir), **config)
        self.factors = dict(factors or FACTORS)
        metrics = [FactorMetric(n, to_dolphindb(parse(e))) for n, e in self.factors.items()]
        self.deployer = Deployer(self.session, self.config, metrics)
        self.deployer.deploy()
        self.store = DolphinDBStore(settings, session=self.session, config=self.config)
        self._seen = {}

    def _name(self, name):
        return f"{self.config.prefix}_{name}"

    def append(self, name, schema, batch) -> tuple[int, int]:
        frame = pa.table(batch) if isinstance(batch, dict) else batch
        frame = frame.to_pandas()
        unit = "datetime64[ms]" if self.config.time_type == "TIMESTAMP" else "datetime64[ns]"
        frame["ts"] = frame["ts"].to_numpy().astype("datetime64[ns]").astype(unit)
        from pyplatform.dolphindb.subscriber import next_offset

        first = next_offset(self.session, self._name(name))
        self.session.run(f'tableInsert{{objByName("{self._name(name)}")}}', frame)
        return first, first + len(frame) - 1

    def read_stream(self, name, schema, start) -> pa.Table:
        from pyplatform.dolphindb.subscriber import persistence_meta_script

        first = int(self.session.run(persistence_meta_script(self._name(name)))["memoryOffset"])
        got = self.session.run(f'select * from objByName("{self._name(name)}")')
        got["ts"] = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
        got.insert(0, "offset", np.arange(first, first + len(got), dtype=np.int64))
        return pa.Table.from_pandas(got[got["offset"] >= start], preserve_index=False)

    def _wait_rows(self, name, n_before, expect: int | None = None, timeout=30.0, quiet=1.0) -> pd.DataFrame:
        """Rows appended to ``name`` after the first ``n_before``: waits for ``expect`` of them
        (the FULL expected output, not the first partial batch an engine emits), or -- when the
        count is not known in advance -- until the count has not changed for ``quiet`` seconds.
        Raises AssertionError naming how many arrived when the deadline passes first."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while True:
            got = self.session.run(f'select * from objByName("{self._name(name)}")')
            n = len(got) - n_before
            if n != last:
                last, since = n, time.monotonic()
            if expect is not None and n >= expect:
                return got.iloc[n_before:]
            if expect is None and n > 0 and time.monotonic() - since >= quiet:
                return got.iloc[n_before:]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self._name(name)}: {n} row(s) arrived within {timeout:g} s, expected "
                                     f"{expect if expect is not None else 'at least 1'}")
            time.sleep(0.1)

    def ticks_to_bars(self, ticks: pa.Table, expect: int | None = None) -> pa.Table:
        before = self._seen.setdefault("bars_1m", 0)
        self.append("ticks", None, ticks)
        got = self._wait_rows("bars_1m", before, expect)
        self._seen["bars_1m"] = before + len(got)
        got["ts"] = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
        return pa.Table.from_pandas(got.reset_index(drop=True), preserve_index=False)

    def bars_to_factors(self, bars: pa.Table, expect: int | None = None) -> pd.DataFrame:
        """Long factor rows for ``bars``: one per bar and factor unless told otherwise."""
        before = self._seen.setdefault("factors", 0)
        self.append("bars_1m", None, bars)
        n_factors = len(self.factors) + len(getattr(self, "_published", []))
        got = self._wait_rows("factors", before, bars.num_rows * n_factors if expect is None else expect)
        self._seen["factors"] = before + len(got)
        got["ts"] = pd.to_datetime(got["ts"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
        return got[["ts", "symbol", "factor", "value"]].reset_index(drop=True)

    def publish(self, name: str, expression: str) -> None:
        from pyplatform.dolphindb.render import FactorMetric
        from pyplatform.factors import parse, to_dolphindb

        self.deployer.publish([FactorMetric(name, to_dolphindb(parse(expression)))])
        self._published = getattr(self, "_published", []) + [name]

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


def library_bar_factors() -> dict[str, str]:
    from pyplatform.factors import load_library

    return {d.name: d.expression for d in load_library() if d.input == "bars"}


@pytest.fixture(params=[
    "embedded",
    pytest.param("dolphindb", marks=[
        pytest.mark.dolphindb,
        pytest.mark.skipif(not DOLPHINDB_URI, reason="DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI"),
    ]),
])
def library_backend(request, tmp_path):
    """A backend whose factor engine runs every library bar factor (wilder ones included)."""
    factors = library_bar_factors()
    b = EmbeddedBackend(tmp_path, factors) if request.param == "embedded" else DolphinDBBackend(tmp_path, factors)
    yield b
    b.close()


# one factor per metacode rule of issue 15 (docs/dolphindb.md, "Factor metacode")
NULL_RULE_FACTORS = {
    "eq": "close == open", "ne": "close != open", "orr": "(close > open) || (volume > 100)",
    "andd": "(close > open) && (high > close)", "nott": "!(close > open)", "mx": "max(high, low)",
    "mn": "min(high, close)", "negneg": "-(-close)", "iffy": "iif(close > open, deltas(close), 0)",
    "macd": "macd(close, 12, 26, 9)",
}


@pytest.fixture(params=[
    "embedded",
    pytest.param("dolphindb", marks=[
        pytest.mark.dolphindb,
        pytest.mark.skipif(not DOLPHINDB_URI, reason="DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI"),
    ]),
])
def null_rules_backend(request, tmp_path):
    """A backend running one factor per NULL/type rule of the DolphinDB metacode."""
    f = dict(NULL_RULE_FACTORS)
    b = EmbeddedBackend(tmp_path, f) if request.param == "embedded" else DolphinDBBackend(tmp_path, f)
    yield b
    b.close()


needs_server = pytest.mark.skipif(not DOLPHINDB_URI, reason="DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI")


@pytest.fixture
def server_backend(tmp_path):
    """The DolphinDB backend alone (cases with no embedded counterpart of their own)."""
    if not DOLPHINDB_URI:
        pytest.skip("DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI")
    b = DolphinDBBackend(tmp_path)
    yield b
    b.close()


@pytest.fixture
def server_backend_ns(tmp_path):
    """The DolphinDB backend deployed with NANOTIMESTAMP ``ts`` (``--nanoseconds``)."""
    if not DOLPHINDB_URI:
        pytest.skip("DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI")
    b = DolphinDBBackend(tmp_path, time_type="NANOTIMESTAMP")
    yield b
    b.close()


@pytest.fixture
def make_server_backend(tmp_path):
    """Build DolphinDB backends with a chosen DeployConfig (closed after the test)."""
    if not DOLPHINDB_URI:
        pytest.skip("DolphinDB server absent: set PYPLATFORM_DOLPHINDB_URI")
    made = []

    def make(factors=None, **config):
        b = DolphinDBBackend(tmp_path / f"b{len(made)}", factors, **config)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
