"""Helpers of the chaos tests: child processes that do real work and say what they acknowledged.

Each ``*_child`` runs in its own interpreter (``spawn_child``) and prints one line per
acknowledged step to stdout (flushed), *after* the step returned: what the parent saw printed
was acknowledged, so it must survive a SIGKILL at any later moment. The parent kills the
child at random points (``kill_at_random``), restarts it, and compares the restarted state
with everything that was printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def spawn_child(func: str, *args: str) -> subprocess.Popen:
    """Run ``chaos_support.<func>(*args)`` in a fresh interpreter, stdout piped line by line."""
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import chaos_support as c; c.{func}(*sys.argv[1:])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPLATFORM_")}
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=env, text=True, bufsize=1)


class Reader:
    """Collects a child's stdout lines in a thread (so a kill never blocks the parent)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines = proc, []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n:
            if self.proc.poll() is not None and not self.thread.is_alive():
                raise AssertionError(f"child exited ({self.proc.returncode}) before {n} lines: "
                                     f"{self.proc.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"child printed {len(self.lines)} of {n} lines in {timeout}s")
            time.sleep(0.01)

    def finish(self) -> list[str]:
        self.proc.wait(60)
        self.thread.join(10)
        return self.lines


def kill_at_random(proc: subprocess.Popen, reader: Reader, rng: np.random.Generator, warmup_lines: int,
                   low: float = 0.05, high: float = 0.6) -> list[str]:
    """Wait until the child acknowledged ``warmup_lines`` steps, then SIGKILL it after a random delay."""
    reader.wait_for(warmup_lines)
    time.sleep(float(rng.uniform(low, high)))
    proc.send_signal(signal.SIGKILL)
    return reader.finish()


# -- children ---------------------------------------------------------------------------------
def audit_child(path: str, start: str, n: str) -> None:
    """Append audit records ``start..start+n``; print each seq once the append returned."""
    from pyplatform.audit import AuditLog
    from pyplatform.clock import LiveClock

    lg = AuditLog(path, LiveClock())
    for i in range(int(start), int(start) + int(n)):
        h = lg.append("order.submit", "chaos", f"o{i}")
        print(f"{h.seq} o{i}", flush=True)


def oms_child(journal: str, n: str) -> None:
    """Submit, accept and fill orders o0..o{n-1} through a journaled OrderManager.

    Restarted, it recovers from the journal and carries on from where the journal says it
    is, re-sending the in-flight step (an execution already applied is dropped by identity).
    Prints ``submit|ack|fill <id>`` after each step returned (the journal fsyncs first).
    """
    from decimal import Decimal

    from pyplatform.execution.messages import OrderAccepted, OrderFilled, Side, SubmitOrder
    from pyplatform.execution.oms import OrderManager
    from pyplatform.execution.states import OrderStatus

    oms = OrderManager.recover(journal) if Path(journal).exists() else None
    if oms is None:
        from pyplatform.execution.journal import Journal

        oms = OrderManager(Journal(journal))
    for i in range(int(n)):
        oid = f"o{i}"
        order = oms.orders.get(oid)
        if order is not None and order.status == OrderStatus.FILLED:
            continue
        cmd = SubmitOrder(oid, "chaos", "AAPL.US", Side.BUY, Decimal(1), price=Decimal("100.00"), ts=i)
        oms.submit(cmd)  # idempotent for a known id with the same terms
        print(f"submit {oid}", flush=True)
        if oms.orders[oid].status == OrderStatus.PENDING_NEW:
            oms.apply(OrderAccepted(oid, i, broker_order_id=f"b{i}", exec_id=f"a{i}"))
        print(f"ack {oid}", flush=True)
        oms.apply(OrderFilled(oid, i, exec_id=f"f{i}", last_qty=Decimal(1), last_px=Decimal("100.00"),
                              leaves_qty=Decimal(0)))
        print(f"fill {oid}", flush=True)
    print("done", flush=True)


def feed_child(data_dir: str, url: str, rest_url: str, token: str, symbols: str, seconds: str) -> None:
    """``run_feed`` into durable (fsync=always) stream tables; print each tick append's offsets."""
    import asyncio

    from pyplatform.config import Settings
    from pyplatform.feeds import run_feed
    from pyplatform.stream import StreamTables
    from pyplatform.clock import SimClock
    from pyplatform.stream.options import TableOptions

    async def main() -> None:
        settings = Settings(data_dir=data_dir)
        tables = StreamTables(settings.path("stream"), options=TableOptions(fsync="always"), clock=SimClock())
        from pyplatform.feeds.schemas import TICKS

        ticks = tables.get_table("ticks", TICKS)
        ticks.add_listener(lambda first, last: print(f"{first} {last}", flush=True))
        stop = asyncio.Event()
        if float(seconds) > 0:
            asyncio.get_running_loop().call_later(float(seconds), stop.set)
        await run_feed(settings, tables, symbols.split(","), stop, url=url, token=token, rest_url=rest_url,
                       bar_writer=lambda bars: None, ping_interval_s=0.2, backoff_initial_s=0.05, backoff_max_s=0.2)
        tables.close()
        print("stopped", flush=True)

    asyncio.run(main())


class SimulatorThread:
    """The exchange simulator on its own event loop in a thread of the parent (recording)."""

    def __init__(self, **config) -> None:
        import asyncio

        from pyplatform.feeds.simulator import SimulatorConfig, start_simulator

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim = asyncio.run_coroutine_threadsafe(start_simulator(SimulatorConfig(**config)), self.loop).result(30)

    def call(self, fn, *args):
        """Run ``fn(*args)`` (sync or coroutine function) on the simulator's loop."""
        import asyncio

        async def wrap():
            out = fn(*args)
            return await out if asyncio.iscoroutine(out) else out
        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(30)

    def stop(self) -> None:
        self.call(self.sim.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def service_child(data_dir: str, port: str, secret_file: str, produce_s: str, linger_s: str) -> None:
    """A persisted ``signals`` table fed by a producer, served by the signal service.

    The producer appends 20 rows every 20 ms whose ``strength`` is the row's own offset (so a
    subscriber can tell a row delivered under the wrong sequence number); each append's
    offsets are printed once it returned (fsync=always: durable). ``produce_s`` 0 means
    until killed; then the service lingers ``linger_s`` so subscribers catch up.
    """
    import asyncio
    import time as _time

    from pyplatform.config import Settings
    from pyplatform.domain.schemas import SIGNALS
    from pyplatform.signals.service import serve
    from pyplatform.stream import StreamTable
    from pyplatform.clock import LiveClock, SimClock

    settings = Settings(data_dir=data_dir, signal_port=int(port), jwt_secret_file=secret_file)
    table = StreamTable("signals", SIGNALS, Path(data_dir) / "stream", fsync="always", clock=SimClock())

    async def produce(until: float) -> None:
        while until <= 0 or _time.monotonic() < until:
            first = table.next_offset
            idx = np.arange(first, first + 20)
            table.append({"ts": np.full(20, _time.time_ns(), np.int64), "symbol": [f"S{i % 5}.US" for i in idx],
                          "strategy": ["momo"] * 20, "direction": np.ones(20, np.int8),
                          "strength": idx.astype(float), "reason": [""] * 20, "factors": ["{}"] * 20})
            print(f"{first} {first + 19}", flush=True)
            await asyncio.sleep(0.02)

    async def main() -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        svc = asyncio.create_task(serve(settings, {"signals": table}, stop, clock=LiveClock(), use_redis=False,
                                        ready=lambda s: ready.set()))
        await asyncio.wait_for(ready.wait(), 30)
        p = float(produce_s)
        await produce(_time.monotonic() + p if p > 0 else 0)
        await asyncio.sleep(float(linger_s))
        stop.set()
        await svc
        table.close()
        print("stopped", flush=True)

    asyncio.run(main())


class SubscriberThread:
    """A :class:`~pyplatform.client.SignalClient` in a thread, resuming by sequence across
    service restarts; ``messages`` holds (seq, strength) of every data row delivered."""

    def __init__(self, url: str, token: str, topic: str) -> None:
        import asyncio

        from pyplatform.client import SignalClient

        self.messages: list[tuple[int, float]] = []
        self.client = SignalClient(url, token, [topic], "*", from_seq=0, backoff_s=0.05, backoff_max_s=0.2,
                                   jitter=0.0, ping_interval_s=None)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main() -> None:
            async for msg in self.client:
                if msg.kind == "data":
                    self.messages.append((msg.seq, float(msg.row["strength"])))
        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # the test reports it
            self.error = exc

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline and self.error is None:
            time.sleep(0.02)

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(10)
        self.thread.join(10)
