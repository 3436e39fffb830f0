"""Symbol spelling between the platform (``AAPL.US``) and iTick (``AAPL$US``, ``region``+``code``).

iTick pushes data with ``s`` = ``AAPL.US`` but takes subscriptions written ``AAPL$US`` and
REST queries as ``region=US&code=AAPL``; these helpers are the one place that knows it.
"""

from __future__ import annotations

from pyplatform.domain import AssetClass, asset_class_of

__all__ = ["to_itick", "from_itick", "split_symbol", "rest_kind", "ws_path"]

#: REST path segment per asset class (``/{kind}/kline``).
_REST_KIND = {
    AssetClass.STOCK: "stock",
    AssetClass.FOREX: "forex",
    AssetClass.INDEX: "indices",
    AssetClass.CRYPTO: "crypto",
}


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"AAPL.US"`` -> ``("AAPL", "US")``.

    Raises
    ------
    ValueError
        If the symbol has no ``.REGION`` suffix.
    """
    code, sep, region = symbol.rpartition(".")
    if not sep or not code or not region:
        raise ValueError(f"symbol {symbol!r} is not CODE.REGION (e.g. 'AAPL.US')")
    return code, region.upper()


def to_itick(symbol: str) -> str:
    """Platform symbol to iTick subscription spelling: ``"AAPL.US"`` -> ``"AAPL$US"``."""
    code, region = split_symbol(symbol)
    return f"{code}${region}"


def from_itick(param: str) -> str:
    """iTick subscription spelling back to the platform's: ``"AAPL$US"`` -> ``"AAPL.US"``.

    A symbol already written ``AAPL.US`` is returned unchanged.
    """
    if "$" in param:
        code, _, region = param.rpartition("$")
        if not code or not region:
            raise ValueError(f"iTick symbol {param!r} is not CODE$REGION (e.g. 'AAPL$US')")
        return f"{code}.{region.upper()}"
    split_symbol(param)
    return param


def rest_kind(symbol: str) -> str:
    """REST path segment (``stock``, ``forex``, ``indices``, ``crypto``) for a symbol."""
    return _REST_KIND[asset_class_of(symbol)]


def ws_path(symbol: str) -> str:
    """WebSocket endpoint path for a symbol's asset class (iTick has one per class)."""
    return "/" + rest_kind(symbol)
