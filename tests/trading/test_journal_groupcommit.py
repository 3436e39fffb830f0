"""Group commit in the order journal: every acknowledged record is on disk, fsyncs are shared.

The fsync is replaced by a recording one where a test needs to see *what* an fsync covered:
it notes the file size when the call starts (the bytes it makes durable) and, only when it
returns, adds them to what is durable. An append that returned before the bytes of its
record were covered by a finished fsync would be an acknowledgement of a record that a power
cut could lose.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal as D

import pytest
from typer.testing import CliRunner

from pyplatform.execution import journal as journal_mod
from pyplatform.execution.journal import Journal, JournalWriteError
from pyplatform.execution.messages import OrdType, Side, SubmitOrder
from pyplatform.execution.oms import OrderManager


def order(cl: str) -> SubmitOrder:
    return SubmitOrder(cl, "acc", "AAPL.US", Side.BUY, D(100), OrdType.LIMIT, D("100.01"), ts=1)


class RecordingFsync:
    """An fsync that sleeps (a slow disk, so appenders pile up) and records what it covered."""

    def __init__(self, delay_s: float = 0.004, fail_on: int | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.calls = 0
        self.durable_bytes = 0
        self.lock = threading.Lock()
        self.real = os.fsync

    def __call__(self, fd: int) -> None:
        size_at_start = os.fstat(fd).st_size
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay_s)
        if self.fail_on is not None and n >= self.fail_on:
            raise OSError(5, "Input/output error")
        self.real(fd)
        with self.lock:
            self.durable_bytes = max(self.durable_bytes, size_at_start)


@pytest.fixture
def slow_fsync(monkeypatch):
    rec = RecordingFsync()
    monkeypatch.setattr(journal_mod.os, "fsync", rec)
    return rec


def _hammer(journal: Journal, rec: RecordingFsync | None, threads: int, per: int, path) -> list[str]:
    """``threads`` threads append ``per`` records each; after each return, check it is durable."""
    errors: list[str] = []
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        start.wait()
        for i in range(per):
            cl = f"t{t}-{i}"
            journal.append(order(cl))
            if rec is not None:
                # the record's bytes must lie inside the prefix a *finished* fsync covered
                with rec.lock:
                    covered = rec.durable_bytes
                with open(path, "rb") as fh:
                    head = fh.read(covered)
                if f'"client_order_id":"{cl}"'.encode() not in head:
                    errors.append(f"{cl} acknowledged before an fsync covered it")

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return errors


def test_concurrent_appends_share_fsyncs_and_each_ack_is_durable(tmp_path, slow_fsync):
    path = tmp_path / "j"
    j = Journal(path)
    threads, per = 8, 15
    errors = _hammer(j, slow_fsync, threads, per, path)
    j.close()
    assert errors == []
    assert j.appended == threads * per
    # 120 records, 8 writers against a 4 ms fsync: groups must have formed (one fsync each
    # would be 120 calls); a lone appender at a time would give exactly 120
    assert slow_fsync.calls == j.fsyncs
    assert j.fsyncs < threads * per / 2, j.fsyncs
    ids = [m.client_order_id for m in Journal.read(path)]
    assert sorted(ids) == sorted(f"t{t}-{i}" for t in range(threads) for i in range(per))
    for t in range(threads):  # each writer's records in its own order
        assert [x for x in ids if x.startswith(f"t{t}-")] == [f"t{t}-{i}" for i in range(per)]


def test_fsync_per_append_baseline_pays_one_fsync_each(tmp_path, slow_fsync):
    path = tmp_path / "j"
    j = Journal(path, group_commit=False)
    errors = _hammer(j, slow_fsync, 4, 5, path)
    j.close()
    assert errors == []
    assert slow_fsync.calls == 20 and j.fsyncs == 20


def test_lone_appender_pays_exactly_one_fsync_per_append(tmp_path, slow_fsync):
    slow_fsync.delay_s = 0
    path = tmp_path / "j"
    j = Journal(path)
    for i in range(6):
        j.append(order(f"o{i}"))
        with open(path, "rb") as fh:
            assert f'"o{i}"'.encode() in fh.read(slow_fsync.durable_bytes)
    j.append_many([order("m1"), order("m2")])  # one write, one fsync for both
    j.close()
    assert slow_fsync.calls == 7
    assert [m.client_order_id for m in Journal.read(path)] == [f"o{i}" for i in range(6)] + ["m1", "m2"]


def test_write_then_wait_lets_a_caller_release_its_lock_before_the_fsync(tmp_path, slow_fsync):
    path = tmp_path / "j"
    j = Journal(path)
    a = j.write_many([order("a")])
    b = j.write_many([order("b")])
    assert slow_fsync.calls == 0  # nothing waited yet
    j.wait_durable(b)  # one fsync covers both (durability is prefix-ordered)
    j.wait_durable(a)
    assert slow_fsync.calls == 1
    assert j.write_many([]) == b  # an empty write is durable with what came before
    j.close()
    with open(path, "rb") as fh:
        assert b'"b"' in fh.read(slow_fsync.durable_bytes)


def test_failed_fsync_poisons_the_journal_for_every_waiter(tmp_path, monkeypatch):
    rec = RecordingFsync(delay_s=0.003, fail_on=2)
    monkeypatch.setattr(journal_mod.os, "fsync", rec)
    j = Journal(tmp_path / "j")
    j.append(order("ok"))  # the first fsync succeeds
    outcomes: list[str] = []

    def worker(t: int) -> None:
        try:
            j.append(order(f"w{t}"))
            outcomes.append("acked")
        except JournalWriteError:
            outcomes.append("refused")

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(5)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert outcomes == ["refused"] * 5  # no record after a failed fsync is acknowledged
    with pytest.raises(JournalWriteError, match="earlier journal write failed"):
        j.append(order("later"))
    assert rec.durable_bytes > 0 and j.fsyncs == 1


def test_order_manager_over_group_commit_recovers_everything_acknowledged(tmp_path, slow_fsync):
    path = tmp_path / "j"
    oms = OrderManager(Journal(path))
    lock = threading.Lock()  # the order manager is not thread-safe; its caller serialises it

    def worker(t: int) -> None:
        for i in range(5):
            with lock:
                ticket = oms.journal.write_many([order(f"t{t}-{i}")])
                oms._commit_submit(order(f"t{t}-{i}"))
            oms.journal.wait_durable(ticket)  # the fsync is shared outside the caller's lock

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    oms.journal.close()
    assert oms.journal.fsyncs < 20
    rec = OrderManager.recover(path, reopen=False)
    assert set(rec.orders) == set(oms.orders) and len(rec.orders) == 20


_KILLED_WRITER = textwrap.dedent("""
    import sys, threading
    from decimal import Decimal as D
    from pyplatform.execution.journal import Journal
    from pyplatform.execution.messages import OrdType, Side, SubmitOrder
    j = Journal(sys.argv[1])
    out = threading.Lock()
    def worker(t):
        for i in range(100000):
            cl = f"t{t}-{i}"
            j.append(SubmitOrder(cl, "acc", "AAPL.US", Side.BUY, D(1), OrdType.LIMIT, D("1.5"), ts=1))
            with out:  # printed only after append returned: an acknowledgement
                sys.stdout.write(cl + "\\n"); sys.stdout.flush()
    for t in range(4):
        threading.Thread(target=worker, args=(t,), daemon=True).start()
    threading.Event().wait()
""")


def test_process_killed_mid_stream_keeps_every_acknowledged_record(tmp_path):
    path = tmp_path / "j"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE)
    acked = []
    try:
        while len(acked) < 200:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            acked.append(line.decode().strip())
    finally:
        proc.kill()  # SIGKILL: no flush, no close, possibly mid-write
        proc.wait()
    # complete lines only: a torn last line of output names an id only in part
    acked += [x.decode().strip() for x in proc.stdout.read().splitlines(keepends=True) if x.endswith(b"\n")]
    on_disk = {m.client_order_id for m in Journal.read(path)}
    missing = [a for a in acked if a and a not in on_disk]
    assert missing == []
    # the journal reopens cleanly (a torn tail, if any, repaired) and takes appends
    with Journal(path) as j:
        j.append(order("after-restart"))
    assert "after-restart" in {m.client_order_id for m in Journal.read(path)}


def test_bench_journal_quick_runs_both_modes():
    from pyplatform.cli.main import app

    r = CliRunner().invoke(app, ["bench", "journal", "--quick"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "group commit" in out and "fsync per append" in out
    assert "signal->ack" in out and "fsync-per-append journal" in out
    assert "x the records/s of fsync per append" in out


def test_apply_many_waits_once_for_a_batch_and_keeps_what_was_applied(tmp_path, monkeypatch):
    from pyplatform.execution.messages import OrderAccepted, OrderFilled
    from pyplatform.execution.oms import UnknownOrder

    calls = []
    real = os.fsync
    monkeypatch.setattr(journal_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    path = tmp_path / "oms.journal"
    oms = OrderManager(Journal(path))
    oms.submit(order("o1"))
    calls.clear()
    batch = [OrderAccepted("o1", 2, "B1", "E0"), OrderFilled("o1", 3, "E1", D(40), D("100.00"), D(60)),
             OrderFilled("o1", 4, "E2", D(60), D("100.00"), D(0))]
    results = oms.apply_many(batch)
    assert [r.status.name for r in results] == ["NEW", "PARTIALLY_FILLED", "FILLED"]
    assert len(calls) == 1  # one fsync for three records (apply() pays one each)

    # an unknown order mid-batch: the record before it is still durable and recovered
    oms.submit(order("o2"))
    with pytest.raises(UnknownOrder):
        oms.apply_many([OrderAccepted("o2", 5, "B2", "E3"), OrderAccepted("nope", 6)])
    again = OrderManager.recover(path, reopen=False)
    assert again.orders["o1"].status.name == "FILLED" and again.orders["o2"].status.name == "NEW"
    assert again.positions.get("acc", "AAPL.US").quantity == D(100)


def test_open_orders_index_follows_every_state_change():
    from pyplatform.execution.messages import OrderAccepted, OrderCanceled, OrderFilled

    oms = OrderManager()
    for cl in ("a", "b", "c"):
        oms.submit(order(cl))
    assert [o.client_order_id for o in oms.open_orders()] == ["a", "b", "c"]
    oms.apply(OrderAccepted("b", 2, "B", "E0"))
    oms.apply(OrderFilled("b", 3, "E1", D(100), D("100.00"), D(0)))
    oms.apply(OrderAccepted("a", 4, "A", "E2"))
    oms.apply(OrderCanceled("a", 5))
    assert [o.client_order_id for o in oms.open_orders()] == ["c"]
    assert oms.open_orders(symbol="MSFT.US") == [] and oms.open_orders(account="acc")[0].client_order_id == "c"
    # same answer as scanning every order
    assert oms.open_orders() == [o for o in oms.orders.values() if o.is_open]
