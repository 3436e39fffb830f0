"""Export trained models to ONNX, and INT8 quantisation calibrated on history."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["export_onnx", "quantize_int8", "precision_loss"]


def precision_loss(reference: np.ndarray, quantized: np.ndarray) -> dict[str, float]:
    """How much a reduced-precision model's outputs differ from FP32's.

    ``rel_error``: mean |difference| over the mean |FP32 output| (the headline "precision
    loss"); ``error_vs_spread``: mean |difference| over the FP32 outputs' standard deviation
    (robust when outputs hover near zero, as return forecasts do); ``rank_corr``: Spearman
    correlation, which is what a factor's users (ranking, quantiles) depend on.
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(reference, float), np.asarray(quantized, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = np.abs(a - b).mean()
    return {"rel_error": float(d / max(np.abs(a).mean(), 1e-12)),
            "error_vs_spread": float(d / max(a.std(), 1e-12)),
            "rank_corr": float(spearmanr(a, b)[0])}


def export_onnx(model, n_features: int, path: str | Path) -> Path:
    """Write a fitted scikit-learn pipeline as an ONNX file with float32 input ``X`` [N, F].

    Parameters
    ----------
    model : sklearn estimator or TrainedModel
    n_features : int
    path : path of the ``.onnx`` file to write (parent created)
    """
    from skl2onnx import to_onnx

    est = getattr(model, "estimator", model)
    proto = to_onnx(est, np.zeros((1, n_features), np.float32), target_opset=17)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from pyplatform.fsio import atomic_write

    atomic_write(path, proto.SerializeToString())  # a reader never sees half a model
    return path


def quantize_int8(model_path: str | Path, calibration: np.ndarray, out_path: str | Path,
                  batch: int = 256, method: str = "minmax") -> Path:
    """Static INT8 quantisation (QDQ format) calibrated on feature rows from history.

    The QDQ model runs on ONNX Runtime's CPU provider and is what TensorRT's INT8 mode
    consumes, so its precision loss can be measured on any machine.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    calibration = np.asarray(calibration, np.float32)
    calibration = calibration[np.isfinite(calibration).all(axis=1)]
    if len(calibration) == 0:
        raise ValueError("calibration data has no finite rows")

    # equal-sized batches: the histogram calibrators stack them and reject a ragged last one
    batch = min(batch, len(calibration))
    calibration = calibration[: len(calibration) // batch * batch]

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"X": calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self):
            return next(self._it, None)

    out_path = Path(out_path)
    # Percentile calibration (99.999th) ignores the fat tails of factor values (a crypto
    # volatility spike would otherwise stretch the INT8 range and flatten everything else).
    cm = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
          "entropy": CalibrationMethod.Entropy}[method]
    quantize_static(str(model_path), str(out_path), _Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=cm,
                    per_channel=True,
                    # only the matrix products: the raw inputs mix scales (a z-score next to
                    # a volatility), so quantising them with one per-tensor scale would crush
                    # the small ones; after the model's own scaler they are comparable.
                    op_types_to_quantize=["MatMul", "Gemm"])
    return out_path
