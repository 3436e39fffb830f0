"""Model factors: walk-forward without look-ahead, ONNX export, CPU serving, INT8 precision."""

import numpy as np
import pandas as pd
import pytest

from pyplatform.models.export import export_onnx, quantize_int8
from pyplatform.models.serving import OnnxModel, gpu_available
from pyplatform.models.training import train_walk_forward, walk_forward_splits


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(1)
    dates = pd.date_range("2022-01-03", periods=80, freq="D")
    syms = [f"S{i}.US" for i in range(25)]
    idx = pd.MultiIndex.from_product([dates, syms], names=["datetime", "symbol"])
    X = pd.DataFrame(rng.normal(size=(len(idx), 4)), index=idx, columns=["f1", "f2", "f3", "f4"])
    y = pd.Series(0.5 * X["f1"] - 0.3 * X["f2"] ** 2 + rng.normal(0, 0.3, len(idx)), index=idx)
    return X, y


def test_walk_forward_never_sees_future():
    dates = pd.date_range("2020-01-01", periods=100)
    splits = list(walk_forward_splits(dates, n_splits=4, embargo=5))
    assert len(splits) == 4
    for train, test in splits:
        assert train.max() < test.min()
        # embargo: at least 5 dates strictly between them
        assert ((dates > train.max()) & (dates < test.min())).sum() == 5
    tests = pd.DatetimeIndex(np.concatenate([t for _, t in splits]))
    assert tests.is_unique and tests.is_monotonic_increasing
    with pytest.raises(ValueError, match="not enough dates"):
        list(walk_forward_splits(dates[:5], n_splits=4))


def test_training_has_no_lookahead(panel):
    X, y = panel
    m = train_walk_forward(X, y, kind="linear", n_splits=3, embargo=2)
    first_test = pd.Timestamp(m.folds[0]["test_start"])
    # out-of-sample predictions only exist after the first training window + embargo
    assert m.oos_predictions.index.get_level_values(0).min() == first_test
    assert pd.Timestamp(m.folds[0]["train_end"]) < first_test
    # a model that peeks would fit noise too; out of sample it must still track the signal
    corr = np.corrcoef(m.oos_predictions, y.loc[m.oos_predictions.index])[0, 1]
    assert corr > 0.3


def test_export_and_cpu_serving_parity(panel, tmp_path):
    X, y = panel
    m = train_walk_forward(X, y, kind="mlp", n_splits=2)
    path = export_onnx(m, 4, tmp_path / "m.onnx")
    served = OnnxModel(path, device="cpu")
    assert served.provider == "CPUExecutionProvider" and served.precision == "fp32"
    arr = X.to_numpy(np.float32)
    np.testing.assert_allclose(served.predict(arr), m.predict(arr), rtol=1e-4, atol=1e-5)
    # NaN rows give NaN, not garbage
    arr2 = arr[:3].copy()
    arr2[1, 2] = np.nan
    out = served.predict(arr2)
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    with pytest.raises(ValueError, match="shape"):
        served.predict(arr[:, :3])


def test_int8_precision_loss_measured(panel, tmp_path):
    X, y = panel
    m = train_walk_forward(X, y, kind="mlp", n_splits=2)
    fp32 = export_onnx(m, 4, tmp_path / "m.onnx")
    arr = X.to_numpy(np.float32)
    int8 = quantize_int8(fp32, arr[:2000], tmp_path / "m.int8.onnx")
    a, b = OnnxModel(fp32).predict(arr), OnnxModel(int8).predict(arr)
    assert OnnxModel(int8).precision == "int8"
    rel = np.abs(a - b).mean() / np.abs(a).mean()
    assert 0 < rel < 0.05  # quantisation changes outputs, but not the signal
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_gpu_requested_without_gpu_is_clear(panel, tmp_path):
    if gpu_available():
        pytest.skip("GPU present: this test checks the no-GPU error")
    X, y = panel
    m = train_walk_forward(X, y, kind="linear", n_splits=2)
    p = export_onnx(m, 4, tmp_path / "m.onnx")
    with pytest.raises(RuntimeError, match="no TensorRT/CUDA provider"):
        OnnxModel(p, device="gpu")
    assert OnnxModel(p, device="auto").provider == "CPUExecutionProvider"
