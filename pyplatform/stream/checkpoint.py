"""Runner checkpoints: engine state, input position and write-ahead output, in one file.

Layout: ``b"PPCK1\\n"``, an 8-byte little-endian header length, a JSON header, then the
blobs it describes (engine snapshot, Arrow IPC streams of pending output). Written to a
temporary file, fsynced and renamed, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pyplatform.fsio import atomic_write

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint"]

_MAGIC = b"PPCK1\n"


@dataclass
class Checkpoint:
    """What a runner needs to continue exactly where it stopped.

    Attributes
    ----------
    input_next : int
        First input offset not yet reflected in ``engine_state``.
    engine_state : bytes
        ``engine.snapshot()`` (empty for engines without state).
    pending : dict
        Output name -> (expected offset, table): rows that must sit at that offset of that
        output; written ahead of the append so a crash between the two cannot lose them.
    """

    input_next: int
    engine_state: bytes = b""
    pending: dict[str, tuple[int, pa.Table]] = field(default_factory=dict)


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def save_checkpoint(path: Path, ck: Checkpoint) -> None:
    blobs = [ck.engine_state]
    header = {"input_next": int(ck.input_next), "engine_len": len(ck.engine_state), "pending": {}}
    for name, (expected, table) in ck.pending.items():
        data = _ipc(table)
        header["pending"][name] = {"expected": int(expected), "len": len(data)}
        blobs.append(data)
    head = json.dumps(header, sort_keys=True).encode()
    path = Path(path)
    atomic_write(path, b"".join([_MAGIC, struct.pack("<Q", len(head)), head, *blobs]))


def load_checkpoint(path: Path) -> Checkpoint | None:
    path = Path(path)
    if not path.exists():
        return None
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path}: not a runner checkpoint")
    (hlen,) = struct.unpack_from("<Q", data, len(_MAGIC))
    pos = len(_MAGIC) + 8
    header = json.loads(data[pos:pos + hlen])
    pos += hlen
    state = data[pos:pos + header["engine_len"]]
    pos += header["engine_len"]
    pending = {}
    for name, info in header["pending"].items():
        blob = data[pos:pos + info["len"]]
        pos += info["len"]
        pending[name] = (info["expected"], pa.ipc.open_stream(blob).read_all())
    return Checkpoint(header["input_next"], state, pending)
