"""The versioned factor registry in the data directory.

Layout (one folder per factor, one immutable JSON file per version)::

    <data_dir>/registry/factors/<name>/v0001.json
    <data_dir>/registry/factors/<name>/v0002.json
    <data_dir>/registry/factors/<name>/retired.json     (present while the factor is retired)
    <data_dir>/registry/factors/GENERATION              (bumped on every change; watchers poll it)

Versions are immutable: a version file is created with ``O_EXCL`` from a fully written
temporary file (``link`` then ``unlink``), so two publishers never overwrite each other and a
reader never sees half a version. Retiring writes a marker; it stops the factor live but
keeps every version and its history. Publishing again after retiring un-retires.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyplatform.fsio import atomic_write

__all__ = ["FactorVersion", "FactorRegistry", "RegistryError"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class RegistryError(ValueError):
    """A registry operation that cannot be done (bad name, unknown factor, ...)."""


@dataclass(frozen=True)
class FactorVersion:
    """One immutable published version of a factor."""

    name: str
    version: int
    expression: str
    author: str
    description: str = ""
    tags: tuple[str, ...] = ()
    kind: str = "expression"  # or "model"
    model_path: str | None = None
    inputs: tuple[str, ...] = ()
    evaluation: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    published_ns: int = 0

    @property
    def column(self) -> str:
        """The column name the live engine publishes this factor under."""
        return self.name

    def to_json(self) -> str:
        d = asdict(self)
        d["tags"], d["inputs"] = list(self.tags), list(self.inputs)
        return json.dumps(d, indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> "FactorVersion":
        d = json.loads(text)
        d["tags"], d["inputs"] = tuple(d.get("tags", ())), tuple(d.get("inputs", ()))
        return cls(**d)


class FactorRegistry:
    """Versioned, file-based registry of published factors.

    Parameters
    ----------
    root : path
        The registry folder, usually ``Settings.path("registry", "factors")``.
    """

    def __init__(self, root: str | Path, clock) -> None:
        # the clock stamps publish and retire times: required, so a backtest or a test that
        # forgets it fails here instead of silently reading wall time
        if clock is None:
            raise ValueError("FactorRegistry needs a clock (pyplatform.clock.LiveClock for wall time)")
        self.root = Path(root)
        self.clock = clock
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings=None, clock=None) -> "FactorRegistry":
        """The registry under ``DATA_DIR/registry/factors``; an edge builder, so it is the one
        place that picks the wall clock when none is given."""
        from pyplatform.clock import LiveClock
        from pyplatform.config import get_settings

        return cls((settings or get_settings()).path("registry", "factors"), clock or LiveClock())

    # -- reading -----------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not _NAME.match(name or ""):
            raise RegistryError(f"invalid factor name {name!r}: letters, digits and '_', starting with a letter")
        return self.root / name

    def versions(self, name: str) -> list[FactorVersion]:
        d = self._dir(name)
        files = sorted(d.glob("v[0-9][0-9][0-9][0-9].json"))
        return [FactorVersion.from_json(f.read_text()) for f in files]

    def get(self, name: str, version: int | None = None) -> FactorVersion:
        vs = self.versions(name)
        if not vs:
            raise RegistryError(f"no published factor named {name!r}")
        if version is None:
            return vs[-1]
        for v in vs:
            if v.version == version:
                return v
        raise RegistryError(f"factor {name!r} has no version {version} (latest is {vs[-1].version})")

    def is_retired(self, name: str) -> bool:
        return (self._dir(name) / "retired.json").exists()

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def active(self) -> dict[str, FactorVersion]:
        """Latest version of every factor that is not retired: what the live engine runs."""
        out = {}
        for n in self.names():
            if not self.is_retired(n):
                vs = self.versions(n)
                if vs:
                    out[n] = vs[-1]
        return out

    def generation(self) -> int:
        """A counter bumped on every publish and retire (cheap to poll)."""
        try:
            return int((self.root / "GENERATION").read_text() or 0)
        except FileNotFoundError:
            return 0

    # -- writing -----------------------------------------------------------------------
    def _bump(self) -> None:
        atomic_write(self.root / "GENERATION", str(self.generation() + 1))

    def add_version(self, name: str, expression: str, author: str, **fields) -> FactorVersion:
        """Store a new immutable version (validation is the caller's job: see ``pp.publish``)."""
        d = self._dir(name)
        d.mkdir(parents=True, exist_ok=True)
        if not author:
            raise RegistryError("a published factor needs an author")
        for attempt in range(100):
            n = (self.versions(name)[-1].version if self.versions(name) else 0) + 1
            fv = FactorVersion(name=name, version=n, expression=expression, author=author,
                               published_ns=self.clock.now_ns(), **fields)
            tmp = d / f".v{n:04d}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(fv.to_json())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, d / f"v{n:04d}.json")  # fails if the version exists: never overwrite
            except FileExistsError:
                continue
            finally:
                tmp.unlink(missing_ok=True)
            (d / "retired.json").unlink(missing_ok=True)
            self._bump()
            return fv
        raise RegistryError(f"could not allocate a version for {name!r}")  # pragma: no cover

    def retire(self, name: str, reason: str = "") -> None:
        """Stop a factor live; its versions and history are kept."""
        self.get(name)
        atomic_write(self._dir(name) / "retired.json", json.dumps({"reason": reason, "ts": self.clock.now_ns()}))
        self._bump()
