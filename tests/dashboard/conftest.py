"""Fixtures for the dashboard tests: a small market in a tmp store, and screenshots."""

from __future__ import annotations

import pytest

from dashboard_helpers import SCREENSHOTS, SYMBOLS, daily_from_minutes, minute_bars


@pytest.fixture(scope="session")
def market_frames():
    m = minute_bars(SYMBOLS, days=40)
    return m, daily_from_minutes(m)


@pytest.fixture(scope="session")
def market_settings(tmp_path_factory, market_frames):
    """Settings whose data dir holds the small market in the embedded history store."""
    from pyplatform.config import get_settings
    from pyplatform.backends import open_store

    data_dir = tmp_path_factory.mktemp("dash-market")
    settings = get_settings(data_dir=data_dir, fsync="never")
    store = open_store(settings)
    m, d = market_frames
    store.write("bars_1m", m)
    store.write("bars_1d", d)
    return settings


@pytest.fixture
def screenshot():
    def _take(driver, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return _take
