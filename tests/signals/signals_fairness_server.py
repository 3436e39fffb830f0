"""A signal service in its own process for the replay fairness test.

Run as ``python signals_fairness_server.py SECRET_HEX N_SYMBOLS PREFILL_BATCHES RATE [CONFIG_JSON]``: fills
a factor table with ``PREFILL_BATCHES`` batches (one row per symbol) so a replay from 0 is
long, starts the service on a free port, prints ``{"port": ..., "pid": ...}`` and then, like
a pipeline sharing the process with the service, appends one batch per ``1/RATE`` seconds
with ``ts`` = the append time (clients measure publish-to-receive latency from it). Ends on
SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import numpy as np


async def main(secret: bytes, n_symbols: int, prefill_batches: int, rate: float, overrides: dict) -> None:
    from pyplatform.domain.schemas import factor_schema
    from pyplatform.signals.auth import KeyRing, TokenVerifier
    from pyplatform.signals.server import ServiceConfig, SignalService
    from pyplatform.stream import StreamTable
    from pyplatform.clock import LiveClock, SimClock

    symbols = [f"R{i:04d}.US" for i in range(n_symbols)]
    table = StreamTable("factors", factor_schema(["mom"]), memory_rows=prefill_batches * n_symbols + 2_000_000, clock=SimClock())
    step = 100  # batches per append while filling: fast, and the same rows a pipeline would have written
    for k in range(0, prefill_batches, step):
        m = min(step, prefill_batches - k)
        table.append({"ts": np.repeat(np.arange(k, k + m, dtype=np.int64), n_symbols),
                      "symbol": symbols * m, "mom": np.random.default_rng(k).standard_normal(m * n_symbols)})
    # the wall clock: the test process issues the tokens at time.time_ns()
    svc = SignalService({"factors": table}, TokenVerifier(KeyRing(secret)), ServiceConfig(port=0, **overrides),
                        clock=LiveClock())
    await svc.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(json.dumps({"port": svc.port, "pid": os.getpid(), "rows": int(table.next_offset)}), flush=True)
    values = np.zeros(n_symbols)
    period = 1.0 / rate
    next_t = time.monotonic()
    while not stop.is_set():
        table.append({"ts": np.full(n_symbols, time.time_ns(), dtype=np.int64), "symbol": symbols, "mom": values})
        next_t += period
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, next_t - time.monotonic()))
        except asyncio.TimeoutError:
            pass
    await svc.stop()


if __name__ == "__main__":
    a = sys.argv[1:]
    # an optional 5th argument: ServiceConfig overrides as JSON (to check the test fails on an
    # unbounded configuration, e.g. '{"replay_chunk_rows": 100000, "queue_bytes": 1000000000000}')
    asyncio.run(main(bytes.fromhex(a[0]), int(a[1]), int(a[2]), float(a[3]), json.loads(a[4]) if len(a) > 4 else {}))
