"""The per-table manifest: the only list of visible Parquet files.

Readers take the file list from ``_manifest.json`` and never glob the directory, so a file
that a crashed writer left half-written, or a fully written file whose manifest update never
happened, is invisible. The manifest is replaced atomically (write a temp file, fsync,
``os.replace``, fsync the directory), so a reader sees the old or the new version, never a mix.
Files superseded by a rewrite are kept for a grace period (listed in ``garbage``) because a
reader may have read the previous manifest and be about to open them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pyplatform.fsio import atomic_write, fsync_dir

__all__ = ["Manifest", "FileEntry", "load_manifest", "save_manifest", "time_ordered", "MANIFEST_NAME", "fsync_dir"]

MANIFEST_NAME = "_manifest.json"


@dataclass
class FileEntry:
    """One visible Parquet file: path relative to the table directory and its ts range (ns)."""

    path: str
    rows: int
    min_ts: int
    max_ts: int

    def to_json(self) -> list:
        return [self.path, self.rows, self.min_ts, self.max_ts]


@dataclass
class Manifest:
    """Visible files by partition (``year=YYYY/month=MM``), known symbols, pending garbage."""

    version: int = 0
    partitions: dict[str, list[FileEntry]] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=list)
    garbage: list[tuple[str, float]] = field(default_factory=list)

    def files(self, start: int | None = None, end: int | None = None) -> list[FileEntry]:
        """Files whose ts range meets ``[start, end)``, in partition (time) order."""
        out = []
        for part in sorted(self.partitions):
            for f in self.partitions[part]:
                if (start is None or f.max_ts >= start) and (end is None or f.min_ts < end):
                    out.append(f)
        return out

    @property
    def rows(self) -> int:
        return sum(f.rows for fs in self.partitions.values() for f in fs)


def time_ordered(files: list[FileEntry]) -> bool:
    """Whether each file's rows all come before the next file's (so per-symbol order is global)."""
    return all(a.max_ts < b.min_ts for a, b in zip(files, files[1:]))


def load_manifest(table_dir: Path) -> Manifest:
    """The current manifest of a table (empty if the table was never written)."""
    path = Path(table_dir) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Manifest()
    return Manifest(
        version=raw["version"],
        partitions={p: [FileEntry(*e) for e in es] for p, es in raw["partitions"].items()},
        symbols=raw.get("symbols", []),
        garbage=[tuple(g) for g in raw.get("garbage", [])],
    )


def save_manifest(table_dir: Path, manifest: Manifest, fsync: bool = True) -> None:
    """Atomically publish ``manifest`` (temp file + fsync + rename)."""
    table_dir = Path(table_dir)
    raw = {
        "version": manifest.version,
        "partitions": {p: [e.to_json() for e in es] for p, es in sorted(manifest.partitions.items()) if es},
        "symbols": sorted(manifest.symbols),
        "garbage": [list(g) for g in manifest.garbage],
    }
    atomic_write(table_dir / MANIFEST_NAME, json.dumps(raw, separators=(",", ":")), durable=fsync)
