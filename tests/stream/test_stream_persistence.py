"""Crash safety, replay, retention and fsync policies of the on-disk log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from stream_helpers import make_ticks

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import TICKS
from pyplatform.stream import OFFSET_ACKED, CorruptLogError, RetentionError, StreamTable

REPO = Path(__file__).resolve().parents[2]


def _segments(tmp_path, name="ticks"):
    return sorted((tmp_path / name).glob("*.seg"))


@pytest.mark.parametrize("cut", [1, 17, 39, 45, -1])
def test_torn_last_frame_is_truncated_on_open_and_earlier_rows_survive(tmp_path, cut):
    t = StreamTable("ticks", TICKS, tmp_path, fsync="always", clock=SimClock())
    t.append(make_ticks(5))
    t.append(make_ticks(5, 5))
    t.close()
    seg = _segments(tmp_path)[-1]
    size_after_two = seg.stat().st_size
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())
    t.append(make_ticks(5, 10))
    t.close()
    # Simulate a crash in the middle of writing the third frame: keep only part of it.
    full = seg.stat().st_size
    keep = size_after_two + (cut if cut > 0 else (full - size_after_two) - 1)
    os.truncate(seg, keep)
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())
    assert t.next_offset == 10
    assert seg.stat().st_size == size_after_two
    assert t.read().column("ts").to_pylist() == make_ticks(10)["ts"].tolist()
    assert t.append(make_ticks(2, 10)) == (10, 11)  # appends continue at the right offset


def test_corrupted_bytes_in_last_frame_are_detected_by_checksum(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    t.append(make_ticks(5))
    t.append(make_ticks(5, 5))
    t.close()
    seg = _segments(tmp_path)[-1]
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0xFF  # flip a byte inside the last frame's payload
    seg.write_bytes(bytes(data))
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())
    assert t.next_offset == 5
    assert t.read().column("price").to_pylist() == make_ticks(5)["price"].tolist()


def test_damage_in_an_older_segment_is_an_error_not_a_silent_loss(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, segment_bytes=500, clock=SimClock())
    for i in range(4):
        t.append(make_ticks(5, 5 * i))
    t.close()
    first = _segments(tmp_path)[0]
    os.truncate(first, first.stat().st_size - 10)
    with pytest.raises(CorruptLogError, match=first.name):
        StreamTable("ticks", None, tmp_path, clock=SimClock())


_WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {helpers!r})
    from stream_helpers import make_ticks
    from pyplatform.clock import SimClock
    from pyplatform.domain.schemas import TICKS
    from pyplatform.stream import StreamTable
    t = StreamTable("ticks", TICKS, {directory!r}, fsync="always", segment_bytes=4000, clock=SimClock())
    i = 0
    while True:
        first, last = t.append(make_ticks(7, 7 * i))
        print(last, flush=True)   # printed only once the rows are fsynced
        i += 1
""")


def test_killed_writer_loses_nothing_it_reported_durable(tmp_path):
    code = _WRITER.format(helpers=str(Path(__file__).parent), directory=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    confirmed = -1
    deadline = time.monotonic() + 30
    while confirmed < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        confirmed = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert confirmed >= 300, "writer did not start"
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())
    assert t.next_offset - 1 >= confirmed
    n = t.next_offset
    rows = t.read()
    assert rows.column("offset").to_pylist() == list(range(n))
    assert rows.column("ts").to_pylist() == [i * 1_000_000 for i in range(n)]
    assert t.append(make_ticks(3, n)) == (n, n + 2)


def test_retention_by_rows_deletes_whole_segments_and_names_oldest_offset(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, segment_bytes=1500, retention_rows=40, memory_rows=10, clock=SimClock())
    sub = t.subscribe("slow", offset=0)
    for i in range(30):
        t.append(make_ticks(5, 5 * i))
    assert t.oldest_offset > 0
    assert t.next_offset - t.oldest_offset >= 40  # never fewer than asked for
    assert int(_segments(tmp_path)[0].stem) == t.oldest_offset
    with pytest.raises(RetentionError) as err:
        sub.poll()
    assert err.value.oldest_offset == t.oldest_offset and str(t.oldest_offset) in str(err.value)
    with pytest.raises(RetentionError):
        t.read(0, 5)
    sub.seek(err.value.oldest_offset)
    got = sub.poll(max_rows=10_000)
    assert got.column("offset").to_pylist()[0] == t.oldest_offset
    t.close()
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())  # retention survives reopen
    assert t.oldest_offset == int(_segments(tmp_path)[0].stem)
    with pytest.raises(RetentionError):
        t.subscribe("late", offset=0)


def test_retention_by_bytes_and_by_age(tmp_path):
    t = StreamTable("b", TICKS, tmp_path, segment_bytes=1000, retention_bytes=3000, clock=SimClock())
    for i in range(40):
        t.append(make_ticks(5, 5 * i))
    total = sum(p.stat().st_size for p in _segments(tmp_path, "b"))
    assert t.oldest_offset > 0 and total >= 3000
    assert total - _segments(tmp_path, "b")[0].stat().st_size < 3000

    clock = SimClock(0)
    t = StreamTable("a", TICKS, tmp_path, segment_bytes=1000, retention_age_s=60, clock=clock)
    for i in range(10):
        t.append(make_ticks(5, 5 * i))
    n_before = len(_segments(tmp_path, "a"))
    clock.advance(61 * 10**9)
    assert t.enforce_retention() == n_before - 1  # all but the active segment aged out
    assert t.oldest_offset == int(_segments(tmp_path, "a")[0].stem)


def test_in_memory_table_retention_is_its_window():
    t = StreamTable("m", TICKS, memory_rows=20, clock=SimClock())
    for i in range(10):
        t.append(make_ticks(5, 5 * i))
    assert t.oldest_offset == 30 and t.next_offset == 50
    with pytest.raises(RetentionError, match="oldest offset still available is 30"):
        t.read(10)


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_every_fsync_policy_replays_after_close(tmp_path, policy):
    t = StreamTable("ticks", TICKS, tmp_path, fsync=policy, clock=SimClock())
    for i in range(5):
        t.append(make_ticks(4, 4 * i))
    t.ack("reader", 9)
    t.close()
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())
    sub = t.subscribe("reader", offset=OFFSET_ACKED)
    assert sub.poll().column("offset").to_pylist() == list(range(10, 20))


def test_batch_policy_fsyncs_a_pause_within_the_interval(tmp_path):
    t = StreamTable("ticks", TICKS, tmp_path, fsync="batch", fsync_interval_s=1.0, clock=SimClock())
    t._log._last_fsync = time.monotonic()  # an fsync just happened: this append is not fsynced inline
    t.append(make_ticks(3))
    assert t._log.dirty
    deadline = time.monotonic() + 10
    while t._log.dirty and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not t._log.dirty  # the timer fsynced it although no further append came
    t.close()


def test_failed_write_leaves_no_partial_frame_behind(tmp_path, monkeypatch):
    import errno

    from pyplatform.stream import log as log_module

    t = StreamTable("ticks", TICKS, tmp_path, clock=SimClock())
    t.append(make_ticks(4))
    seg = _segments(tmp_path)[-1]
    size = seg.stat().st_size
    real_writev = log_module.os.writev

    def disk_full(fd, buffers):
        os.write(fd, bytes(buffers[0])[:10])  # part of the header gets out, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(log_module.os, "writev", disk_full)
    with pytest.raises(OSError, match="No space"):
        t.append(make_ticks(4, 4))
    monkeypatch.setattr(log_module.os, "writev", real_writev)
    assert t.next_offset == 4 and seg.stat().st_size == size
    assert t.append(make_ticks(4, 4)) == (4, 7)
    t.close()
    t = StreamTable("ticks", None, tmp_path, clock=SimClock())
    assert t.read().column("ts").to_pylist() == make_ticks(8)["ts"].tolist()
