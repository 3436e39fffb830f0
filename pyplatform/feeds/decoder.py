"""Batch decoder for iTick WebSocket frames (sans-I/O).

Frames received in one event-loop slice are decoded together: the lines are joined and
parsed by pyarrow's C++ JSON reader against :data:`~pyplatform.feeds.schemas.WIRE_SCHEMA`,
then split into ticks/quotes/depth with vectorised masks. Only when a batch contains a line
the fast reader rejects is it bisected down to small groups parsed line by line with
:mod:`json`, so one malformed message costs a few extra parses, never the stream.
Control messages (ack, auth, subscribe answers, pong) are rare and handled per message.

Policy for bad input: a malformed or unknown message is counted, a few samples are kept
and logged (first 200 characters), and decoding goes on with the next message.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pyplatform.feeds.messages import DATA_TYPES, ControlEvent, parse_control
from pyplatform.feeds.schemas import DEPTH, QUOTES, WIRE_SCHEMA, WIRE_TICKS

__all__ = ["Decoded", "FeedDecoder"]

log = logging.getLogger(__name__)

_PARSE = pj.ParseOptions(explicit_schema=WIRE_SCHEMA, unexpected_field_behavior="ignore",
                         newlines_in_values=False)
_MS = 1_000_000  # ms -> ns
_SMALL = 16  # below this many lines a rejected group is parsed line by line


@dataclass
class Decoded:
    """What one batch of frames decoded to."""

    ticks: pa.Table  #: :data:`WIRE_TICKS` (table columns + ``seq``)
    quotes: pa.Table  #: ``QUOTES``
    depth: pa.Table  #: :data:`DEPTH`
    events: list[ControlEvent] = field(default_factory=list)
    messages: int = 0
    rejected: int = 0


class FeedDecoder:
    """Decode batches of iTick frames into columnar tables and control events.

    Parameters
    ----------
    symbols : iterable of str, optional
        Subscribed platform symbols (``AAPL.US``). Data for other symbols is counted as
        ``unexpected_symbol`` and dropped; a pushed code without region (``AAPL``) is
        matched to the one subscription with that code. ``None`` accepts any symbol.
    sample_size : int
        How many samples of rejected messages to keep (and log) per reason.
    """

    def __init__(self, symbols: Iterable[str] | None = None, sample_size: int = 5) -> None:
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, deque[str]] = {}
        self._sample_size = sample_size
        self._symbols: dict[str, str] | None = None
        if symbols is not None:
            self.set_symbols(symbols)

    # -- configuration ----------------------------------------------------------------
    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Replace the subscribed symbol set (pushed spelling -> platform symbol)."""
        mapping: dict[str, str] = {}
        by_code: dict[str, list[str]] = {}
        for sym in symbols:
            mapping[sym.upper()] = sym
            by_code.setdefault(sym.rpartition(".")[0].upper(), []).append(sym)
        for code, syms in by_code.items():
            if len(syms) == 1 and code not in mapping:
                mapping[code] = syms[0]
        self._symbols = mapping

    # -- decoding -----------------------------------------------------------------------
    def decode(self, frames: Sequence[str | bytes], now_ns: int) -> Decoded:
        """Decode ``frames`` (text frames as received); ``now_ns`` stamps depth without ``t``."""
        lines = _split_lines(frames)
        self.counts["messages"] += len(lines)
        parts: list[pa.Table] = []
        kept: list[bytes] = []
        rejected = self._parse(lines, parts, kept)
        out = Decoded(ticks=WIRE_TICKS.empty_table(), quotes=QUOTES.empty_table(),
                      depth=DEPTH.empty_table(), messages=len(lines), rejected=rejected)
        if parts:
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            self._extract(table, kept, now_ns, out)
        return out

    def _reject(self, reason: str, line: bytes | str) -> None:
        self.counts[reason] += 1
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        samples = self.samples.setdefault(reason, deque(maxlen=self._sample_size))
        if len(samples) < self._sample_size:
            log.warning("feed: %s message (count=%d): %.200s", reason, self.counts[reason], text)
        samples.append(text[:200])

    def _parse(self, lines: list[bytes], parts: list[pa.Table], kept: list[bytes]) -> int:
        """Parse ``lines`` into ``parts`` (WIRE_SCHEMA tables), ``kept`` aligned with their rows."""
        if not lines:
            return 0
        buf = b"\n".join(lines)
        # the C++ reader has a fixed cost of a few hundred microseconds: tiny groups go
        # straight to json.loads (also the bisection's base case)
        try:
            if len(lines) <= _SMALL:
                raise pa.ArrowInvalid("small group")
            table = pj.read_json(io.BytesIO(buf), parse_options=_PARSE, read_options=pj.ReadOptions(
                use_threads=False, block_size=len(buf) + 1))
            if table.num_rows == len(lines):
                parts.append(table)
                kept.extend(lines)
                return 0
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if len(lines) > _SMALL:
            mid = len(lines) // 2
            return self._parse(lines[:mid], parts, kept) + self._parse(lines[mid:], parts, kept)
        rejected = 0
        rows = []
        for line in lines:
            obj = self._parse_one(line)
            if obj is None:
                rejected += 1
            else:
                rows.append(obj)
                kept.append(line)
        if rows:
            parts.append(pa.Table.from_pylist(rows, schema=WIRE_SCHEMA))
        return rejected

    def _parse_one(self, line: bytes) -> dict | None:
        """One line the fast path rejected: a normalised dict, or ``None`` (counted)."""
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            self._reject("malformed", line)
            return None
        if not isinstance(obj, dict):
            self._reject("malformed", line)
            return None
        try:
            return _normalise(obj)
        except (TypeError, ValueError, OverflowError) as exc:
            self._reject("malformed", f"{exc}: {line.decode('utf-8', 'replace')}")
            return None

    def _extract(self, table: pa.Table, lines: list[bytes], now_ns: int, out: Decoded) -> None:
        data = table.column("data").combine_chunks()
        typ = pc.fill_null(data.field("type"), "")
        is_data = pc.is_in(typ, value_set=pa.array(DATA_TYPES)).to_numpy(zero_copy_only=False)
        if not is_data.all():
            has_status = pc.or_(table.column("resAc").is_valid(), table.column("msg").is_valid())
            has_status = pc.or_(has_status, table.column("code").is_valid()).to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(~is_data):
                event = parse_control(json.loads(lines[i])) if has_status[i] else None
                if event is None:
                    self._reject("unknown", lines[i])
                else:
                    self.counts["control"] += 1
                    out.events.append(event)
        typ_np = typ.to_numpy(zero_copy_only=False)
        for kind in DATA_TYPES:
            idx = np.flatnonzero(typ_np == kind)
            if len(idx):
                rows = data.take(pa.array(idx))
                getattr(self, f"_{kind}")(rows, idx, lines, now_ns, out)

    # Each builder validates its rows vectorised; rows failing a check are rejected by index.
    def _valid_symbols(self, rows: pa.StructArray, ok: np.ndarray, idx, lines, kind: str):
        s = rows.field("s")
        ok &= s.is_valid().to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(~ok):
            self._reject(f"malformed_{kind}", lines[idx[i]])
        if self._symbols is None:
            return ok, s
        uniq = pc.unique(pc.utf8_upper(s)).to_pylist()
        mapping = {u: self._symbols.get(u) for u in uniq if u is not None}
        keys = [k for k, v in mapping.items() if v is not None]
        pos = pc.index_in(pc.utf8_upper(s), value_set=pa.array(keys, pa.string()))
        known = pos.is_valid().to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(ok & ~known):
            self._reject("unexpected_symbol", lines[idx[i]])
        ok &= known
        mapped = pa.array([mapping[k] for k in keys] or [""], pa.string()).take(pc.fill_null(pos, 0))
        return ok, mapped

    def _tick(self, rows, idx, lines, now_ns, out) -> None:
        price = _f64(rows.field("ld"))
        vol = _f64(rows.field("v"))
        t = rows.field("t")
        ok = np.isfinite(price) & (price > 0) & np.isfinite(vol) & (vol >= 0)
        ok &= t.is_valid().to_numpy(zero_copy_only=False)
        ok, sym = self._valid_symbols(rows, ok, idx, lines, "tick")
        keep = pa.array(np.flatnonzero(ok))
        n = len(keep)
        self.counts["ticks"] += n
        seq = pc.fill_null(rows.field("sq"), -1).take(keep)
        out.ticks = pa.Table.from_arrays([
            pc.multiply(pc.fill_null(t, 0).take(keep), _MS), sym.take(keep),
            pa.array(price[ok]), pa.array(vol[ok]), pa.array(np.zeros(n, np.int8)),
            pa.array(np.full(n, np.nan)), pa.array(np.full(n, np.nan)), seq,
        ], schema=WIRE_TICKS)

    def _quote(self, rows, idx, lines, now_ns, out) -> None:
        last = _f64(rows.field("ld"))
        t = rows.field("t")
        ok = np.isfinite(last) & (last > 0) & t.is_valid().to_numpy(zero_copy_only=False)
        ok, sym = self._valid_symbols(rows, ok, idx, lines, "quote")
        keep = pa.array(np.flatnonzero(ok))
        n = len(keep)
        self.counts["quotes"] += n
        col = lambda name, fill: pa.array(np.nan_to_num(_f64(rows.field(name)), nan=fill)[ok])  # noqa: E731
        nan = pa.array(np.full(n, np.nan))
        out.quotes = pa.Table.from_arrays([
            pc.multiply(pc.fill_null(t, 0).take(keep), _MS), sym.take(keep), pa.array(last[ok]),
            pa.array(_f64(rows.field("o"))[ok]), pa.array(_f64(rows.field("h"))[ok]),
            pa.array(_f64(rows.field("l"))[ok]), col("v", 0.0), col("tu", 0.0), nan, nan,
            pa.array(np.zeros(n)), pa.array(np.zeros(n)),
        ], schema=QUOTES)

    def _depth(self, rows, idx, lines, now_ns, out) -> None:
        ok = np.ones(len(rows), bool)
        sides = []
        for name, side in (("b", 1), ("a", -1)):
            lists = rows.field(name)
            parents = pc.list_parent_indices(lists).to_numpy()
            flat = pc.list_flatten(lists)
            p, v = _f64(flat.field("p")), _f64(flat.field("v"))
            po = flat.field("po")
            bad = ~(np.isfinite(p) & (p > 0) & np.isfinite(v) & (v >= 0)) | ~po.is_valid().to_numpy(zero_copy_only=False)
            ok[parents[bad]] = False
            sides.append((side, parents, flat, p, v, po))
        ok, sym = self._valid_symbols(rows, ok, idx, lines, "depth")
        t = rows.field("t")
        ts = np.where(t.is_valid().to_numpy(zero_copy_only=False),
                      pc.fill_null(t, 0).to_numpy() * _MS, now_ns).astype(np.int64)
        self.counts["depth"] += int(ok.sum())
        sym_np = sym.to_numpy(zero_copy_only=False)
        cols: dict[str, list] = {k: [] for k in DEPTH.names}
        for side, parents, flat, p, v, po in sides:
            m = ok[parents]
            par = parents[m]
            cols["ts"].append(ts[par])
            cols["symbol"].append(sym_np[par])
            cols["side"].append(np.full(len(par), side, np.int8))
            cols["position"].append(pc.fill_null(po, 0).to_numpy()[m].astype(np.int32))
            cols["price"].append(p[m])
            cols["volume"].append(v[m])
            cols["orders"].append(np.nan_to_num(_f64(flat.field("o")), nan=0.0)[m])
        arrays = [pa.array(np.concatenate(cols[f.name]), f.type) for f in DEPTH]
        out.depth = pa.Table.from_arrays(arrays, schema=DEPTH)


def _f64(arr: pa.Array) -> np.ndarray:
    """A float64 Arrow array as NumPy with nulls as NaN."""
    return pc.fill_null(arr, math.nan).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _split_lines(frames: Sequence[str | bytes]) -> list[bytes]:
    """Frames as one-message lines: a frame may carry several newline-separated messages,
    and a pretty-printed (multi-line) JSON frame is re-serialised onto one line."""
    out: list[bytes] = []
    for f in frames:
        b = f.encode() if isinstance(f, str) else bytes(f)
        if b"\n" not in b:
            if b.strip():
                out.append(b)
            continue
        try:
            obj = json.loads(b)
        except ValueError:
            out.extend(x for x in b.split(b"\n") if x.strip())
        else:
            out.append(json.dumps(obj, separators=(",", ":")).encode())
    return out


def _check_level(level) -> dict:
    if not isinstance(level, dict):
        raise TypeError(f"depth level {level!r} is not an object")
    return {k: level.get(k) for k in ("po", "p", "v", "o")}


def _num(value, name: str, integer: bool = False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"field {name!r} must be a number, got {value!r}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"field {name!r} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def _normalise(obj: dict) -> dict:
    """A JSON object the fast reader rejected, coerced to WIRE_SCHEMA or raising why not."""
    out = {
        "code": _num(obj.get("code"), "code", integer=True),
        "msg": None if obj.get("msg") is None else str(obj.get("msg")),
        "resAc": None if obj.get("resAc") is None else str(obj.get("resAc")),
        "data": None,
    }
    data = obj.get("data")
    if data is None:
        return out
    if not isinstance(data, dict):
        raise TypeError(f"field 'data' must be an object, got {type(data).__name__}")
    d = {}
    for name in ("ld", "o", "h", "l", "v", "tu"):
        d[name] = _num(data.get(name), name)
    for name in ("t", "ts", "sq"):
        d[name] = _num(data.get(name), name, integer=True)
    for name in ("s", "type", "params"):
        value = data.get(name)
        if value is not None and not isinstance(value, (str, int, float)):
            raise TypeError(f"field {name!r} must be text, got {value!r}")
        d[name] = None if value is None else str(value)
    for name in ("a", "b"):
        levels = data.get(name)
        if levels is not None and not isinstance(levels, list):
            raise TypeError(f"field {name!r} must be an array of levels")
        d[name] = None if levels is None else [_check_level(x) for x in levels]
        for lv in d[name] or []:
            lv["po"] = _num(lv["po"], "po", integer=True)
            for k in ("p", "v", "o"):
                lv[k] = _num(lv[k], k)
    out["data"] = d
    return out
