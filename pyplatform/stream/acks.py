"""Acknowledged offsets per subscriber action, persisted atomically.

``acks.json`` maps action -> last processed offset. It is rewritten whole through a
temporary file, fsync and ``os.replace`` so a crash leaves either the old or the new map,
never a mixture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pyplatform.fsio import atomic_write

__all__ = ["AckStore", "check_name"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def check_name(kind: str, name: str) -> str:
    """Validate a table or action name (they become file names and JSON keys)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return name


class AckStore:
    """Acknowledged offsets; in memory only when ``directory`` is None."""

    def __init__(self, directory: Path | None) -> None:
        self._path = Path(directory) / "acks.json" if directory is not None else None
        self._acks: dict[str, int] = {}
        if self._path is not None and self._path.exists():
            raw = json.loads(self._path.read_text())
            self._acks = {str(k): int(v) for k, v in raw.items()}

    def get(self, action: str) -> int | None:
        return self._acks.get(action)

    def all(self) -> dict[str, int]:
        return dict(self._acks)

    def set(self, action: str, offset: int) -> None:
        self._acks[action] = int(offset)
        if self._path is None:
            return
        atomic_write(self._path, json.dumps(self._acks, sort_keys=True))
