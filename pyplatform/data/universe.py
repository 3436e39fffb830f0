"""Synthetic instrument universes with realistic-looking symbols and per-symbol parameters."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from pyplatform.domain.instruments import AssetClass, Instrument

__all__ = ["make_universe", "symbol_params", "as_instruments", "STOCK_SECTORS"]

STOCK_SECTORS = ("Technology", "Financials", "Health Care", "Energy", "Consumer", "Industrials",
                 "Utilities", "Materials")
_CURRENCIES = ("EUR", "USD", "JPY", "GBP", "AUD", "CAD", "CHF", "NZD", "SEK", "NOK", "SGD", "HKD",
               "MXN", "ZAR", "PLN", "TRY", "CNH", "DKK", "CZK", "HUF")
_MAJORS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD", "EURGBP", "EURJPY",
           "GBPJPY", "EURCHF", "AUDJPY")
_COINS = ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC", "TRX")
_APPROX_RATE = {"EUR": 1.10, "USD": 1.0, "JPY": 0.0068, "GBP": 1.27, "AUD": 0.66, "CAD": 0.74,
                "CHF": 1.12, "NZD": 0.61, "SEK": 0.095, "NOK": 0.093, "SGD": 0.74, "HKD": 0.128,
                "MXN": 0.058, "ZAR": 0.054, "PLN": 0.25, "TRY": 0.031, "CNH": 0.138, "DKK": 0.147,
                "CZK": 0.044, "HUF": 0.0028}
_COIN_PRICE = {"BTC": 40000.0, "ETH": 2500.0, "SOL": 100.0, "BNB": 300.0, "XRP": 0.6, "ADA": 0.5,
               "DOGE": 0.08, "AVAX": 35.0, "DOT": 7.0, "LINK": 15.0, "LTC": 70.0, "TRX": 0.1}


def _codes(rng: np.random.Generator, n: int, lengths=(3, 4), taken: set[str] | None = None) -> list[str]:
    taken = set() if taken is None else taken
    out: list[str] = []
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    while len(out) < n:
        k = int(rng.choice(lengths))
        code = "".join(rng.choice(letters, size=k))
        if code not in taken:
            taken.add(code)
            out.append(code)
    return out


def make_universe(n: int, seed: int = 0, mix: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  indices: int = 0) -> list[Instrument]:
    """``n`` instruments across stocks, forex and crypto, deterministic from ``seed``.

    Parameters
    ----------
    n : int
        Number of tradable instruments (stocks + forex + crypto).
    mix : (float, float, float)
        Shares of stocks, forex pairs and crypto pairs; forex is capped by the pairs that 20
        currencies make, the remainder goes to stocks.
    indices : int
        Extra index symbols (``XXX.IDX``) appended after the ``n`` instruments.

    Returns
    -------
    list of Instrument
        Stocks ``ABCD.US`` with sectors, forex ``EURUSD.GB`` (majors first), crypto
        ``BTCUSDT.BA`` (well-known coins first).
    """
    if n < 0:
        raise ValueError(f"make_universe: n must be >= 0, got {n}")
    rng = np.random.default_rng([seed, 7])
    n_fx = min(int(round(n * mix[1])), len(_CURRENCIES) * (len(_CURRENCIES) - 1)) if n >= 3 else 0
    n_cr = int(round(n * mix[2])) if n >= 3 else 0
    n_st = n - n_fx - n_cr
    out: list[Instrument] = []
    for code, i in zip(_codes(rng, n_st, (3, 4)), range(n_st)):
        out.append(Instrument(f"{code}.US", AssetClass.STOCK, sector=STOCK_SECTORS[i % len(STOCK_SECTORS)]))
    pairs = list(_MAJORS) + [a + b for a in _CURRENCIES for b in _CURRENCIES if a != b and a + b not in _MAJORS]
    for p in pairs[:n_fx]:
        out.append(Instrument(f"{p}.GB", AssetClass.FOREX, sector="FX majors" if p in _MAJORS else "FX crosses",
                              currency=p[3:]))
    coins = list(_COINS) + _codes(rng, max(0, n_cr - len(_COINS)), (3, 4, 5), taken=set(_COINS))
    for c in coins[:n_cr]:
        out.append(Instrument(f"{c}USDT.BA", AssetClass.CRYPTO,
                              sector="Crypto majors" if c in _COINS[:4] else "Crypto alts", currency="USDT"))
    for code in _codes(rng, indices, (3,), taken={s.symbol.split(".")[0] for s in out}):
        out.append(Instrument(f"{code}.IDX", AssetClass.INDEX, sector="Index"))
    return out


def as_instruments(symbols, seed: int = 0) -> list[Instrument]:
    """Instruments from symbols (strings), instruments, or a count (``make_universe``)."""
    if isinstance(symbols, (int, np.integer)):
        return make_universe(int(symbols), seed)
    if isinstance(symbols, str):
        symbols = [symbols]
    from pyplatform.domain.instruments import asset_class_of

    out = []
    for s in symbols:
        if isinstance(s, Instrument):
            out.append(s)
        else:
            ac = asset_class_of(str(s))
            out.append(Instrument(str(s), ac, sector=_default_sector(str(s), ac)))
    return out


def _default_sector(symbol: str, ac: AssetClass) -> str:
    if ac is AssetClass.STOCK:
        return STOCK_SECTORS[zlib.crc32(symbol.encode()) % len(STOCK_SECTORS)]
    return {AssetClass.FOREX: "FX", AssetClass.CRYPTO: "Crypto", AssetClass.INDEX: "Index"}[ac]


def _initial_price(inst: Instrument, u: float) -> float:
    code = inst.symbol.split(".")[0]
    if inst.asset_class is AssetClass.FOREX and len(code) == 6 and code[:3] in _APPROX_RATE and code[3:] in _APPROX_RATE:
        return _APPROX_RATE[code[:3]] / _APPROX_RATE[code[3:]]
    if inst.asset_class is AssetClass.CRYPTO:
        base = code.removesuffix("USDT")
        return _COIN_PRICE.get(base, float(np.exp(np.log(0.05) + u * np.log(2000.0))))
    if inst.asset_class is AssetClass.INDEX:
        return 1000.0 + 4000.0 * u
    return float(np.exp(np.log(8.0) + u * np.log(60.0)))  # 8 .. 480 dollars, log-uniform


def symbol_params(instruments: list[Instrument], seed: int = 0) -> pd.DataFrame:
    """Per-symbol simulation parameters, each a function of (seed, symbol) only.

    Columns: ``price0``, ``vol`` (annualised), ``beta`` (loading on the asset class factor),
    ``sector_beta``, ``volume`` (mean per minute), ``trade_size``, ``spread`` (in ticks).
    """
    rows = []
    for inst in instruments:
        r = np.random.default_rng([seed, zlib.crc32(inst.symbol.encode())])
        u = r.random(6)
        ac = inst.asset_class
        vol = {AssetClass.STOCK: 0.15 + 0.35 * u[1], AssetClass.FOREX: 0.05 + 0.07 * u[1],
               AssetClass.CRYPTO: 0.5 + 0.6 * u[1], AssetClass.INDEX: 0.12 + 0.08 * u[1]}[ac]
        volume = {AssetClass.STOCK: 200 * np.exp(4 * u[2]), AssetClass.FOREX: 50 * np.exp(2 * u[2]),
                  AssetClass.CRYPTO: 5 * np.exp(3 * u[2]), AssetClass.INDEX: 0.0}[ac]
        size = {AssetClass.STOCK: 100.0, AssetClass.FOREX: 1.0, AssetClass.CRYPTO: 0.5, AssetClass.INDEX: 1.0}[ac]
        spread = {AssetClass.STOCK: 1 + int(3 * u[4]), AssetClass.FOREX: 5 + int(15 * u[4]),
                  AssetClass.CRYPTO: 1 + int(5 * u[4]), AssetClass.INDEX: 1}[ac]
        rows.append({"symbol": inst.symbol, "price0": _initial_price(inst, u[0]), "vol": vol,
                     "beta": 0.4 + 0.4 * u[3], "sector_beta": 0.3 + 0.3 * u[5], "volume": volume,
                     "trade_size": size, "spread": spread})
    return pd.DataFrame(rows).set_index("symbol")
