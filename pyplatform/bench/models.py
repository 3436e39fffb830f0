"""``pyplatform bench models``: model-factor inference per batch, ONNX Runtime vs the framework.

Prints latency percentiles and throughput per batch size for the exported model under
ONNX Runtime (CPU; and TensorRT FP16/INT8 when a GPU is present), beside scikit-learn's own
``predict`` on the same batches, as a ratio. The device is named in the output.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from pyplatform.bench.report import machine_line

if TYPE_CHECKING:
    import numpy as np

__all__ = ["register", "run_model_bench"]


def _time(fn, X, repeats: int) -> np.ndarray:
    import numpy as np

    fn(X)  # warm
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        fn(X)
        out[i] = time.perf_counter_ns() - t0
    return out


def run_model_bench(batch_sizes=(1, 100, 5000), n_features: int = 10, repeats: int = 200, seed: int = 0,
                    n_rows: int = 20_000) -> list[dict]:
    """Latency and throughput per batch size of the exported model beside scikit-learn's ``predict``.

    Parameters
    ----------
    batch_sizes : sequence of int
        Rows per timed call.
    n_features : int
        Model inputs.
    repeats : int
        Timed calls per batch size and runtime (after one warm call).
    seed : int
        Seed of the synthetic training data.
    n_rows : int
        Training rows (the first 5,000 also calibrate INT8 and measure its error).

    Returns
    -------
    list of dict
        One row per batch size and runtime: percentiles in microseconds, rows/s, the ratio
        to scikit-learn and the mean relative error against the FP32 model.
    """
    import tempfile

    import numpy as np

    from pyplatform.models.export import export_onnx, quantize_int8
    from pyplatform.models.serving import OnnxModel, gpu_available
    from pyplatform.models.training import make_estimator

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    y = X @ rng.normal(size=n_features) + np.tanh(X[:, 0]) + rng.normal(0, 0.1, len(X))
    est = make_estimator("mlp", seed).fit(X, y)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        fp32 = export_onnx(est, n_features, f"{d}/m.onnx")
        int8 = quantize_int8(fp32, X[:5000], f"{d}/m.int8.onnx")
        variants = [("onnxruntime-cpu-fp32", OnnxModel(fp32, "cpu")), ("onnxruntime-cpu-int8", OnnxModel(int8, "cpu"))]
        if gpu_available():
            variants += [("tensorrt-fp16", OnnxModel(fp32, "gpu", "fp16")), ("tensorrt-int8", OnnxModel(int8, "gpu", "int8"))]
        ref_all = est.predict(X)
        for bs in batch_sizes:
            Xb = X[:bs]
            base = _time(est.predict, Xb, repeats)
            for label, m in variants:
                t = _time(m.predict, Xb, repeats)
                err = float(np.abs(m.predict(X[:5000]) - ref_all[:5000]).mean() / np.abs(ref_all[:5000]).mean())
                rows.append({"batch": bs, "runtime": label, "device": m.provider,
                             "p50_us": np.median(t) / 1e3, "p99_us": np.percentile(t, 99) / 1e3,
                             "rows_per_s": bs / (np.median(t) / 1e9),
                             "sklearn_p50_us": np.median(base) / 1e3,
                             "speedup_vs_sklearn": np.median(base) / np.median(t),
                             "mean_rel_err_vs_fp32": err})
    return rows


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_bench(
        repeats: int = typer.Option(200, help="Timed calls per batch size (medians reported)."),
        features: int = typer.Option(10, help="Model inputs (factor values)."),
        quick: bool = typer.Option(False, "--quick", help="2,000 training rows, batches of 1 and 100, 5 calls each "
                                                          "(a smoke test of the command, not figures)."),
    ) -> None:
        """Model-factor inference latency/throughput per batch beside scikit-learn's own predict."""
        from rich.console import Console
        from rich.table import Table

        batch_sizes = (1, 100, 5000)
        if quick:
            repeats, batch_sizes = 5, (1, 100)
        rows = run_model_bench(batch_sizes=batch_sizes, n_features=features, repeats=repeats,
                               n_rows=2_000 if quick else 20_000)
        con = Console(width=160)
        con.print(f"{machine_line()}; model: MLP(32,16) on {features} factor inputs; medians of {repeats} calls")
        t = Table("batch", "runtime", "device", "p50 µs", "p99 µs", "rows/s", "sklearn p50 µs",
                  "speed-up vs sklearn", "mean rel. error vs FP32")
        for r in rows:
            t.add_row(str(r["batch"]), r["runtime"], r["device"], f"{r['p50_us']:,.1f}", f"{r['p99_us']:,.1f}",
                      f"{r['rows_per_s']:,.0f}", f"{r['sklearn_p50_us']:,.1f}", f"{r['speedup_vs_sklearn']:.1f}x",
                      f"{r['mean_rel_err_vs_fp32']:.3%}")
        con.print(t)
