"""pyplatform: a time-series-database-centric analytics platform for quantitative trading.

In a notebook::

    import pyplatform as pp
    bars = pp.history("bars_1m", symbols=["AAA.US"], start="2024-01-01", end="2024-02-01")
"""

__version__ = "0.1.0"
