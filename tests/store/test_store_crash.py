"""Crash safety and concurrent readers, with real processes.

A writer is killed at each named point of a write (the store's test hook calls ``os._exit``
there) and at random moments (SIGKILL); readers query while another process appends and
rewrites partitions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyplatform.store import EmbeddedStore

BATCH = 500
T0 = pd.Timestamp("2024-03-01").value
MIN = 60 * 10**9

# batch i: BATCH/2 minutes of two symbols starting at minute i*step (batches overlap when
# step < BATCH/2, forcing partition rewrites, and are disjoint otherwise)
def batch(i: int, step: int) -> dict:
    ts = T0 + (i * step + np.arange(BATCH // 2)) * MIN
    ts = np.concatenate([ts, ts])
    sym = np.array(["AAA.US"] * (BATCH // 2) + ["EURUSD.GB"] * (BATCH // 2))
    px = 100.0 + (ts - T0) / MIN * 0.01
    return dict(ts=ts, symbol=sym, open=px, high=px, low=px, close=px, volume=np.full(ts.size, float(i)))


WRITER = textwrap.dedent("""
    import sys
    from pyplatform.store import EmbeddedStore
    from test_store_crash import batch
    root, first, count, step, grace = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    st = EmbeddedStore(root, grace_s=grace)
    for i in range(first, first + count):
        st.write("bars_1m", batch(i, step))
        print(i, flush=True)
""")


def run_writer(root: Path, first: int, count: int, step: int = BATCH // 2, grace: float = 60.0,
               crash_at: str | None = None, wait: bool = True):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    if crash_at:
        env["PYPLATFORM_STORE_CRASH_AT"] = crash_at
    args = [sys.executable, "-c", WRITER, str(root), str(first), str(count), str(step), str(grace)]
    if not wait:
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def visible_files(root: Path) -> set[str]:
    return {p.relative_to(root / "bars_1m").as_posix() for p in (root / "bars_1m").rglob("*.parquet")}


def assert_consistent(st: EmbeddedStore) -> pd.DataFrame:
    frame = st.read("bars_1m")
    assert not frame.index.duplicated().any()
    return frame


@pytest.mark.parametrize("crash_at,step", [
    ("after_data", BATCH // 2),          # second write is disjoint: would add a segment
    ("before_manifest", BATCH // 4),     # second write overlaps: would rewrite the partition
])
def test_crash_before_publish_leaves_previous_state(tmp_path, crash_at, step):
    root = tmp_path / "h"
    st = EmbeddedStore(root, grace_s=0.0)
    st.write("bars_1m", batch(0, step))
    before = assert_consistent(st)
    proc = run_writer(root, 1, 1, step, crash_at=crash_at)
    assert proc.returncode == 137, proc.stderr
    after = assert_consistent(st)
    pd.testing.assert_frame_equal(after, before)
    # the crashed writer's complete-but-unpublished file is on disk, yet invisible
    listed = {f.path for f in st.manifest("bars_1m").files()}
    assert visible_files(root) - listed
    # the next writer cleans up and its write lands
    st.write("bars_1m", batch(1, step))
    final = assert_consistent(st)
    assert len(final) == len(before) + (BATCH if step == BATCH // 2 else BATCH // 2)
    man = st.manifest("bars_1m")
    assert visible_files(root) <= {f.path for f in man.files()} | {p for p, _ in man.garbage}


def test_crash_after_publish_keeps_the_write(tmp_path):
    root = tmp_path / "h"
    proc = run_writer(root, 0, 1, crash_at="after_manifest")
    assert proc.returncode == 137
    assert len(assert_consistent(EmbeddedStore(root))) == BATCH
    # the lock died with the writer: the next write proceeds at once
    EmbeddedStore(root).write("bars_1m", batch(1, BATCH // 2))


def test_sigkill_at_random_moments_never_exposes_a_partial_batch(tmp_path):
    root = tmp_path / "h"
    rng = np.random.default_rng(5)
    written = 0
    for attempt in range(2):
        proc = run_writer(root, written, 200, step=BATCH // 2, wait=False)
        # wait for a couple of batches, then kill at a random moment inside later writes
        for _ in range(2):
            proc.stdout.readline()
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        st = EmbeddedStore(root)
        frame = assert_consistent(st)
        assert len(frame) % BATCH == 0, f"attempt {attempt}: {len(frame)} rows is not whole batches"
        # batches are whole and contiguous from the start
        vols = np.unique(frame["volume"].to_numpy())
        np.testing.assert_array_equal(vols, np.arange(len(vols)))
        written = len(vols)
        st.close()
    assert written >= 4


def test_readers_see_whole_versions_while_a_process_writes(tmp_path):
    root = tmp_path / "h"
    EmbeddedStore(root).write("bars_1m", batch(0, BATCH // 4))
    # overlapping batches force partition rewrites; grace 0 deletes superseded files at once,
    # so readers also exercise the re-read-the-manifest retry
    writer = run_writer(root, 1, 12, step=BATCH // 4, grace=0.0, wait=False)
    st = EmbeddedStore(root)
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                frame = st.read("bars_1m")
                assert not frame.index.duplicated().any()
                # batch i adds BATCH/2 new keys on top of the first batch's BATCH
                assert (len(frame) - BATCH) % (BATCH // 2) == 0, len(frame)
                counts.append(len(frame))
                cs = st.cross_section("bars_1m", at=pd.Timestamp("2030-01-01"))
                assert len(cs) == 2
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    out, _ = writer.communicate(timeout=180)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert writer.returncode == 0
    assert not errors, errors[0]
    assert len(set(counts)) > 1, "readers never saw the table grow"
    assert len(assert_consistent(st)) == BATCH + 12 * (BATCH // 2)
