"""Crash-safe file writes: the one place the project writes a file that must survive a crash.

Every state file (acknowledged offsets, engine checkpoints, table schemas, manifests, key
files, the factor registry's generation counter) is replaced through :func:`atomic_write`, so
both backends and every service keep the same promise: after a crash a reader sees either the
old content or the new one, never a torn mix, and with ``durable=True`` (the default) the new
content and its directory entry are on disk before the call returns.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so that a file created or renamed in it is durable.

    Parameters
    ----------
    path : path-like
        The directory.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes | str, *, durable: bool = True,
                 mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` atomically.

    The data goes to a temporary file in the same directory (unique per process and thread, so
    concurrent writers never share one), which is renamed over ``path``.

    Parameters
    ----------
    path : path-like
        The file to replace.
    data : bytes or str
        The whole new content (``str`` is written as UTF-8).
    durable : bool, default True
        fsync the file before the rename and the directory after it. ``False`` keeps the
        all-or-nothing guarantee for readers but a power loss may bring back the old content.
    mode : int, optional
        Permission bits for the new file (e.g. ``0o600`` for secrets), applied before any
        data is written so the content is never readable under looser permissions.

    Returns
    -------
    Path
        ``path``.
    """
    import threading

    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
    return path
