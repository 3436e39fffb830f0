"""Universes and input checks for the notebook API.

A universe is what a cross-sectional statistic compares on one date, so it must not mix
markets that trade on different calendars unless asked to: 24/7 crypto beside stocks puts a
weekend of two crypto names into a rank IC. :func:`resolve_universe` turns a universe spec
into symbols:

* an asset class -- ``"stocks"`` (the default of ``pp.evaluate``), ``"forex"``,
  ``"crypto"``, ``"indices"`` (singular forms too);
* a region/exchange suffix -- ``".US"``, ``".GB"``, ``".BA"``, ``".IDX"``;
* ``"all"`` -- every symbol, calendars mixed on purpose (forward returns still step over each
  symbol's own sessions);
* the name of a saved list (:func:`save_universe`, stored under ``data_dir/universes``);
* an explicit list of symbols.

The checks (:func:`check_symbols`, :func:`check_range`, :func:`check_freq`) raise errors that
name what was wrong and list the valid choices, instead of returning an empty frame.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pandas as pd

from pyplatform.domain.instruments import AssetClass, asset_class_of

__all__ = ["UnknownSymbolError", "resolve_universe", "check_symbols", "check_range", "check_freq",
           "save_universe", "load_universe", "saved_universes", "ASSET_CLASS_NAMES"]

#: Universe names accepted for each asset class.
ASSET_CLASS_NAMES = {
    "stock": AssetClass.STOCK, "stocks": AssetClass.STOCK, "equities": AssetClass.STOCK,
    "forex": AssetClass.FOREX, "fx": AssetClass.FOREX,
    "crypto": AssetClass.CRYPTO,
    "index": AssetClass.INDEX, "indices": AssetClass.INDEX,
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_FREQS = "1min, 5min, 15min, 30min, 1h, 4h, 1d, 1w"


class UnknownSymbolError(KeyError):
    """Symbols that the history store does not hold (message lists the nearest known ones)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _nearest(sym: str, known: list[str], n: int = 3) -> list[str]:
    up = sym.upper()
    # a missing region suffix ("EURUSD") is the commonest slip: offer the code's own symbols first
    same_code = [k for k in known if k.split(".")[0] == up.split(".")[0]]
    close = difflib.get_close_matches(up, known, n=n, cutoff=0.5)
    return list(dict.fromkeys(same_code + close))[:n]


def check_symbols(requested: list[str] | None, known: list[str], table: str = "bars") -> None:
    """Raise :class:`UnknownSymbolError` naming every unknown symbol and its nearest known ones.

    Parameters
    ----------
    requested : list of str or None
        None means all symbols (always valid).
    known : list of str
        Symbols the store holds for ``table``.
    """
    if requested is None:
        return
    if not requested:
        raise ValueError("symbols is an empty list: pass None for all symbols, or name some")
    known_set = set(known)
    bad = [s for s in requested if s not in known_set]
    if not bad:
        return
    parts = []
    for s in bad:
        near = _nearest(s, known)
        parts.append(f"{s!r} (did you mean {', '.join(near)}?)" if near else repr(s))
    hint = "" if known else " -- the store has none: generate or import data first"
    raise UnknownSymbolError(f"unknown symbol(s) in {table}: {'; '.join(parts)}. Symbols are CODE.REGION "
                             f"(AAPL.US, EURUSD.GB, BTCUSDT.BA); {len(known)} known{hint}")


def check_range(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Parse ``start``/``end``; raise ``ValueError`` if either is unparseable or start >= end."""
    out = []
    for label, v in (("start", start), ("end", end)):
        if v is None:
            out.append(None)
            continue
        try:
            t = pd.Timestamp(v)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{label}={v!r} is not a date or timestamp ({exc})") from None
        if t is pd.NaT:
            raise ValueError(f"{label}={v!r} is not a date or timestamp")
        out.append(t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t)
    lo, hi = out
    if lo is not None and hi is not None and lo >= hi:
        raise ValueError(f"start {lo} is not before end {hi} (the range is start <= t < end)")
    return lo, hi


def check_freq(freq: str) -> pd.Timedelta:
    """The bar width of ``freq``; ``ValueError`` listing valid examples when it is not one."""
    try:
        step = pd.Timedelta(str(freq))
    except (ValueError, TypeError):
        raise ValueError(f"freq={freq!r} is not a bar width; use a pandas-style width such as {_FREQS}") from None
    if step <= pd.Timedelta(0):
        raise ValueError(f"freq={freq!r} must be positive (e.g. {_FREQS})")
    if step % pd.Timedelta("1min") and step != pd.Timedelta(0):
        raise ValueError(f"freq={freq!r} is finer than the stored one-minute bars (e.g. {_FREQS})")
    return step


def _dir(settings) -> Path:
    return Path(settings.path("universes"))


def save_universe(name: str, symbols, *, settings) -> list[str]:
    """Save a named list of symbols (``data_dir/universes/<name>.json``); returns the list."""
    if not _NAME.match(name or ""):
        raise ValueError(f"invalid universe name {name!r}: letters, digits, '_' and '-', starting with a letter")
    if name.lower() in ASSET_CLASS_NAMES or name.lower() == "all":
        raise ValueError(f"universe name {name!r} is reserved for a built-in universe")
    syms = [symbols] if isinstance(symbols, str) else [str(s) for s in symbols]
    if not syms:
        raise ValueError("a universe needs at least one symbol")
    for s in syms:
        asset_class_of(s)  # validates the region suffix
    d = _dir(settings)
    d.mkdir(parents=True, exist_ok=True)
    from pyplatform.fsio import atomic_write

    atomic_write(d / f"{name}.json", json.dumps(sorted(set(syms))))
    return sorted(set(syms))


def saved_universes(*, settings) -> list[str]:
    """Names of the saved universes."""
    d = _dir(settings)
    return sorted(p.stem for p in d.glob("*.json")) if d.exists() else []


def load_universe(name: str, *, settings) -> list[str]:
    """The symbols of a saved universe."""
    p = _dir(settings) / f"{name}.json"
    if not _NAME.match(name or "") or not p.exists():
        raise KeyError(name)
    return list(json.loads(p.read_text()))


def resolve_universe(universe, known: list[str], *, settings=None) -> list[str]:
    """Symbols of a universe spec (see the module docstring), among the ``known`` symbols.

    Raises
    ------
    ValueError
        For an unknown spec (the message lists the valid ones) or a universe with no symbols
        in the store.
    UnknownSymbolError
        For an explicit list naming symbols the store does not hold.
    """
    if universe is None:
        universe = "stocks"
    if not isinstance(universe, str):
        syms = [str(s) for s in universe]
        check_symbols(syms, known)
        return syms
    key = universe.strip()
    if key.lower() == "all":
        return list(known)
    if key.lower() in ASSET_CLASS_NAMES:
        cls = ASSET_CLASS_NAMES[key.lower()]
        out = [s for s in known if _class(s) is cls]
    elif key.startswith("."):
        out = [s for s in known if s.upper().endswith(key.upper())]
    else:
        saved = saved_universes(settings=settings) if settings is not None else []
        if key not in saved:
            raise ValueError(f"unknown universe {universe!r}: use an asset class ({', '.join(sorted(set(ASSET_CLASS_NAMES)))}), "
                             f"a region suffix ('.US', '.GB', '.BA', '.IDX'), 'all' (calendars mixed), a list of "
                             f"symbols, or a saved universe ({', '.join(saved) or 'none saved'})")
        out = load_universe(key, settings=settings)
        check_symbols(out, known)
    if not out:
        raise ValueError(f"universe {universe!r} has no symbols in the store ({len(known)} symbols known)")
    return out


def _class(symbol: str):
    try:
        return asset_class_of(symbol)
    except (ValueError, KeyError):
        return None
