"""Fixtures of the history-store tests: a fresh store per test and small generated data."""

from __future__ import annotations

import pytest

from pyplatform.data import generate_bars
from pyplatform.store import EmbeddedStore

SYMBOLS = ["AAA.US", "BBB.US", "EURUSD.GB", "BTCUSDT.BA"]


@pytest.fixture
def store(tmp_path):
    s = EmbeddedStore(tmp_path / "history", fsync=False, grace_s=0.0)
    yield s
    s.close()


@pytest.fixture(scope="session")
def bars():
    """Two weeks of 1-minute bars of four symbols straddling a month end (two partitions)."""
    return generate_bars(SYMBOLS, "2024-02-26", "2024-03-06", seed=11)
