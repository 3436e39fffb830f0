"""Render tape batches as iTick JSON messages, column-wise (pyarrow string kernels)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyplatform.feeds.simulator.tape import TapeBatch

__all__ = ["render_ticks", "render_quotes", "render_depth"]


def _num(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def render_ticks(batch: TapeBatch, symbols: pa.Array, with_seq: bool = True) -> list[bytes]:
    """One iTick ``tick`` message per row; ``sq`` (per-symbol sequence) is the simulator's
    documented extension and can be left out to speak plain iTick."""
    if not len(batch):
        return []
    parts = ['{"code":1,"data":{"s":"', symbols.take(pa.array(batch.sym)), '","ld":', _num(batch.price),
             ',"v":', _num(batch.volume), ',"t":', _num(batch.ts // 1_000_000)]
    if with_seq:
        parts += [',"sq":', _num(batch.seq)]
    parts += [',"type":"tick"}}', ""]
    return pc.binary_join_element_wise(*parts).cast(pa.binary()).to_pylist()


def render_quotes(sym: np.ndarray, symbols: pa.Array, last, open_, high, low, volume, turnover,
                  t_ms: int) -> list[bytes]:
    """One iTick ``quote`` message per symbol index in ``sym`` (day OHLC, volume, turnover)."""
    if not len(sym):
        return []
    take = pa.array(sym)
    return pc.binary_join_element_wise(
        '{"code":1,"data":{"s":"', symbols.take(take), '","ld":', _num(last[sym]), ',"o":', _num(open_[sym]),
        ',"h":', _num(high[sym]), ',"l":', _num(low[sym]), ',"t":', str(int(t_ms)), ',"v":', _num(volume[sym]),
        ',"tu":', _num(np.round(turnover[sym], 3)), ',"ts":0,"type":"quote"}}', "",
    ).cast(pa.binary()).to_pylist()


def render_depth(sym: np.ndarray, symbols: list[str], price: np.ndarray, decimals: np.ndarray,
                 lot: np.ndarray, levels: int, rng: np.random.Generator, t_ms: int) -> list[bytes]:
    """One iTick ``depth`` message per symbol (``levels`` asks and bids around the price).

    One message per *symbol* per publishing cycle, so plain Python formatting is fine here.
    """
    out = []
    for i in sym:
        tick = 10.0 ** -int(decimals[i])
        p = float(price[i])
        asks, bids = [], []
        for k in range(1, levels + 1):
            va = float(rng.integers(1, 50) * lot[i])
            vb = float(rng.integers(1, 50) * lot[i])
            asks.append({"po": k, "p": round(p + k * tick, int(decimals[i])), "v": va, "o": int(rng.integers(1, 9))})
            bids.append({"po": k, "p": round(max(p - k * tick, tick), int(decimals[i])), "v": vb,
                         "o": int(rng.integers(1, 9))})
        msg = {"code": 1, "data": {"s": symbols[i], "a": asks, "b": bids, "t": int(t_ms), "type": "depth"}}
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out
