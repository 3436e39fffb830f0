"""Shared fixtures: one small generated market per test session.

Generated once (a few seconds) into a session temp dir; tests that read history use it
read-only. Tests that write get their own ``tmp_path`` data directory.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def market_dir(tmp_path_factory):
    """Data directory holding 8 symbols (stocks, forex, crypto), Jan-Apr 2024, 1 day of ticks."""
    from pyplatform.data import generate_market

    d = tmp_path_factory.mktemp("market")
    generate_market(d, n_symbols=8, start="2024-01-01", end="2024-05-01", tick_days=1, seed=11, progress=False)
    return d


@pytest.fixture
def market_settings(market_dir, tmp_path):
    """Settings reading the shared market; writes (registry, runs) go to a per-test copy dir."""
    import shutil

    from pyplatform.config import Settings

    d = tmp_path / "data"
    shutil.copytree(market_dir, d)
    return Settings(data_dir=d)


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch):
    # a developer's own PYPLATFORM_* variables must not leak into tests
    for k in list(os.environ):
        if k.startswith("PYPLATFORM_") and k != "PYPLATFORM_DOLPHINDB_URI":
            monkeypatch.delenv(k, raising=False)
