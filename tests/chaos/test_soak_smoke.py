"""The soak command's machinery on a short run (the figures come from `pyplatform bench soak`)."""

from __future__ import annotations

import pytest


def test_short_soak_samples_windows_and_checks_integrity():
    from pyplatform.bench.soak import format_soak, run_soak

    res = run_soak(seconds=3.0, rate=1_000, symbols=5, window_s=1.0)
    assert len(res.windows) >= 2
    assert res.rows > 500 and res.missing == 0 and res.duplicates_stored == 0 and res.audit_ok
    assert all(w.rss_mib > 10 and w.ticks_per_s > 0 for w in res.windows)
    # the split adds up to the total (statm and status are read a moment apart: 5 MiB slack)
    assert all(w.anon_mib > 10 and abs(w.anon_mib + w.file_mib - w.rss_mib) < 5 for w in res.windows)
    text = format_soak(res)
    assert "drift, last window / first steady window: RSS" in text and "0 sequence numbers missing" in text
    assert "anonymous (heap)" in text
    with pytest.raises(ValueError, match="at least two windows"):
        run_soak(seconds=1.0, window_s=1.0)
