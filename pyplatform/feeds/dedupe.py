"""Duplicate suppression and gap accounting for decoded ticks (sans-I/O, vectorised).

Identity of a tick:

* with a per-symbol sequence number (the simulator's ``sq``): ``(symbol, seq)``;
* without one (iTick): ``(symbol, t, price, volume)``. Policy: two messages identical in
  all four within the dedupe window are one trade. iTick timestamps are milliseconds, so
  two genuine identical prints in the same millisecond are merged; this is the price of
  never writing a re-delivered message twice.

Keys are 64-bit hashes (splitmix64 over the columns' bits, vectorised in NumPy); the recent keys live in a two-level
sorted structure (a big merged array and a small recent one) so membership is a binary
search and inserts are amortised merges, with no per-row Python.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["tick_keys", "Deduper", "SequenceTracker", "missing_rows"]


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-distributed 64-bit hash of 64-bit integers, vectorised."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _combine(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _mix(h * _GOLD + v)


def symbol_hashes(symbol) -> np.ndarray:
    """A stable 64-bit hash per row of a symbol column (hashed once per distinct symbol)."""
    arr = symbol if isinstance(symbol, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(symbol, dtype=object), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = arr.dictionary_encode()
    per_symbol = np.array([zlib.crc32(s.encode()) | (zlib.adler32(s.encode()) << 32)
                           for s in enc.dictionary.to_pylist()], dtype=np.uint64)  # few distinct symbols
    return _mix(per_symbol)[enc.indices.to_numpy(zero_copy_only=False)] if len(arr) else np.empty(0, np.uint64)


def tick_keys(symbol, ts, price, volume, seq=None) -> np.ndarray:
    """uint64 identity keys of ticks (see the module docstring for the policy)."""
    with np.errstate(over="ignore"):
        sym = symbol_hashes(symbol)
        by_value = _combine(_combine(_combine(sym, np.asarray(ts, np.int64).view(np.uint64)),
                                     np.asarray(price, np.float64).view(np.uint64)),
                            np.asarray(volume, np.float64).view(np.uint64))
        if seq is None:
            return by_value
        seq = np.asarray(seq, np.int64)
        by_seq = _combine(sym ^ _GOLD, seq.view(np.uint64))
        return np.where(seq >= 0, by_seq, by_value)


class Deduper:
    """Remembers recent tick keys and filters batches down to the ones not seen yet.

    Parameters
    ----------
    window_ns : int
        Keys whose tick is older than the newest tick seen minus this are forgotten.
    max_keys : int
        Hard cap on remembered keys (newest kept), so memory stays bounded at any rate.
    """

    def __init__(self, window_ns: int = 300 * 10**9, max_keys: int = 2_000_000,
                 merge_at: int = 16_384) -> None:
        self.window_ns = int(window_ns)
        self.max_keys = int(max_keys)
        self._merge_at = merge_at
        self._big_k = np.empty(0, np.uint64)
        self._big_t = np.empty(0, np.int64)
        self._small_k = np.empty(0, np.uint64)
        self._small_t = np.empty(0, np.int64)
        self._newest = np.iinfo(np.int64).min
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._big_k) + len(self._small_k)

    def _seen(self, keys: np.ndarray) -> np.ndarray:
        out = np.zeros(len(keys), bool)
        for arr in (self._big_k, self._small_k):
            if len(arr):
                pos = np.searchsorted(arr, keys)
                pos[pos == len(arr)] = 0
                out |= arr[pos] == keys
        return out

    def filter(self, keys: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Mask of rows to keep (first sighting of their key), and remember them."""
        keys = np.asarray(keys, np.uint64)
        ts = np.asarray(ts, np.int64)
        keep = np.zeros(len(keys), bool)
        if not len(keys):
            return keep
        _, first = np.unique(keys, return_index=True)
        keep[first] = True
        keep &= ~self._seen(keys)
        self.duplicates += int(len(keys) - keep.sum())
        if keep.any():
            self._insert(keys[keep], ts[keep])
        return keep

    def _insert(self, keys: np.ndarray, ts: np.ndarray) -> None:
        self._newest = max(self._newest, int(ts.max()))
        order = np.argsort(keys, kind="stable")
        keys, ts = keys[order], ts[order]
        # merge two sorted arrays by insertion positions: O(n) copying, no re-sort
        pos = np.searchsorted(self._small_k, keys)
        self._small_k = np.insert(self._small_k, pos, keys)
        self._small_t = np.insert(self._small_t, pos, ts)
        if len(self._small_k) >= self._merge_at:
            self._merge()

    def _merge(self) -> None:
        """Fold the small level into the big one: prune expired keys, merge sorted arrays
        by insertion positions (linear, no re-sort), cap the size by dropping the oldest."""
        cutoff = self._newest - self.window_ns
        live_b, live_s = self._big_t >= cutoff, self._small_t >= cutoff
        big_k, big_t = self._big_k[live_b], self._big_t[live_b]
        small_k, small_t = self._small_k[live_s], self._small_t[live_s]
        pos = np.searchsorted(big_k, small_k)
        k, t = np.insert(big_k, pos, small_k), np.insert(big_t, pos, small_t)
        if len(k) > self.max_keys:
            threshold = np.partition(t, len(t) - self.max_keys)[len(t) - self.max_keys]
            keep = t >= threshold  # order (and so sortedness) is preserved
            k, t = k[keep], t[keep]
        self._big_k, self._big_t = k, t
        self._small_k = np.empty(0, np.uint64)
        self._small_t = np.empty(0, np.int64)


class SequenceTracker:
    """Per-symbol sequence accounting over distinct (already deduplicated) messages.

    ``missing`` is the number of sequence numbers between each symbol's lowest and highest
    received that have not been received (a hole filled by a late message closes again);
    ``late`` counts messages that arrived below their symbol's highest sequence so far.
    Work is per batch and per distinct symbol, never per row.
    """

    def __init__(self) -> None:
        self._lo: dict[str, int] = {}
        self._hi: dict[str, int] = {}
        self._n: dict[str, int] = {}
        self.late = 0

    @property
    def missing(self) -> int:
        return sum(self._hi[s] - self._lo[s] + 1 - self._n[s] for s in self._hi)

    def update(self, symbols, seq: np.ndarray) -> None:
        seq = np.asarray(seq, np.int64)
        has = seq >= 0
        if not has.any():
            return
        arr = symbols if isinstance(symbols, (pa.Array, pa.ChunkedArray)) else pa.array(
            np.asarray(symbols, dtype=object), pa.string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        enc = arr.filter(pa.array(has)).dictionary_encode()
        names = enc.dictionary.to_pylist()
        idx = enc.indices.to_numpy(zero_copy_only=False)
        q = seq[has]
        k = len(names)
        prev_hi = np.array([self._hi.get(s, np.iinfo(np.int64).min) for s in names], np.int64)
        # late: below the symbol's running maximum (earlier batches, or earlier rows of this
        # one). Rows are grouped by symbol (stable, so arrival order holds inside a group) and
        # one running maximum over (group << 40 | seq) serves every group at once.
        order = np.argsort(idx, kind="stable")
        qs, ids = q[order], idx[order]
        first = np.r_[True, ids[1:] != ids[:-1]]
        if len(qs) and qs.max() < (1 << 40) and k < (1 << 22):
            packed = (ids.astype(np.int64) << 40) | qs
            prior = np.r_[np.int64(-1), np.maximum.accumulate(packed)[:-1]] - (ids.astype(np.int64) << 40)
            prior[first] = -1
        else:  # sequences too large to pack: per distinct symbol
            prior = np.full(len(qs), -1, np.int64)
            starts = np.flatnonzero(first)
            for a, b in zip(starts, np.r_[starts[1:], len(qs)]):
                prior[a + 1:b] = np.maximum.accumulate(qs[a:b])[:-1]
        self.late += int((qs < np.maximum(prior, prev_hi[ids])).sum())
        count = np.bincount(idx, minlength=k)
        hi = np.full(k, np.iinfo(np.int64).min)
        lo = np.full(k, np.iinfo(np.int64).max)
        np.maximum.at(hi, idx, q)
        np.minimum.at(lo, idx, q)
        for i, s in enumerate(names):  # per distinct symbol
            self._lo[s] = min(self._lo.get(s, int(lo[i])), int(lo[i]))
            self._hi[s] = max(self._hi.get(s, int(hi[i])), int(hi[i]))
            self._n[s] = self._n.get(s, 0) + int(count[i])

    @property
    def last(self) -> dict[str, int]:
        return dict(self._hi)


def missing_rows(candidate: pa.Table, existing: pa.Table) -> np.ndarray:
    """Indices of ``candidate`` ticks not already in ``existing`` (multiset difference).

    Keys are ``(symbol, ts, price, volume)`` with an occurrence number, so two genuine
    identical prints in the cache and one in the table restore exactly one.
    """
    def keyed(t: pa.Table) -> pd.DataFrame:
        k = tick_keys(t.column("symbol").to_numpy(zero_copy_only=False), t.column("ts").to_numpy(),
                      t.column("price").to_numpy(), t.column("volume").to_numpy())
        f = pd.DataFrame({"k": k})
        f["n"] = f.groupby("k").cumcount()
        return f

    c, e = keyed(candidate), keyed(existing)
    merged = c.reset_index().merge(e, on=["k", "n"], how="left", indicator=True)
    return np.sort(merged.loc[merged["_merge"] == "left_only", "index"].to_numpy())
