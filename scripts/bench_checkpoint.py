"""What a checkpoint per window costs a realistic run (docs/benchmarks/backtest.md, "Checkpoint cost")."""
import time, tempfile, statistics
from pyplatform.backtest import BacktestConfig, run_backtest
from pyplatform.backtest.run import bars_table
from pyplatform.config import Settings
from pyplatform.data import generate_bars
b = bars_table(generate_bars(6, "2024-01-02", "2024-02-01", freq="1min", seed=0))
cfg = BacktestConfig(freq="1min", audit_timestamps=0, window_days=7)
s = Settings(data_dir=tempfile.mkdtemp())
strat = {"kind": "ma_cross", "params": {"fast": 10, "slow": 50}}
a, c = [], []
for _ in range(3):
    t = time.perf_counter(); run_backtest(strat, bars=b, backtest=cfg, settings=s); a.append(time.perf_counter() - t)
    t = time.perf_counter(); run_backtest(strat, bars=b, backtest=cfg, settings=s, checkpoint=True); c.append(time.perf_counter() - t)
ma, mc = statistics.median(a), statistics.median(c)
print(f"{b.num_rows:,} bars, 7-day windows (5 checkpoints): plain {ma:.2f} s, with checkpoints {mc:.2f} s, ratio {mc/ma:.3f}")
