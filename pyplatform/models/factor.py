"""Model factors: an ONNX model fed by factor expressions, in research and in the live engine.

A model factor is ``(name, model file, input expressions)``. Research computes the inputs
with the batch runtime and predicts over the whole frame; the live engine computes the same
inputs incrementally as hidden factors of a :class:`~pyplatform.factors.FactorEngine` and
predicts each micro-batch with ONNX Runtime. Both call the same :class:`OnnxModel`, so batch
and stream agree exactly when the input factors do (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.models.serving import OnnxModel

__all__ = ["ModelFactorSpec", "ModelEngine", "model_factor_batch", "train_model_factor", "TrainResult"]


@dataclass(frozen=True)
class ModelFactorSpec:
    name: str
    model_path: str
    inputs: tuple[str, ...]
    device: str = "cpu"
    precision: str = "fp32"

    def hidden(self, i: int) -> str:
        return f"_{self.name}__in{i}"


def model_factor_batch(spec: ModelFactorSpec, frame: pd.DataFrame, model: OnnxModel | None = None) -> pd.Series:
    """Research runtime: inputs by the batch compiler, one prediction per row of ``frame``."""
    from pyplatform.factors import parse
    from pyplatform.research.session import compute

    X = np.column_stack([compute(parse(e, columns=set(frame.columns)), frame).to_numpy(np.float32)
                         for e in spec.inputs])
    model = model or OnnxModel(spec.model_path, spec.device, spec.precision)
    return pd.Series(model.predict(X), index=frame.index, name=spec.name)


class ModelEngine:
    """A FactorEngine plus model factors evaluated per micro-batch.

    Expression factors behave exactly as in the wrapped engine; each model factor adds its
    inputs as hidden factors and outputs one column with the model's prediction.
    """

    def __init__(self, engine, models: list[ModelFactorSpec] = ()) -> None:
        self.engine = engine
        self.models: dict[str, tuple[ModelFactorSpec, OnnxModel]] = {}
        for spec in models:
            self.add_model(spec)

    # expression factors pass through (so a RegistryWatcher can drive this object)
    def add_factor(self, name, text, history=None):
        return self.engine.add_factor(name, text, history=history)

    def remove_factor(self, name):
        return self.engine.remove_factor(name)

    @property
    def factors(self) -> dict[str, str]:
        return {k: v for k, v in self.engine.factors.items() if not k.startswith("_")}

    def add_published_model(self, version, history: pd.DataFrame | None = None) -> None:
        """Start a published model version (a registry ``FactorVersion`` of kind ``model``);
        what a :class:`~pyplatform.registry.watcher.RegistryWatcher` calls."""
        self.add_model(ModelFactorSpec(version.name, version.model_path, tuple(version.inputs)), history=history)

    def add_model(self, spec: ModelFactorSpec, history: pd.DataFrame | None = None) -> None:
        if spec.name in self.models or spec.name in self.engine.factors:
            raise ValueError(f"factor {spec.name!r} already exists")
        model = OnnxModel(spec.model_path, spec.device, spec.precision)
        if model.n_features and model.n_features != len(spec.inputs):
            raise ValueError(f"model {spec.model_path} takes {model.n_features} inputs, "
                             f"{len(spec.inputs)} expressions given")
        added = []
        try:
            for i, e in enumerate(spec.inputs):
                self.engine.add_factor(spec.hidden(i), e, history=history)
                added.append(spec.hidden(i))
        except Exception:
            for h in added:
                self.engine.remove_factor(h)
            raise
        self.models[spec.name] = (spec, model)

    def remove_model(self, name: str) -> None:
        spec, _ = self.models.pop(name)
        for i in range(len(spec.inputs)):
            self.engine.remove_factor(spec.hidden(i))

    def feed(self, batch) -> pa.Table:
        out = self.engine.feed(batch)
        for name, (spec, model) in self.models.items():
            X = np.column_stack([out.column(spec.hidden(i)).to_numpy(zero_copy_only=False)
                                 for i in range(len(spec.inputs))]).astype(np.float32)
            out = out.append_column(name, pa.array(model.predict(X).astype(np.float64)))
        keep = [c for c in out.column_names if not c.startswith("_")]
        return out.select(keep)

    def snapshot(self) -> bytes:
        return self.engine.snapshot()

    def restore(self, blob: bytes) -> None:
        self.engine.restore(blob)


@dataclass
class TrainResult:
    name: str
    model_path: Path
    int8_path: Path | None
    folds: list
    evaluation: dict
    int8_rel_error: float | None = None
    version: int | None = None
    extras: dict = field(default_factory=dict)

    def summary(self) -> str:
        ic = self.evaluation.get("ic", {}).get("1p", {})
        lines = [f"model factor {self.name}: {self.model_path}",
                 f"  walk-forward folds: {len(self.folds)}; out-of-sample rank IC (1p) "
                 f"mean={ic.get('ic_mean')} t={ic.get('t_stat')}"]
        if self.int8_path:
            q = self.extras.get("int8", {})
            lines.append(f"  INT8 model: {self.int8_path} (vs FP32: mean relative error {self.int8_rel_error:.3%}, "
                         f"error/spread {q.get('error_vs_spread', float('nan')):.3%}, "
                         f"rank correlation {q.get('rank_corr', float('nan')):.4f})")
        if self.version:
            lines.append(f"  published as version {self.version}")
        return "\n".join(lines)


def train_model_factor(name: str, inputs, horizon: int = 5, kind: str = "mlp", symbols=None, start=None,
                       end=None, int8: bool = True, publish: bool = False, author: str | None = None,
                       settings=None, n_splits: int = 3) -> TrainResult:
    """Train a model factor walk-forward on daily bars, export ONNX, optionally publish it.

    The target is each symbol's forward return over ``horizon`` bars; folds are separated
    by an embargo of ``horizon`` dates. Evaluation uses out-of-sample predictions only.
    """
    import getpass

    from pyplatform.models.export import export_onnx, quantize_int8
    from pyplatform.models.training import train_walk_forward
    from pyplatform.research import session
    from pyplatform.research.evaluation import evaluate

    s = session.settings_for(settings)
    parsed = [session.resolve(i, s)[1] for i in inputs]  # each input parsed once
    exprs = tuple(str(e) for e in parsed)
    frame = session.bars(symbols, start, end, freq="1d", settings=s)
    if frame.empty:
        raise ValueError("no daily bars to train on: generate or import data first")
    feats = pd.DataFrame({f"x{i}": session.compute(e, frame) for i, e in enumerate(parsed)})
    close = frame["close"]
    target = close.groupby(level="symbol").shift(-horizon) / close - 1.0
    tm = train_walk_forward(feats, target, kind=kind, n_splits=n_splits, embargo=horizon)
    out_dir = s.path("models", name)
    model_path = export_onnx(tm, len(exprs), out_dir / "model.onnx")
    ev = evaluate(tm.oos_predictions, close.unstack("symbol"), horizons=(1, horizon), name=name).to_dict()
    res = TrainResult(name, model_path, None, tm.folds, ev)
    if int8:
        X = feats.dropna().to_numpy(np.float32)
        res.int8_path = quantize_int8(model_path, X[-5000:], out_dir / "model.int8.onnx")
        from pyplatform.models.export import precision_loss

        loss = precision_loss(OnnxModel(model_path).predict(X), OnnxModel(res.int8_path).predict(X))
        res.int8_rel_error = loss["rel_error"]
        res.extras["int8"] = loss
    if publish:
        # validation as for expression factors: the live engine must agree with research
        spec = ModelFactorSpec(name, str(model_path), exprs)
        check = _model_stream_vs_batch(spec, frame.loc[frame.index.get_level_values(0) >=
                                                       frame.index.get_level_values(0).max() - pd.Timedelta(days=120)])
        if check["mismatches"]:
            raise ValueError(f"model factor {name!r}: stream and batch disagree on {check['mismatches']} rows")
        v = session.registry(s).add_version(
            name, f"model({', '.join(exprs)})", author or getpass.getuser(), kind="model",
            model_path=str(model_path), inputs=exprs, evaluation=ev, validation=check,
            description=f"{kind} model on {len(exprs)} factors, target {horizon}-bar forward return")
        res.version = v.version
    return res


def _model_stream_vs_batch(spec: ModelFactorSpec, frame: pd.DataFrame, batch_rows: int = 61) -> dict:
    from pyplatform.factors import FactorEngine
    from pyplatform.research.publishing import agreement, engine_column
    from pyplatform.research.session import engine_input

    batch = model_factor_batch(spec, frame)
    eng = ModelEngine(FactorEngine(), [spec])
    table = engine_input(frame)
    out = pa.concat_tables([eng.feed(table.slice(i, batch_rows)) for i in range(0, table.num_rows, batch_rows)])
    return agreement(batch, engine_column(out, spec.name), tolerance=1e-6)
