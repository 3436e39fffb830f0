"""Serialising stream state: msgpack for structure, zstd-compressed raw float64 for state."""

from __future__ import annotations

import msgpack
import numpy as np
import zstandard

from pyplatform.factors.core import StreamCore
from pyplatform.factors.factor import parse

__all__ = ["dump_core", "load_core", "dump_engine", "load_engine", "SNAPSHOT_VERSION"]

SNAPSHOT_VERSION = 2  # 2: two-stack window state (issue 16); version-1 state is not compatible


def dump_core(core: StreamCore, offset: int | None) -> bytes:
    n = len(core.symbols)
    state = core.logical_state(n)
    doc = {
        "version": SNAPSHOT_VERSION,
        "factors": [[name, str(e), epoch] for name, (e, epoch) in core.factors.items()],
        "symbols": list(core.symbols),
        "width": core.program.width,
        "state": zstandard.ZstdCompressor(level=3).compress(state.tobytes()),
        "offset": offset,
    }
    return msgpack.packb(doc, use_bin_type=True)


def load_core(blob: bytes) -> tuple[StreamCore, dict]:
    try:
        doc = msgpack.unpackb(blob, raw=False)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same thing
        raise ValueError(f"not a factor snapshot: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported factor snapshot version {doc.get('version') if isinstance(doc, dict) else '?'}")
    core = StreamCore({name: (parse(text), int(epoch)) for name, text, epoch in doc["factors"]})
    if core.program.width != doc["width"]:
        raise ValueError(f"snapshot state width {doc['width']} does not match the program ({core.program.width})")
    syms = doc["symbols"]
    core._register(syms) if syms else None
    raw = zstandard.ZstdDecompressor().decompress(doc["state"])
    core.set_logical_state(np.frombuffer(raw, dtype=np.float64).reshape(len(syms), core.program.width))
    return core, doc


def dump_engine(engine) -> bytes:
    blob = dump_core(engine._core, engine.next_offset)
    doc = msgpack.unpackb(blob, raw=False)
    doc["epoch"] = engine._epoch
    doc["rows_fed"] = engine.rows_fed
    return msgpack.packb(doc, use_bin_type=True)


def load_engine(engine, blob: bytes) -> None:
    core, doc = load_core(blob)
    engine._core = core
    engine._exprs = dict(core.factors)
    engine._epoch = int(doc.get("epoch", 0))
    engine.next_offset = int(doc["offset"] or 0)
    engine.rows_fed = int(doc.get("rows_fed", 0))
    engine._changed()
