"""A durable, append-only order journal (JSON lines, fsync before acknowledging).

The order manager writes each command/event here *before* it changes state or answers its
caller, so after a crash everything acknowledged can be rebuilt. A crash in the middle of
a write leaves a torn last line: it was never acknowledged, so recovery drops it (and
truncates it away so later appends start on a clean line). A bad line anywhere else is
corruption and is reported with its line number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from pyplatform.execution.codec import decode, encode

__all__ = ["Journal", "JournalCorrupt"]


class JournalCorrupt(RuntimeError):
    """A journal line that cannot be decoded and is not a torn final write."""


class Journal:
    """Append-only file of order messages.

    Parameters
    ----------
    path : str or Path
        The journal file (created with its parent directory).
    fsync : bool
        ``os.fsync`` after every append (the default; durable). ``False`` only for benchmarks
        of the in-memory path and for throwaway sessions.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._repair_torn_tail()
        self._fh = open(self.path, "ab", buffering=0)
        self.appended = 0

    def _repair_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, msg) -> None:
        """Write one message durably (returns after fsync)."""
        self.append_many((msg,))

    def append_many(self, msgs) -> None:
        """Write several messages with one fsync (all or, after a crash, a prefix)."""
        payload = b"".join(json.dumps(encode(m), separators=(",", ":")).encode() + b"\n" for m in msgs)
        if not payload:
            return
        self._fh.write(payload)
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.appended += len(msgs) if hasattr(msgs, "__len__") else 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def read(path: str | os.PathLike) -> Iterator:
        """The messages in a journal file, in order (a torn final line is skipped)."""
        path = Path(path)
        if not path.exists():
            return
        data = path.read_bytes()
        lines = data.split(b"\n")
        # lines[-1] is b"" when the file ends with a newline, else a torn (unacknowledged) write
        for no, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                yield decode(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise JournalCorrupt(f"{path}: line {no}: {exc}") from None
