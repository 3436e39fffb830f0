"""A backtest interrupted at any point and resumed gives exactly the uninterrupted result
(issue 17: "a run can be interrupted and resumed").

The interruption is a KeyboardInterrupt raised from the progress callback after a given
number of bars, as Ctrl-C would arrive mid-window; the run keeps the checkpoint of the last
finished window, and the resumed run replays only what follows it.
"""

import pandas as pd
import pytest

from pyplatform.backtest import BacktestConfig, run_backtest
from pyplatform.backtest.checkpoint import CheckpointError, CheckpointWarning
from pyplatform.backtest.run import bars_table
from pyplatform.config import Settings
from pyplatform.data import generate_bars

STRAT = {"kind": "ma_cross", "params": {"fast": 10, "slow": 40}}


@pytest.fixture(scope="module")
def bars():
    return bars_table(generate_bars(3, "2024-01-02", "2024-01-10", freq="1min", seed=5))


def _cfg(**kw):
    # the realistic defaults (latency, slippage, participation, VWAP slices): orders rest
    # across window edges, so a lost or repeated piece of state changes the result
    return BacktestConfig(freq="1min", audit_timestamps=0, window_days=1.0, **kw)


class _StopAfter:
    def __init__(self, bars: int) -> None:
        self.left = bars
        self.seen = 0

    def __call__(self, n: int) -> None:
        self.seen += n
        self.left -= n
        if self.left <= 0:
            raise KeyboardInterrupt


def _same(a, b):
    pd.testing.assert_frame_equal(a.trades, b.trades)
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.equity_curve, b.equity_curve, check_exact=True)
    for k, v in b.metrics.items():
        assert a.metrics[k] == v or (v != v and a.metrics[k] != a.metrics[k]), k


@pytest.mark.parametrize("stop_frac", [0.3, 0.75])
def test_interrupted_then_resumed_equals_one_run(bars, tmp_path, stop_frac):
    settings = Settings(data_dir=tmp_path)
    whole = run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings)
    assert len(whole.orders) > 10 and len(whole.trades) > 50
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck,
                     progress=_StopAfter(int(2 * bars.num_rows * stop_frac)))
    assert ck.exists()  # the last finished window's state survived the interrupt
    seen = []
    resumed = run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck, resume=True,
                           progress=seen.append)
    _same(resumed, whole)
    assert not ck.exists()  # deleted once the run finished
    assert sum(seen) == 2 * bars.num_rows  # the progress bar starts where the saved run stopped
    # ... at a window's edge (1-day windows): twice the bars before some UTC midnight, not zero
    import numpy as np

    ts = bars.column("ts").to_numpy()
    days = np.arange(ts[0] - ts[0] % 86_400_000_000_000, ts[-1], 86_400_000_000_000)[1:]
    edges = {2 * int(np.searchsorted(ts, d)) for d in days}
    assert seen[0] in edges and 0 < seen[0] < 2 * bars.num_rows


def test_other_settings_or_history_refuse_the_checkpoint(bars, tmp_path):
    settings = Settings(data_dir=tmp_path)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck,
                     progress=_StopAfter(bars.num_rows))
    # the refusal names what changed, and only that
    with pytest.raises(CheckpointError, match=r"another run \(backtest\.latency_ms changed\)"):
        run_backtest(STRAT, bars=bars, backtest=_cfg(latency_ms=10), settings=settings, checkpoint=ck, resume=True)
    with pytest.raises(CheckpointError, match=r"another run \(strategies changed\)"):
        run_backtest({"kind": "ma_cross", "params": {"fast": 11, "slow": 40}}, bars=bars, backtest=_cfg(),
                     settings=settings, checkpoint=ck, resume=True)
    changed = bars.set_column(bars.schema.get_field_index("close"), "close",
                              [bars.column("close").to_numpy() * 1.0001])
    with pytest.raises(CheckpointError, match=r"another run \(history changed\)"):
        run_backtest(STRAT, bars=changed, backtest=_cfg(), settings=settings, checkpoint=ck, resume=True)
    with pytest.raises(CheckpointError, match=r"backtest\.capital, backtest\.latency_ms changed"):
        run_backtest(STRAT, bars=bars, backtest=_cfg(latency_ms=10, capital=5e5), settings=settings,
                     checkpoint=ck, resume=True)
    assert ck.exists()  # a refused checkpoint is left alone


def test_resume_without_a_matching_checkpoint_says_so_and_starts_over(bars, tmp_path):
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):  # the default path, named by the run's fingerprint
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=True,
                     progress=_StopAfter(bars.num_rows))
    (saved,) = (tmp_path / "backtests" / "checkpoints").glob("*.ckpt")
    other = {"kind": "ma_cross", "params": {"fast": 12, "slow": 40}}
    with pytest.warns(CheckpointWarning, match="starting from the beginning") as got:
        resumed = run_backtest(other, bars=bars, backtest=_cfg(), settings=settings, checkpoint=True, resume=True)
    text = str(got[0].message)
    assert saved.name in text and "other strategies" in text  # the nearest checkpoint, and how it differs
    _same(resumed, run_backtest(other, bars=bars, backtest=_cfg(), settings=settings))  # a whole fresh run
    assert saved.exists()  # another run's checkpoint is not touched


def test_checkpoint_every_n_windows(bars, tmp_path, monkeypatch):
    from pyplatform.backtest import checkpoint as ck_mod

    settings = Settings(data_dir=tmp_path)
    whole = run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings)
    saves, real = [], ck_mod.save

    def counting(path, sim, windows_done, *a, **k):
        saves.append(windows_done)
        return real(path, sim, windows_done, *a, **k)

    monkeypatch.setattr(ck_mod, "save", counting)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck, checkpoint_every=2,
                     progress=_StopAfter(int(2 * bars.num_rows * 0.8)))
    assert saves and all(n % 2 == 0 for n in saves) and saves == list(range(2, 2 * len(saves) + 1, 2))
    resumed = run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck, resume=True,
                           checkpoint_every=2)
    _same(resumed, whole)  # resuming from an even window replays the odd one after it exactly
    with pytest.raises(ValueError, match="checkpoint_every"):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck, checkpoint_every=0)


def test_tampered_or_foreign_checkpoint_is_refused(bars, tmp_path):
    settings = Settings(data_dir=tmp_path / "a")
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=ck,
                     progress=_StopAfter(bars.num_rows))
    raw = bytearray(ck.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="altered"):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=bad, resume=True)
    # an intact checkpoint from another data directory (another key) is refused too
    with pytest.raises(CheckpointError, match="not written under this data directory"):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=Settings(data_dir=tmp_path / "b"),
                     checkpoint=ck, resume=True)
    old = tmp_path / "old.ckpt"  # an earlier format (or any other file) is refused before unpickling
    old.write_bytes(b"PPCKPT1\n" + bytes(40))
    with pytest.raises(CheckpointError, match="not a pyplatform backtest checkpoint"):
        run_backtest(STRAT, bars=bars, backtest=_cfg(), settings=settings, checkpoint=old, resume=True)
    key = tmp_path / "a" / "backtests" / ".checkpoint_key"
    assert key.stat().st_mode & 0o077 == 0  # the key is the owner's only


def test_store_run_resumes_without_rereading_done_windows(market_settings, monkeypatch):
    from pyplatform.backtest import run as run_mod

    cfg = BacktestConfig(freq="1d", audit_timestamps=0, window_days=14)
    strat = {"kind": "ma_cross", "params": {"fast": 3, "slow": 12}}
    whole = run_backtest(strat, settings=market_settings, backtest=cfg)
    assert len(whole.orders) > 3
    with pytest.raises(KeyboardInterrupt):
        run_backtest(strat, settings=market_settings, backtest=cfg, checkpoint=True,
                     progress=_StopAfter(int(whole.metrics["bars"])))
    reads = []
    real = run_mod._StoreWindows._read

    def counting(self, a, b):
        reads.append((a, b))
        return real(self, a, b)

    monkeypatch.setattr(run_mod._StoreWindows, "_read", counting)
    resumed = run_backtest(strat, settings=market_settings, backtest=cfg, checkpoint=True, resume=True)
    _same(resumed, whole)
    first_read = min(a for a, _ in reads)
    assert first_read > pd.Timestamp("2024-01-20").value  # the windows before the checkpoint were skipped
    assert not list((market_settings.data_dir / "backtests" / "checkpoints").glob("*.ckpt"))
