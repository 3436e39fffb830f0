"""Serving ONNX models per batch: ONNX Runtime on CPU, TensorRT (FP16/INT8) on an NVIDIA GPU.

The device is configuration (``Settings.inference_device`` or the ``device`` argument):

* ``cpu``: ``CPUExecutionProvider``;
* ``gpu``: ``TensorrtExecutionProvider`` (then CUDA, then CPU for unsupported nodes), with
  ``precision`` ``fp32``, ``fp16`` or ``int8`` (INT8 expects a QDQ model from
  :func:`pyplatform.models.export.quantize_int8`);
* ``auto``: the GPU providers when ONNX Runtime reports them, otherwise CPU.

The provider actually used is reported in :attr:`OnnxModel.provider` and logged at start,
because ONNX Runtime silently falls back to CPU when a GPU provider cannot load.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["OnnxModel", "gpu_available"]

log = logging.getLogger(__name__)


def gpu_available() -> bool:
    """True when ONNX Runtime can see the TensorRT or CUDA execution provider."""
    import onnxruntime as ort

    avail = ort.get_available_providers()
    return "TensorrtExecutionProvider" in avail or "CUDAExecutionProvider" in avail


class OnnxModel:
    """An ONNX model session with batched float32 prediction.

    Parameters
    ----------
    path : path to the ``.onnx`` file
    device : ``"cpu"``, ``"gpu"`` or ``"auto"``
    precision : ``"fp32"``, ``"fp16"`` or ``"int8"`` (GPU/TensorRT only; on CPU an INT8 QDQ
        model runs as is)
    threads : intra-op threads on CPU (1 keeps the live engine to one core)
    """

    def __init__(self, path: str | Path, device: str = "cpu", precision: str = "fp32", threads: int = 1,
                 cache_dir: str | Path | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"model file not found: {self.path}")
        if device not in ("cpu", "gpu", "auto"):
            raise ValueError(f"device must be cpu, gpu or auto, got {device!r}")
        if precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"precision must be fp32, fp16 or int8, got {precision!r}")
        providers: list = ["CPUExecutionProvider"]
        want_gpu = device == "gpu" or (device == "auto" and gpu_available())
        if want_gpu:
            if not gpu_available():
                raise RuntimeError("device='gpu' but ONNX Runtime has no TensorRT/CUDA provider "
                                   "(install the 'gpu' extra on a machine with an NVIDIA GPU)")
            trt_opts = {
                "trt_fp16_enable": precision == "fp16",
                "trt_int8_enable": precision == "int8",
                "trt_engine_cache_enable": cache_dir is not None,
            }
            if cache_dir is not None:
                trt_opts["trt_engine_cache_path"] = str(cache_dir)
            providers = [("TensorrtExecutionProvider", trt_opts), "CUDAExecutionProvider", "CPUExecutionProvider"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        self.provider = self.session.get_providers()[0]
        self.precision = precision if want_gpu else ("int8" if self._is_qdq() else "fp32")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.n_features = inp.shape[1] if isinstance(inp.shape[1], int) else None
        log.info("model %s served by %s (%s)", self.path.name, self.provider, self.precision)

    def _is_qdq(self) -> bool:
        import onnx

        return any(n.op_type == "QuantizeLinear" for n in onnx.load(str(self.path)).graph.node)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict one value per row of ``X`` ([N, F], float32). Rows with NaN give NaN."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or (self.n_features and X.shape[1] != self.n_features):
            raise ValueError(f"expected input of shape [N, {self.n_features}], got {X.shape}")
        out = np.full(len(X), np.nan, dtype=np.float32)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            out[ok] = self.session.run(None, {self.input_name: X[ok]})[0].reshape(-1)
        return out
