"""Export trained models to ONNX, and INT8 quantisation calibrated on history."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["export_onnx", "quantize_int8"]


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
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(path)  # atomic: a reader never sees half a model
    return path


def quantize_int8(model_path: str | Path, calibration: np.ndarray, out_path: str | Path,
                  batch: int = 256) -> Path:
    """Static INT8 quantisation (QDQ format) calibrated on feature rows from history.

    The QDQ model runs on ONNX Runtime's CPU provider and is what TensorRT's INT8 mode
    consumes, so its precision loss can be measured on any machine.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    calibration = np.asarray(calibration, np.float32)
    calibration = calibration[np.isfinite(calibration).all(axis=1)]
    if len(calibration) == 0:
        raise ValueError("calibration data has no finite rows")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"X": calibration[i:i + batch]} for i in range(0, len(calibration), batch)])

        def get_next(self):
            return next(self._it, None)

    out_path = Path(out_path)
    quantize_static(str(model_path), str(out_path), _Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out_path
