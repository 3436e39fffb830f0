"""Checkpoints of a windowed backtest: interrupt a long run and resume it where it stopped.

A long run replays history window by window (:class:`~pyplatform.backtest.engine.Simulation`);
everything that lives across windows is in the ``Simulation`` object. At a window's edge the
whole object is pickled, together with the number of windows done and a fingerprint of what
the run depends on (strategies, realism settings, symbols, range, and the history itself). A
resumed run skips the windows already done and continues from the saved state, so its result
equals an uninterrupted run's (tested in ``tests/backtest/test_backtest_resume.py``).

Security
--------
A checkpoint is a pickle, and unpickling runs code. A checkpoint is therefore only loaded
when its HMAC-SHA256, keyed by a secret file of the data directory
(``<data_dir>/backtests/.checkpoint_key``, created 0600 on first use), matches: a file not
written under this data directory, or altered since, is refused. Do not copy checkpoints
between machines; they are working state, deleted when the run finishes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

from pyplatform.fsio import atomic_write

__all__ = ["CheckpointError", "fingerprint", "save", "load", "key_for"]

_MAGIC = b"PPCKPT1\n"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: tampered, foreign, or for another run."""


def key_for(data_dir: str | os.PathLike) -> bytes:
    """The data directory's checkpoint key (created, mode 0600, on first use)."""
    path = Path(data_dir) / "backtests" / ".checkpoint_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of what a run depends on (JSON-able ``parts``)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def save(path: str | os.PathLike, sim, windows_done: int, fp: str, key: bytes) -> None:
    """Write ``sim`` (a Simulation between windows) atomically, signed with ``key``."""
    progress, sim.progress = sim.progress, None  # a callback of the caller, not state
    try:
        body = pickle.dumps({"fingerprint": fp, "windows_done": windows_done, "sim": sim},
                            protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        sim.progress = progress
    mac = hmac.new(key, body, hashlib.sha256).digest()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _MAGIC + mac + body)


def load(path: str | os.PathLike, fp: str, key: bytes):
    """``(sim, windows_done)`` from a checkpoint written by :func:`save` for the same run.

    Raises
    ------
    CheckpointError
        Not a checkpoint, its MAC fails (another data dir's key, or altered), or it was
        written for a run with another fingerprint.
    """
    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 32:
        raise CheckpointError(f"{path}: not a pyplatform backtest checkpoint")
    mac, body = raw[len(_MAGIC):len(_MAGIC) + 32], raw[len(_MAGIC) + 32:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise CheckpointError(f"{path}: checkpoint not written under this data directory, or altered "
                              "since; refusing to load it (delete it to start over)")
    state = pickle.loads(body)  # noqa: S301 -- authenticated above
    if state["fingerprint"] != fp:
        raise CheckpointError(f"{path}: checkpoint is for another run (strategies, settings, range or "
                              f"history changed: {state['fingerprint']} != {fp}); delete it to start over")
    return state["sim"], int(state["windows_done"])
