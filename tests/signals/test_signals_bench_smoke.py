"""`pyplatform bench signals` runs end to end at a tiny scale (figures are not asserted: no timing in tests)."""

from __future__ import annotations

from pyplatform.bench.signals import format_results, run_signals_bench, wire_sizes


def test_bench_runs_both_fanouts_and_the_socket_floor_and_reports_every_figure():
    res = run_signals_bench(clients=20, per_client=3, symbols=200, rate=10, seconds=1.0, repeat=1, progress=False)
    assert set(res) == {("shared", "msgpack"), ("naive", "msgpack"), ("floor", "msgpack")}
    for (mode, _), (r,) in res.items():
        assert r.msgs_per_s > 0 and r.frames_per_s > 0 and r.dropped == 0
        assert r.p50_ms <= r.p99_ms
        assert 30 < r.bytes_per_msg < 120  # a factor row in msgpack is ~56 bytes
    text = format_results(res, 20, 3, 200, 10)
    assert "shared/naive throughput x" in text and "shared/socket-floor throughput x" in text
    sizes = {name: (live, replay) for name, live, replay in wire_sizes(200, 3, 500)}
    assert sizes["json"][0] > sizes["msgpack"][0] > sizes["msgpack+zstd"][0]
    assert sizes["msgpack+zstd"][1] < sizes["msgpack+zstd"][0]  # zstd pays off on big frames


def test_load_generator_scan_counts_what_full_decoding_finds():
    """The client's cheap scan (count rows, decode the first) against the full decoder."""
    import numpy as np
    import pyarrow as pa

    from pyplatform.bench.signals import _scan_messages
    from pyplatform.signals.wire import MsgpackZstdCodec, decode_messages

    codec = MsgpackZstdCodec(compress_min_bytes=1 << 30)
    rows = pa.table({"seq": pa.array(np.arange(5), pa.int64()), "ts": pa.array([7, 8, 9, 10, 11], pa.int64()),
                     "symbol": ["A", "B", "C", "D", "E"], "mom": pa.array(np.ones(5))})
    frames = [codec.frame("data", "factors:mom", [codec.encode_rows(rows.slice(i, n))[0]], n) for i, n in ((0, 2), (2, 3))]
    merged = codec.merge([codec.control({"type": "subscribed", "id": 1}), *frames])
    full = decode_messages(merged)
    scanned = _scan_messages(merged)
    assert [m["type"] for m in full] == [k for k, *_ in scanned] == ["subscribed", "data", "data"]
    assert [(n, ts) for _, n, ts, _ in scanned[1:]] == [(len(m["rows"]), m["rows"][0]["ts"]) for m in full[1:]] == [(2, 7), (3, 9)]
    assert scanned[0][3] == {"type": "subscribed", "id": 1}


def test_bench_signals_quick_from_the_cli():
    from typer.testing import CliRunner

    from pyplatform.cli.bench import app

    out = CliRunner().invoke(app, ["signals", "--quick"])
    assert out.exit_code == 0, out.output
    assert "20 subscribers x 3 symbols of 200" in out.output
    assert "shared/socket-floor throughput x" in out.output and "CPU ms/batch" in out.output
