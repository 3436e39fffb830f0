"""What each history table holds: its columns, its key and how it is stored on disk.

The user-facing columns are the Arrow schemas of :mod:`pyplatform.domain.schemas` (``ts``
int64 ns UTC, ``symbol``, ...). On disk, prices are stored as integers: ``price * px_div`` where ``px_div`` (a per-row column,
run-length encoded to almost nothing) is ``10**d`` with ``d`` the fewest decimals that hold the
symbol's prices in that write, at most the asset class's precision (stocks 2, forex 5, crypto 8).
The integers use Parquet's DELTA_BINARY_PACKED encoding, because consecutive prices of one
symbol differ by a few ticks and pack into a few bits, where float64 would take 8 bytes even
after zstd. ``vwap`` keeps two more decimals (``px_div * 100``). Volumes are integers too
(``vol_div`` = 10**d, d <= 8, byte-stream-split encoded): share and lot counts are whole
numbers, crypto quantities have a few decimals. Readers never see the integers:
the SQL in :mod:`pyplatform.store.encoding` divides them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = ["TableSpec", "TABLES", "table_spec"]


@dataclass(frozen=True)
class TableSpec:
    """One history table.

    Parameters
    ----------
    name : str
        Table name (``ticks``, ``bars_1m``, ``bars_1d``, ``factors``).
    columns : tuple of (str, pyarrow.DataType)
        User-facing value columns after ``ts`` and ``symbol`` (and ``factor``).
    key : tuple of str
        Columns that identify a row; a second write of the same key replaces the first.
    prices : tuple of str
        Columns stored as scaled integers at the asset class's precision.
    fine_prices : tuple of str
        Columns stored as scaled integers with two extra decimals (averages such as vwap).
    volumes : tuple of str
        Columns stored as scaled integers with up to 8 decimals (``vol_div`` per row).
    required : tuple of str
        Columns a write must provide; the others default to NULL/0.
    partition : {"month", "year"}
        Time partitioning of the files (daily bars are few: a year per file).
    """

    name: str
    columns: tuple[tuple[str, pa.DataType], ...]
    key: tuple[str, ...] = ("symbol", "ts")
    prices: tuple[str, ...] = ()
    fine_prices: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    partition: str = "month"

    @property
    def value_names(self) -> list[str]:
        return [n for n, _ in self.columns]

    @property
    def has_factor(self) -> bool:
        return "factor" in self.key

    def arrow_schema(self) -> pa.Schema:
        """The user-facing Arrow schema with ``ts`` as int64 nanoseconds."""
        head = [("ts", pa.int64()), ("symbol", pa.string())]
        if self.has_factor:
            head.append(("factor", pa.string()))
        return pa.schema(head + list(self.columns))


_BAR_COLUMNS = (
    ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
    ("volume", pa.float64()), ("vwap", pa.float64()), ("trades", pa.int64()),
)

TABLES: dict[str, TableSpec] = {
    "ticks": TableSpec(
        "ticks",
        (("price", pa.float64()), ("volume", pa.float64()), ("side", pa.int8()),
         ("bid", pa.float64()), ("ask", pa.float64())),
        prices=("price", "bid", "ask"), volumes=("volume",), required=("price", "volume"),
    ),
    "bars_1m": TableSpec("bars_1m", _BAR_COLUMNS, prices=("open", "high", "low", "close"),
                         fine_prices=("vwap",), volumes=("volume",), required=("open", "high", "low", "close", "volume")),
    "bars_1d": TableSpec("bars_1d", _BAR_COLUMNS, prices=("open", "high", "low", "close"),
                         fine_prices=("vwap",), volumes=("volume",), required=("open", "high", "low", "close", "volume"),
                         partition="year"),
    "factors": TableSpec("factors", (("value", pa.float64()),), key=("symbol", "factor", "ts"),
                         required=("value",)),
}


def table_spec(name: str) -> TableSpec:
    """The spec of a history table.

    Raises
    ------
    ValueError
        Naming the unknown table and the known ones.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown history table {name!r}: expected one of {sorted(TABLES)}") from None
