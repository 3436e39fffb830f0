"""The bench command runs end to end on tiny inputs (figures themselves are not asserted)."""

from __future__ import annotations

from typer.testing import CliRunner

from pyplatform.bench.stream import N_MEASUREMENTS, format_results, run_stream_bench


def test_bench_reports_every_measurement_with_ratios():
    seen = []
    results = run_stream_bench(rows=2_000, batch=500, repeat=1, n_symbols=20, on_result=seen.append)
    assert len(results) == N_MEASUREMENTS == len(seen)
    assert all(r["rows_per_s"] > 0 and r["median_s"] > 0 for r in results)
    ours = [r for r in results if r["what"].startswith(("StreamTable", "Subscription", "BarEngine"))]
    assert ours and all(r["vs_pandas"] is not None for r in ours)
    text = format_results(results, 2_000, 500)
    assert "BarEngine.feed per micro-batch" in text and "vs pandas" in text


def test_bench_stream_cli_is_registered():
    from pyplatform.cli.bench import app

    out = CliRunner().invoke(app, ["stream", "--rows", "1000", "--batch", "250", "--repeat", "1", "--symbols", "5"])
    assert out.exit_code == 0, out.output
    assert "Subscription.poll from disk log" in out.output
