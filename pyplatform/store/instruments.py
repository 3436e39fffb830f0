"""The ``instruments`` table: one row per symbol with its asset class and conventions."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from pyplatform.domain.instruments import Instrument
from pyplatform.fsio import atomic_write
from pyplatform.store.locking import writer_lock

__all__ = ["EMPTY_INSTRUMENTS", "instruments_frame", "merge_instruments", "read_instruments", "write_instruments"]

_COLUMNS = {"symbol": "object", "asset_class": "object", "sector": "object", "currency": "object",
            "tick_size": "float64", "lot_size": "float64"}

EMPTY_INSTRUMENTS = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _COLUMNS.items()})


def instruments_frame(instruments) -> pd.DataFrame:
    """Instruments (list of :class:`Instrument` or a frame with at least ``symbol``) as a frame."""
    if isinstance(instruments, pd.DataFrame):
        frame = instruments.copy()
    else:
        frame = pd.DataFrame([{
            "symbol": i.symbol, "asset_class": i.asset_class.value, "sector": i.sector,
            "currency": i.currency, "tick_size": i.tick_size, "lot_size": i.lot_size,
        } for i in instruments if isinstance(i, Instrument)] or None, columns=list(_COLUMNS))
    if "symbol" not in frame:
        raise ValueError(f"instruments need a 'symbol' column, got {list(frame.columns)}")
    for c, t in _COLUMNS.items():
        if c not in frame:
            frame[c] = "" if t == "object" else float("nan")
    return frame[list(_COLUMNS)].astype(_COLUMNS)


def merge_instruments(current: pd.DataFrame, new) -> pd.DataFrame:
    """``current`` with ``new``'s rows replacing those of the same symbol, sorted by symbol."""
    add = instruments_frame(new)
    out = pd.concat([current[~current["symbol"].isin(add["symbol"])], add], ignore_index=True)
    return out.sort_values("symbol", kind="stable").reset_index(drop=True)


def read_instruments(root: Path) -> pd.DataFrame:
    """The instruments kept under a store directory (empty frame if none were written)."""
    path = Path(root) / "instruments.parquet"
    if not path.exists():
        return EMPTY_INSTRUMENTS.copy()
    return pd.read_parquet(path)


def write_instruments(root: Path, instruments, durable: bool = True) -> int:
    """Upsert ``instruments`` into ``root/instruments.parquet`` (replaced atomically, one writer
    at a time); return the number of instruments kept."""
    root = Path(root)
    with writer_lock(root / ".instruments.lock"):
        frame = merge_instruments(read_instruments(root), instruments)
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        atomic_write(root / "instruments.parquet", buf.getvalue(), durable=durable)
    return len(frame)
