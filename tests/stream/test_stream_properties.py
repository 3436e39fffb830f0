"""Property tests: any append sizes, segment sizes and memory windows read back exactly;
an asyncio consumer woken by listeners sees every row."""

from __future__ import annotations

import asyncio
import tempfile
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import make_ticks

from pyplatform.clock import SimClock
from pyplatform.domain.schemas import TICKS
from pyplatform.stream import StreamTable


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=25),
       segment_bytes=st.sampled_from([300, 1500, 1 << 20]), memory_rows=st.integers(1, 120),
       reopen=st.booleans(), data=st.data())
def test_reads_equal_what_was_appended(sizes, segment_bytes, memory_rows, reopen, data):
    with tempfile.TemporaryDirectory() as d:
        t = StreamTable("ticks", TICKS, d, segment_bytes=segment_bytes, memory_rows=memory_rows, fsync="never", clock=SimClock())
        start, prices = 0, []
        for n in sizes:
            batch = make_ticks(n, start)
            first, last = t.append(batch)
            assert (first, last) == (start, start + n - 1)
            prices.extend(batch["price"].tolist())
            start += n
        if reopen:
            t.close()
            t = StreamTable("ticks", None, d, memory_rows=memory_rows, clock=SimClock())
        total = len(prices)
        assert t.next_offset == total
        a = data.draw(st.integers(0, total))
        b = data.draw(st.integers(a, total + 5))
        got = t.read(a, b)
        assert got.column("offset").to_pylist() == list(range(a, min(b, total)))
        assert got.column("price").to_pylist() == prices[a:b]
        assert got.column("ts").to_pylist() == [i * 1_000_000 for i in range(a, min(b, total))]
        t.close()


def test_asyncio_consumer_woken_by_listener_sees_every_row():
    table = StreamTable("ticks", TICKS, clock=SimClock())
    sub = table.subscribe("ws", offset=0, batch_size=64)

    async def consume() -> list[int]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        table.add_listener(lambda first, last: loop.call_soon_threadsafe(wake.set))
        writer = threading.Thread(target=lambda: [table.append(make_ticks(9, 9 * i)) for i in range(50)])
        writer.start()
        seen: list[int] = []
        while len(seen) < 450:
            rows = sub.poll()
            if rows is None:
                wake.clear()
                if sub.pending == 0:  # re-check after clear so an append in between is not missed
                    await asyncio.wait_for(wake.wait(), timeout=10)
                continue
            seen.extend(rows.column("offset").to_pylist())
        writer.join()
        return seen

    assert asyncio.run(consume()) == list(range(450))
    assert np.all(np.diff(table.read().column("offset").to_numpy()) == 1)
