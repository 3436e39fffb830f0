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

__all__ = ["CheckpointError", "CheckpointWarning", "fingerprint", "part_digests", "differences", "save",
           "load", "read_header", "nearest", "key_for"]

# layout: magic, HMAC-SHA256 (32 bytes) over everything after it, an 8-byte big-endian header
# length, a small JSON header (fingerprint, windows done, per-input digests), the pickle. The
# header lets a refusal say which input changed without unpickling anything.
_MAGIC = b"PPCKPT2\n"
_MAC = 32


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: tampered, foreign, or for another run."""


class CheckpointWarning(UserWarning):
    """``resume`` found no checkpoint for this run, so it starts from the beginning."""


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


def part_digests(parts: dict[str, Any]) -> dict[str, str]:
    """One short digest per input of a run, so two runs can be told apart by name.

    Dict-valued parts (the realism settings) are split one level down
    (``backtest.latency_ms``): "the latency changed" is more use than "the settings changed".
    """
    out = {}
    for name, value in parts.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                out[f"{name}.{sub}"] = fingerprint({"v": v})
        else:
            out[name] = fingerprint({"v": value})
    return out


def differences(saved: dict[str, str], now: dict[str, str]) -> list[str]:
    """The names of the inputs whose digests differ (or exist on one side only), sorted."""
    return sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))


def save(path: str | os.PathLike, sim, windows_done: int, fp: str, key: bytes,
         parts: dict[str, str] | None = None) -> None:
    """Write ``sim`` (a Simulation between windows) atomically, signed with ``key``.

    ``parts`` (from :func:`part_digests`) goes into the header, so that a later refusal can
    name what changed.
    """
    progress, sim.progress = sim.progress, None  # a callback of the caller, not state
    try:
        body = pickle.dumps({"fingerprint": fp, "windows_done": windows_done, "sim": sim},
                            protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        sim.progress = progress
    header = json.dumps({"fingerprint": fp, "windows_done": windows_done, "parts": parts or {}},
                        sort_keys=True).encode()
    signed = len(header).to_bytes(8, "big") + header + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _MAGIC + mac + signed)


def _verified(path, key: bytes) -> tuple[dict, bytes]:
    """``(header, pickle bytes)`` of an authentic checkpoint; nothing is unpickled here."""
    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + _MAC + 8:
        raise CheckpointError(f"{path}: not a pyplatform backtest checkpoint (or one from an older "
                              "version); delete it to start over")
    mac, signed = raw[len(_MAGIC):len(_MAGIC) + _MAC], raw[len(_MAGIC) + _MAC:]
    if not hmac.compare_digest(mac, hmac.new(key, signed, hashlib.sha256).digest()):
        raise CheckpointError(f"{path}: checkpoint not written under this data directory, or altered "
                              "since; refusing to load it (delete it to start over)")
    n = int.from_bytes(signed[:8], "big")
    return json.loads(signed[8:8 + n]), signed[8 + n:]


def read_header(path: str | os.PathLike, key: bytes) -> dict:
    """The checkpoint's header (fingerprint, windows done, input digests), authenticated.

    Raises
    ------
    CheckpointError
        Not a checkpoint, or its MAC fails.
    """
    return _verified(path, key)[0]


def nearest(folder: str | os.PathLike, parts: dict[str, str], key: bytes) -> tuple[Path, list[str]] | None:
    """The checkpoint under ``folder`` that differs from this run in the fewest inputs, and
    those inputs; None when the folder holds no readable checkpoint."""
    best = None
    for path in sorted(Path(folder).glob("*.ckpt")):
        try:
            diff = differences(read_header(path, key).get("parts", {}), parts)
        except (CheckpointError, OSError, ValueError):
            continue  # foreign or damaged: not a candidate
        if best is None or len(diff) < len(best[1]):
            best = (path, diff)
    return best


def load(path: str | os.PathLike, fp: str, key: bytes, parts: dict[str, str] | None = None):
    """``(sim, windows_done)`` from a checkpoint written by :func:`save` for the same run.

    Raises
    ------
    CheckpointError
        Not a checkpoint, its MAC fails (another data dir's key, or altered), or it was
        written for a run with another fingerprint (the message names the inputs that
        changed when ``parts`` is given).
    """
    header, body = _verified(path, key)
    if header["fingerprint"] != fp:  # checked before unpickling: a wrong run is never loaded
        diff = differences(header.get("parts", {}), parts) if parts is not None else []
        what = ", ".join(diff) if diff else "strategies, settings, range or history"
        raise CheckpointError(f"{path}: checkpoint is for another run ({what} changed); run with the "
                              "same inputs to resume, or delete it to start over")
    state = pickle.loads(body)  # noqa: S301 -- authenticated above
    return state["sim"], int(state["windows_done"])
