"""The built-in factor library: TOML definitions in the top-level ``factors/`` folder.

Each file holds ``[[factor]]`` tables with ``name``, ``expression``, ``description``, ``tags``
and ``input`` (``bars`` or ``ticks``, whose schema the expression is checked against).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pyplatform.domain.schemas import BARS, TICKS
from pyplatform.factors.errors import FactorError
from pyplatform.factors.factor import Factor, parse
from pyplatform.factors.tree import Expr

__all__ = ["FactorDef", "load_library", "get_factor", "library_dir", "INPUT_COLUMNS"]

INPUT_COLUMNS: dict[str, set[str]] = {
    "bars": set(BARS.names) - {"ts", "symbol"},
    "ticks": set(TICKS.names) - {"ts", "symbol"},
}


@dataclass(frozen=True)
class FactorDef:
    """One library factor.

    Attributes
    ----------
    name, expression, description : str
    tags : tuple of str
    input : str
        ``bars`` or ``ticks``.
    source : str
        The file it was read from.
    """

    name: str
    expression: str
    description: str
    tags: tuple[str, ...]
    input: str = "bars"
    source: str = ""

    @property
    def factor(self) -> Factor:
        """The parsed, checked factor (checked against the columns of its input kind)."""
        return parse(self.expression, INPUT_COLUMNS[self.input])

    @property
    def expr(self) -> Expr:
        """The factor's tree (``factor.tree``)."""
        return self.factor.tree

    @property
    def lookback(self) -> int:
        return self.factor.lookback


def library_dir() -> Path:
    """The repository's ``factors/`` folder."""
    return Path(__file__).resolve().parents[2] / "factors"


def load_library(directory: str | Path | None = None) -> list[FactorDef]:
    """Read and validate every ``*.toml`` definition file.

    Raises
    ------
    ValueError
        Naming the file and factor for a missing field, a duplicate name, an unknown input
        kind or an expression that does not parse/type-check.
    """
    root = Path(directory) if directory is not None else library_dir()
    files = sorted(root.glob("*.toml"))
    if not files:
        raise ValueError(f"no factor definition files (*.toml) in {root}")
    out: list[FactorDef] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path.name}: invalid TOML: {exc}") from None
        for i, entry in enumerate(doc.get("factor", [])):
            where = f"{path.name}: factor #{i + 1}"
            for key in ("name", "expression", "description", "tags"):
                if key not in entry:
                    raise ValueError(f"{where}: missing field {key!r}")
            name = entry["name"]
            where = f"{path.name}: factor {name!r}"
            if name in seen:
                raise ValueError(f"{where}: duplicate name (also in {seen[name]})")
            kind = entry.get("input", "bars")
            if kind not in INPUT_COLUMNS:
                raise ValueError(f"{where}: input must be one of {sorted(INPUT_COLUMNS)}, got {kind!r}")
            if not isinstance(entry["tags"], list) or not all(isinstance(t, str) for t in entry["tags"]):
                raise ValueError(f"{where}: tags must be a list of strings")
            try:
                parse(entry["expression"], INPUT_COLUMNS[kind])
            except FactorError as exc:
                raise ValueError(f"{where}: {exc}") from None
            seen[name] = path.name
            out.append(FactorDef(name, entry["expression"], entry["description"], tuple(entry["tags"]), kind, path.name))
    return out


def get_factor(name: str, directory: str | Path | None = None) -> FactorDef:
    """One library factor by name (``KeyError`` listing close names otherwise)."""
    lib = {f.name: f for f in load_library(directory)}
    if name not in lib:
        import difflib

        close = difflib.get_close_matches(name, lib, n=3)
        raise KeyError(f"no library factor {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    return lib[name]
