"""Training learned factors in research, walk-forward so no fold sees its future.

Features are a frame indexed by (datetime, symbol) with one column per input factor; the
target is a forward return aligned to the same index. Splits are by *date*, never by row,
with an embargo of at least the target's horizon between the last training date and the
first test date, because a forward return over ``h`` periods leaks ``h`` dates ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["walk_forward_splits", "make_estimator", "train_walk_forward", "TrainedModel"]


def walk_forward_splits(dates, n_splits: int = 4, min_train: int | None = None,
                        embargo: int = 1) -> Iterator[tuple[pd.DatetimeIndex, pd.DatetimeIndex]]:
    """Expanding-window walk-forward splits over unique dates.

    Parameters
    ----------
    dates : array-like of datetime
        Dates (repeats allowed; they are de-duplicated and sorted).
    n_splits : int
        Number of consecutive test blocks.
    min_train : int, optional
        Dates in the first training window (default: half of the dates).
    embargo : int
        Dates dropped between each training window and its test block; use at least the
        forward-return horizon of the target.

    Yields
    ------
    (train_dates, test_dates)
        Every train date is strictly earlier than every test date, by more than ``embargo``.
    """
    u = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(dates))).sort_values()
    n = len(u)
    if n_splits < 1:
        raise ValueError("n_splits must be >= 1")
    min_train = n // 2 if min_train is None else int(min_train)
    test_len = (n - min_train - embargo) // n_splits
    if min_train < 2 or test_len < 1:
        raise ValueError(f"not enough dates ({n}) for {n_splits} splits with min_train={min_train}, embargo={embargo}")
    for k in range(n_splits):
        train_end = min_train + k * test_len
        test_start = train_end + embargo
        test_end = n if k == n_splits - 1 else test_start + test_len
        yield u[:train_end], u[test_start:test_end]


def make_estimator(kind: str = "mlp", seed: int = 0) -> Pipeline:
    """A scaler + estimator pipeline that exports cleanly to ONNX.

    ``mlp``: a small neural network (two hidden layers); ``linear``: ridge regression.
    (Gradient-boosted trees train fine but skl2onnx's tree converter does not work with the
    pinned onnx release, so the exportable families are these two.)
    """
    if kind == "mlp":
        est = MLPRegressor(hidden_layer_sizes=(32, 16), alpha=1e-3, max_iter=300,
                           early_stopping=True, random_state=seed)
    elif kind == "linear":
        est = Ridge(alpha=1.0)
    else:
        raise ValueError(f"unknown model kind {kind!r}: choose 'mlp' or 'linear'")
    return make_pipeline(StandardScaler(), est)


@dataclass
class TrainedModel:
    """A model trained walk-forward: the final estimator plus out-of-sample predictions."""

    estimator: Pipeline
    features: list[str]
    oos_predictions: pd.Series
    folds: list[dict] = field(default_factory=list)
    kind: str = "mlp"

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        arr = X[self.features].to_numpy(np.float32) if isinstance(X, pd.DataFrame) else np.asarray(X, np.float32)
        return self.estimator.predict(arr).astype(np.float32)


def _xy(features: pd.DataFrame, target: pd.Series):
    data = features.join(target.rename("__y__"), how="inner").replace([np.inf, -np.inf], np.nan).dropna()
    return data[features.columns], data["__y__"]


def train_walk_forward(features: pd.DataFrame, target: pd.Series, kind: str = "mlp", n_splits: int = 4,
                       embargo: int = 1, min_train: int | None = None, seed: int = 0) -> TrainedModel:
    """Train walk-forward and refit on everything for serving.

    Returns the final model and the concatenated out-of-sample predictions of every fold,
    which is what should be evaluated (IC, quantile returns) — never in-sample fits.
    """
    if features.index.nlevels != 2:
        raise TypeError("features must be indexed by (datetime, symbol)")
    X, y = _xy(features, target)
    if X.empty:
        raise ValueError("no rows where every feature and the target are present")
    dates = X.index.get_level_values(0)
    preds, folds = [], []
    for train_d, test_d in walk_forward_splits(dates, n_splits, min_train, embargo):
        tr, te = dates.isin(train_d), dates.isin(test_d)
        est = make_estimator(kind, seed).fit(X[tr].to_numpy(np.float32), y[tr].to_numpy())
        p = pd.Series(est.predict(X[te].to_numpy(np.float32)), index=X.index[te])
        preds.append(p)
        folds.append({"train_start": str(train_d[0]), "train_end": str(train_d[-1]),
                      "test_start": str(test_d[0]), "test_end": str(test_d[-1]),
                      "n_train": int(tr.sum()), "n_test": int(te.sum())})
    final = make_estimator(kind, seed).fit(X.to_numpy(np.float32), y.to_numpy())
    return TrainedModel(final, list(features.columns), pd.concat(preds).sort_index().rename("prediction"),
                        folds, kind)
