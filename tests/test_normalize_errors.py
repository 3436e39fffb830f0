"""One bad-value record and one "every bad value" error for normalising, storing and importing;
the far-future check reads only the clock it is given."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from pyplatform.clock import SimClock
from pyplatform.data.importer import ImportFailed, import_files
from pyplatform.normalize import BadValue, NormalizationError, to_ns

NOW = pd.Timestamp("2024-06-01").value
HOUR = pd.Timedelta("1h").value


def test_a_bad_value_reads_as_a_column_cell_or_as_a_file_cell():
    assert str(BadValue("close", 3, -1.0, "negative")) == "close[row 3] = -1.0: negative"
    assert (str(BadValue("Close", 0, "oops", "not a number", file="a.csv"))
            == "a.csv: row 0, column 'Close' = 'oops': not a number")


def test_the_error_names_the_first_values_and_counts_the_rest_on_one_line():
    errs = [BadValue("px", r, r, "negative") for r in range(7)]
    msg = str(NormalizationError(errs))
    assert msg.startswith("7 bad value(s): px[row 0] = 0: negative; px[row 1] = 1: negative")
    assert "px[row 4]" in msg and "px[row 5]" not in msg and msg.endswith(" (and 2 more)")
    assert "\n" not in msg
    assert "more" not in str(NormalizationError(errs[:5]))
    assert str(NormalizationError(errs, limit=2)).endswith("(and 5 more)")


def test_an_import_failure_is_the_same_error_listing_one_value_a_line():
    errs = [BadValue("c", r, "x", "not a number", file="f.csv") for r in range(12)]
    err = ImportFailed(errs)
    assert isinstance(err, NormalizationError) and err.errors == errs
    lines = str(err).split("\n")
    assert lines[0] == "import rejected, nothing written: 12 bad value(s):"
    assert lines[1] == "  f.csv: row 0, column 'c' = 'x': not a number"
    assert len(lines) == 1 + 10 + 1 and lines[-1] == "  ... and 2 more"


def test_the_future_check_uses_the_given_clock_and_never_wall_time():
    clock = SimClock(NOW)
    soon, later = [NOW + 23 * HOUR], [NOW + 25 * HOUR]
    assert to_ns(soon, clock=clock)[0] == soon[0]
    with pytest.raises(NormalizationError, match="in the future"):
        to_ns(later, clock=clock)
    clock.set(NOW + 2 * HOUR)  # the same value is fine once the (simulated) time has moved on
    assert to_ns(later, clock=clock)[0] == later[0]
    # and a timestamp far past wall time is accepted when the simulated now is later still
    far = pd.Timestamp("2200-01-01").value
    assert to_ns([far], clock=SimClock(far))[0] == far


def test_no_clock_is_a_type_error_unless_the_future_check_is_off():
    with pytest.raises(TypeError, match="clock"):
        to_ns([NOW])
    assert to_ns([NOW], max_future=None)[0] == NOW


def test_import_requires_a_clock(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("ts,symbol,open,high,low,close,volume\n1710163800,AAPL.US,1,1,1,1,1\n")
    assert inspect.signature(import_files).parameters["clock"].default is inspect.Parameter.empty
    with pytest.raises(TypeError, match="clock"):
        import_files(f, "bars_1m", store=None)
