"""`pyplatform bench signals` runs end to end at a tiny scale (figures are not asserted: no timing in tests)."""

from __future__ import annotations

from pyplatform.signals.bench import format_results, run_signals_bench, wire_sizes


def test_bench_runs_both_fanouts_and_reports_every_figure():
    res = run_signals_bench(clients=20, per_client=3, symbols=200, rate=10, seconds=1.0, repeat=1, progress=False)
    assert set(res) == {("shared", "msgpack"), ("naive", "msgpack")}
    for (mode, _), (r,) in res.items():
        assert r.msgs_per_s > 0 and r.frames_per_s > 0 and r.dropped == 0
        assert r.p50_ms <= r.p99_ms
        assert 30 < r.bytes_per_msg < 120  # a factor row in msgpack is ~56 bytes
    text = format_results(res, 20, 3, 200, 10)
    assert "shared/naive throughput x" in text
    sizes = {name: (live, replay) for name, live, replay in wire_sizes(200, 3, 500)}
    assert sizes["json"][0] > sizes["msgpack"][0] > sizes["msgpack+zstd"][0]
    assert sizes["msgpack+zstd"][1] < sizes["msgpack+zstd"][0]  # zstd pays off on big frames
