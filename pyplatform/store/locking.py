"""One writer per table at a time, across processes: an advisory ``flock`` on a lock file.

Readers take no lock (they read an immutable manifest version and immutable files).
The kernel drops the lock when the holder dies, so a crashed writer never wedges the table.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["writer_lock", "LockTimeout"]


class LockTimeout(TimeoutError):
    """Another writer held the table's lock for longer than the timeout."""


@contextmanager
def writer_lock(path: Path, timeout: float = 600.0, poll: float = 0.05):
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    Raises
    ------
    LockTimeout
        Naming the lock file if it could not be taken within ``timeout`` seconds.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"writer lock {path} still held by another writer after {timeout}s") from None
                time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
