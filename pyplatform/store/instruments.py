"""The ``instruments`` table: one row per symbol with its asset class and conventions."""

from __future__ import annotations

import pandas as pd

from pyplatform.domain.instruments import Instrument

__all__ = ["EMPTY_INSTRUMENTS", "instruments_frame", "merge_instruments"]

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
