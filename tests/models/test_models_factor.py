"""Model factors end to end: train on history, export, serve live, batch == stream, publish."""

import numpy as np
import pyarrow as pa
import pytest

from pyplatform.factors import FactorEngine
from pyplatform.models.factor import ModelEngine, ModelFactorSpec, model_factor_batch, train_model_factor
from pyplatform.registry import FactorRegistry
from pyplatform.registry.watcher import RegistryWatcher

INPUTS = ["close / move(close, 5) - 1", "zscore(close, 10)", "mstd(close / prev(close) - 1, 10)"]


@pytest.fixture(scope="module")
def trained(market_dir, tmp_path_factory):
    import shutil

    from pyplatform.config import Settings

    d = tmp_path_factory.mktemp("m") / "data"
    shutil.copytree(market_dir, d)
    s = Settings(data_dir=d)
    res = train_model_factor("mlp_alpha", INPUTS, horizon=3, kind="mlp", int8=True, publish=True,
                             author="ana", settings=s, n_splits=2)
    return s, res


def test_training_exports_and_publishes(trained):
    s, res = trained
    assert res.model_path.exists() and res.int8_path.exists()
    # INT8 keeps the factor's ranking (what users trade on); the loss is measured, not assumed
    assert res.extras["int8"]["rank_corr"] > 0.9
    v = FactorRegistry.from_settings(s).get("mlp_alpha")
    assert v.kind == "model" and v.inputs == tuple(
        str(__import__("pyplatform.factors", fromlist=["parse"]).parse(e)) for e in INPUTS)
    assert v.validation["mismatches"] == 0 and v.validation["compared"] > 0
    assert "ic" in v.evaluation
    # walk-forward folds never overlap their test windows
    for f in res.folds:
        assert f["train_end"] < f["test_start"]


def test_stream_equals_batch_on_random_batches(trained):
    s, res = trained
    import pyplatform as pp
    from pyplatform.research.session import engine_input

    frame = pp.bars(freq="1d", settings=s)
    spec = ModelFactorSpec("mlp_alpha", str(res.model_path), tuple(INPUTS))
    batch = model_factor_batch(spec, frame)
    eng = ModelEngine(FactorEngine(), [spec])
    table = engine_input(frame)
    rng = np.random.default_rng(0)
    outs, i = [], 0
    while i < table.num_rows:
        n = int(rng.integers(1, 40))
        outs.append(eng.feed(table.slice(i, n)))
        i += n
    out = pa.concat_tables(outs)
    assert out.column_names == ["ts", "symbol", "mlp_alpha"]  # hidden inputs are not published
    import pandas as pd

    idx = pd.MultiIndex.from_arrays([pd.to_datetime(out.column("ts").to_numpy()),
                                     out.column("symbol").to_numpy(zero_copy_only=False)])
    got = out.column("mlp_alpha").to_numpy(zero_copy_only=False)
    want = batch.reindex(idx).to_numpy()
    assert np.isfinite(got).sum() > 100
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_watcher_starts_model_factor_live(trained):
    s, res = trained
    eng = ModelEngine(FactorEngine())
    w = RegistryWatcher(FactorRegistry.from_settings(s), eng)
    assert ("add", "mlp_alpha") in w.poll()
    assert "mlp_alpha" in eng.models
    FactorRegistry.from_settings(s).retire("mlp_alpha")
    assert w.poll() == [("remove", "mlp_alpha")] and not eng.models


def test_wrong_input_count_rejected(trained):
    s, res = trained
    with pytest.raises(ValueError, match="takes 3 inputs"):
        ModelEngine(FactorEngine(), [ModelFactorSpec("m2", str(res.model_path), ("close",))])
