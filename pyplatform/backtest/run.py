"""``run_backtest``: strategies + history + realism settings -> a :class:`BacktestResult`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from pyplatform.backtest.config import BacktestConfig
from pyplatform.backtest.engine import Simulation
from pyplatform.backtest.ledger import positions_frame, round_trips
from pyplatform.backtest.metrics import compute_metrics
from pyplatform.backtest.results import BacktestResult, new_run_id, save_run
from pyplatform.domain.schemas import BARS
from pyplatform.strategies import Strategy, StrategyConfig, build

__all__ = ["run_backtest", "as_strategies", "bars_table"]


def as_strategies(config) -> list[Strategy]:
    """Strategies from a StrategyConfig, a dict, a Strategy, or a list of those."""
    items = config if isinstance(config, (list, tuple)) else [config]
    if not items:
        raise ValueError("run_backtest: no strategy given")
    out = []
    for c in items:
        if isinstance(c, Strategy):
            from pyplatform.backtest.signals import fresh_copy

            out.append(fresh_copy(c))
        elif isinstance(c, (StrategyConfig, dict)):
            out.append(build(c))
        else:
            raise TypeError(f"run_backtest: a strategy must be a StrategyConfig, dict or Strategy, got {type(c).__name__}")
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"run_backtest: strategy names must be distinct, got {names}")
    return out


def bars_table(bars) -> pa.Table:
    """Bars (a (datetime, symbol)-indexed frame or a BARS-like Arrow table) sorted by ts then symbol."""
    if isinstance(bars, pd.DataFrame):
        df = bars.reset_index()
        if "ts" not in df.columns:
            if "datetime" not in df.columns:
                raise ValueError(f"bars need a 'datetime' index level or a 'ts' column, got {list(df.columns)}")
            df["ts"] = df["datetime"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        bars = pa.Table.from_pandas(df, preserve_index=False)
    missing = [c for c in ("ts", "symbol", "open", "high", "low", "close", "volume") if c not in bars.schema.names]
    if missing:
        raise ValueError(f"bars lack column(s) {missing} (have {bars.schema.names})")
    keep = [c for c in BARS.names if c in bars.schema.names]
    t = bars.select(keep)
    t = t.cast(pa.schema([BARS.field(c) for c in keep]))
    return t.sort_by([("ts", "ascending"), ("symbol", "ascending")])


def _load(settings, cfg: BacktestConfig, symbols, start, end) -> pa.Table:
    from pyplatform.backends import open_store

    t = open_store(settings).read(cfg.table, symbols=symbols, start=start, end=end, as_arrow=True)
    if not t.num_rows:
        raise ValueError(f"no {cfg.table} rows for symbols={symbols or 'all'} in [{start}, {end}) "
                         f"under {settings.data_dir}")
    return bars_table(t)


def _ns(x) -> int | None:
    return None if x is None else int(pd.Timestamp(x).value)


def _bounds(edges_from: int, edges_to: int, window_ns: int) -> list[int]:
    """Window edges from ``edges_from`` (floored to a UTC day) to past ``edges_to``."""
    day = 86_400_000_000_000
    a = edges_from - edges_from % day
    n = max(1, -(-(edges_to - a) // window_ns))
    return [a + k * window_ns for k in range(n + 1)]


def _table_windows(table: pa.Table, cfg: BacktestConfig):
    """``(bars, lookahead, until)`` windows of an in-memory table (sorted by ts)."""
    if not cfg.window_days or not table.num_rows:
        yield table, None, None
        return
    ts = table.column("ts").to_numpy()
    window = int(cfg.window_days * 86_400e9)
    ahead = int(cfg.lookahead_days * 86_400e9)
    edges = _bounds(int(ts[0]), int(ts[-1]) + 1, window)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        i, j = np.searchsorted(ts, [a, b])
        la = None if last else table.slice(int(j), int(np.searchsorted(ts, b + ahead) - j))
        yield table.slice(int(i), int(j - i)), la, None if last else b


class _StoreWindows:
    """``(bars, lookahead, until)`` windows read from the store one at a time (only a window
    and its lookahead are ever in memory)."""

    def __init__(self, settings, cfg: BacktestConfig, symbols, start, end) -> None:
        from pyplatform.backends import open_store

        self.store, self.cfg, self.symbols = open_store(settings), cfg, symbols
        self.where = settings.data_dir
        lo, hi, self.rows = _ns(start), _ns(end), None
        manifest = getattr(self.store, "manifest", None)
        if manifest is not None:
            files = manifest(cfg.table).files(lo, hi)
            if files:
                lo = max(lo, min(f.min_ts for f in files)) if lo is not None else min(f.min_ts for f in files)
                top = max(f.max_ts for f in files) + 1
                hi = min(hi, top) if hi is not None else top
                self.rows = sum(f.rows for f in files)  # an estimate (whole files, every symbol): the ETA's
        self.lo, self.hi = lo, hi

    def _has_rows(self, a, b) -> bool:
        manifest = getattr(self.store, "manifest", None)
        if manifest is not None and self.symbols is None:
            return bool(manifest(self.cfg.table).files(a, b))
        return self._read(a, b) is not None

    def _read(self, a, b) -> pa.Table:
        t = self.store.read(self.cfg.table, symbols=self.symbols, start=None if a is None else pd.Timestamp(a),
                            end=None if b is None else pd.Timestamp(b), as_arrow=True)
        return bars_table(t) if t.num_rows else None

    def __iter__(self):
        return self.iterate()

    def iterate(self, skip: int = 0):
        """The windows, after the first ``skip`` (which are not read)."""
        cfg = self.cfg
        if self.lo is None or self.hi is None or not cfg.window_days:
            t = self._read(self.lo, self.hi)
            if t is None:
                raise ValueError(f"no {cfg.table} rows for symbols={self.symbols or 'all'} in "
                                 f"[{self.lo}, {self.hi}) under {self.where}")
            yield t, None, None
            return
        window = int(cfg.window_days * 86_400e9)
        ahead = int(cfg.lookahead_days * 86_400e9)
        edges = _bounds(self.lo, self.hi, window)
        edges[0], edges[-1] = self.lo, self.hi
        empty = None
        seen = False
        emitted = 0
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            last = k == len(edges) - 2
            if skip and emitted < skip:
                # a window already replayed before the checkpoint: counted, not read (windows
                # before the first bar are never emitted, so the count matches the saved run's)
                if seen or self._has_rows(a, b):
                    seen = True
                    emitted += 1
                    continue
                continue
            bars = self._read(a, b)
            if bars is not None:
                seen = True
                empty = bars.slice(0, 0)
            elif empty is None and not seen:
                continue  # before the first bar
            elif empty is None:  # resumed past the first bar: an empty window of the same schema
                bars = empty = bars_table(BARS.empty_table())
            else:
                bars = empty
            la = None if last else self._read(b, min(b + ahead, self.hi))
            emitted += 1
            yield bars, la, None if last else b
        if not seen:
            raise ValueError(f"no {cfg.table} rows for symbols={self.symbols or 'all'} in "
                             f"[{pd.Timestamp(self.lo)}, {pd.Timestamp(self.hi)}) under {self.where}")


def run_backtest(config, symbols=None, start=None, end=None, *, settings=None, bars=None,
                 backtest: BacktestConfig | dict | None = None, save: bool = False,
                 progress: Callable[[int], None] | None = None, on_start: Callable[[int], None] | None = None,
                 checkpoint=None, resume: bool = False, checkpoint_every: int = 1,
                 **kwargs: Any) -> BacktestResult:
    """Event-driven backtest of strategies over history, through the live components.

    Parameters
    ----------
    config : StrategyConfig, dict, Strategy, or a list of them
        The strategies (e.g. ``{"kind": "ma_cross", "params": {"fast": 10, "slow": 50}}``).
    symbols, start, end
        History to replay from the store (``start <= ts < end``).
    settings : Settings, optional
        Where the store and saved runs live (``get_settings()`` by default).
    bars : DataFrame or pyarrow.Table, optional
        Replay these bars instead of reading the store.
    backtest : BacktestConfig or dict, optional
        Realism settings; ``**kwargs`` override single fields (``freq="1min"``, ``latency_ms=100``).
    save : bool
        Save under ``data_dir/backtests/<run_id>/``.
    progress : callable, optional
        Called with numbers of bars done: per micro-batch of the signals phase, then as the
        simulated clock passes them in the execution phase (``2 x bars`` in all).
    on_start : callable, optional
        Called once with that total (``2 x bars``) when the bars are known (a progress bar's
        total, for its ETA).
    checkpoint : path or True, optional
        Save the run's state here after every window (True: a default path under
        ``data_dir/backtests/checkpoints/`` named by the run's fingerprint); deleted when the
        run finishes. An interrupted run (Ctrl-C, a crash) keeps its last checkpoint.
    resume : bool
        Continue from ``checkpoint`` if it exists: the windows already replayed are skipped
        (not even read) and the result equals an uninterrupted run's. A checkpoint written for
        other strategies, settings, range or history is refused
        (:class:`~pyplatform.backtest.checkpoint.CheckpointError`, naming the inputs that
        changed). When there is no checkpoint for this run the run starts from the beginning
        and says so with a :class:`~pyplatform.backtest.checkpoint.CheckpointWarning` (naming
        the nearest checkpoint in the folder and how it differs, if there is one).
    checkpoint_every : int
        Save after every ``checkpoint_every``-th window (1: every window). Larger values save
        less often (a checkpoint costs a pickle of the run's state) and lose more on a crash.

    Returns
    -------
    BacktestResult
    """
    if int(checkpoint_every) < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if isinstance(backtest, dict):
        backtest = BacktestConfig(**backtest)
    cfg = backtest or BacktestConfig()
    if kwargs:
        cfg = BacktestConfig(**{**cfg.model_dump(), **kwargs})
    strategies = as_strategies(config)
    if bars is None or save:
        if settings is None:
            from pyplatform.config import get_settings

            settings = get_settings()
    if bars is not None:
        table = bars_table(bars)
        if symbols is not None:
            import pyarrow.compute as pc

            table = table.filter(pc.is_in(table.column("symbol"), pa.array(list(symbols))))
        windows = _table_windows(table, cfg)
        total = int(table.num_rows)
    else:
        windows = _StoreWindows(settings, cfg, symbols, start, end)
        total = windows.rows
        table = None
    if on_start is not None and total is not None:
        on_start(2 * total)
    sim = Simulation(strategies, cfg, progress)
    ck_path = None
    if checkpoint is not None or resume:
        from pyplatform.backtest import checkpoint as ck

        if settings is None:
            from pyplatform.config import get_settings

            settings = get_settings()
        key = ck.key_for(settings.data_dir)
        run_parts = _run_parts(strategies, cfg, symbols, start, end, table, windows)
        fp, digests = ck.fingerprint(run_parts), ck.part_digests(run_parts)
        ck_path = (Path(settings.data_dir) / "backtests" / "checkpoints" / f"{fp}.ckpt"
                   if checkpoint is None or checkpoint is True else Path(checkpoint))
    done = 0
    if resume and ck_path is not None and ck_path.exists():
        sim, done = ck.load(ck_path, fp, key, digests)
        sim.progress = progress
        if progress is not None and sim.bars:
            progress(2 * sim.bars)  # the bar starts where the saved run stopped
    elif resume and ck_path is not None:
        _warn_no_checkpoint(ck, ck_path, digests, key)
    every = int(checkpoint_every)
    for k, (window, ahead, until) in enumerate(_skip(windows, done)):
        sim.feed(window, lookahead=ahead, until=until)
        if ck_path is not None and until is not None and (done + k + 1) % every == 0:
            ck.save(ck_path, sim, done + k + 1, fp, key, digests)
    ex = sim.finish()
    if ck_path is not None and ck_path.exists():
        ck_path.unlink()
    fills = ex.fills
    curve = ex.curve
    trips = round_trips(fills)
    eq = curve["equity"]
    returns = eq.pct_change()
    returns.iloc[0] = eq.iloc[0] / cfg.capital - 1.0
    # the equity curve runs on the union of the symbols' timelines: annualise with the densest
    # calendar among them (or the data's own spacing / a number, as configured)
    ppy = cfg.annualisation(ex.symbols, curve.index.asi8)
    metrics = compute_metrics(returns, trips, turnover=curve["traded"] / eq.shift(1).fillna(cfg.capital),
                              exposure=curve["gross"] / eq, periods_per_year=ppy)
    # one definition of a trade, the sweep's: a position opened (from flat, or the far side of a
    # flip), whether closed by the end or still open; win rate and profit factor are over the
    # closed ones (``n_closed_trades``), the only ones with a realised P&L
    held = (fills["side"] * fills["quantity"]).groupby(fills["symbol"]).sum() if len(fills) else pd.Series(dtype=float)
    n_open = int((held.abs() > 1e-9).sum())
    metrics.update(n_trades=int(len(trips)) + n_open, n_closed_trades=int(len(trips)), n_open_trades=n_open)
    metrics.update(fees=float(fills["fee"].sum()), n_fills=int(len(fills)), n_orders=len(ex.node.oms.commands),
                   n_refused=len(ex.refused), n_signals=len(ex.signals), bars=int(ex.bars),
                   instants=ex.instants, final_equity=float(eq.iloc[-1]), periods_per_year=ppy)
    symbols_used = sorted(set(ex.symbols))
    conf = {"strategies": [{"kind": s.KIND, "name": s.name, "params": s.params,
                            "symbols": None if s.symbols is None else sorted(s.symbols)} for s in strategies],
            "symbols": symbols_used, "start": str(pd.Timestamp(ex.first_ts, unit="ns")),
            "end": str(pd.Timestamp(ex.last_ts, unit="ns")), "backtest": cfg.model_dump(mode="json")}
    from pyplatform.clock import LiveClock

    created = LiveClock().now_ns()  # the run's identity only; simulated time comes from the SimClock
    conf["created"] = str(pd.Timestamp(created, unit="ns"))
    result = BacktestResult(new_run_id(created, "-".join(s.name for s in strategies)), curve, fills, trips,
                            positions_frame(fills), _orders_frame(ex), _signals_frame(ex.signals), metrics, conf,
                            bars=table)
    if save:
        save_run(result, settings)
    return result


def _warn_no_checkpoint(ck, path: Path, digests: dict, key: bytes) -> None:
    """``resume`` found nothing to resume: say so (a silent fresh start can cost hours)."""
    import warnings

    msg = f"no checkpoint for this run at {path}: starting from the beginning"
    near = ck.nearest(path.parent, digests, key) if path.parent.is_dir() else None
    if near is not None:
        msg += f" (the nearest checkpoint there, {near[0].name}, was written with other {', '.join(near[1])})"
    warnings.warn(msg, ck.CheckpointWarning, stacklevel=3)


def _skip(windows, n: int):
    """``windows`` after the first ``n`` (store windows skip their reads too)."""
    if isinstance(windows, _StoreWindows):
        yield from windows.iterate(skip=n)
        return
    for k, w in enumerate(windows):
        if k >= n:
            yield w


def _run_parts(strategies, cfg: BacktestConfig, symbols, start, end, table, windows) -> dict:
    """What a run's result depends on: a resumed run must match all of it."""
    parts = {"strategies": [{"kind": s.KIND, "name": s.name, "params": s.params,
                             "symbols": None if s.symbols is None else sorted(s.symbols)} for s in strategies],
             "backtest": cfg.model_dump(mode="json"), "symbols": None if symbols is None else sorted(symbols),
             "start": None if start is None else str(pd.Timestamp(start)),
             "end": None if end is None else str(pd.Timestamp(end))}
    if table is not None:
        import hashlib

        h = hashlib.sha256()
        for col in ("ts", "symbol", "close", "volume"):
            for chunk in table.column(col).chunks:
                for buf in chunk.buffers():
                    if buf is not None:
                        h.update(memoryview(buf))
        parts["history"] = [table.num_rows, h.hexdigest()]
    else:
        manifest = getattr(windows.store, "manifest", None)
        files = manifest(cfg.table).files(windows.lo, windows.hi) if manifest is not None else []
        parts["history"] = sorted([str(getattr(f, "path", "")), f.rows, f.min_ts, f.max_ts] for f in files)
    return parts


def _orders_frame(ex) -> pd.DataFrame:
    oms = ex.node.oms
    rows = []
    # every order the order manager took, in submission order (stop orders included, which
    # the node routes from quotes rather than from signals)
    for cmd in oms.commands.values():
        o = oms.orders.get(oms.live_id(cmd.client_order_id))
        rows.append({"ts": cmd.ts, "client_order_id": cmd.client_order_id, "symbol": cmd.symbol,
                     "side": int(cmd.side), "quantity": float(cmd.quantity),
                     "price": None if cmd.price is None else float(cmd.price), "parent_id": cmd.parent_id,
                     "status": None if o is None else o.status.name,
                     "filled": None if o is None else float(o.cum_qty), "reason": cmd.reason})
    cols = ["ts", "client_order_id", "symbol", "side", "quantity", "price", "parent_id", "status", "filled", "reason"]
    return pd.DataFrame(rows, columns=cols)


def _signals_frame(signals) -> pd.DataFrame:
    return pd.DataFrame({"ts": [s.ts for s in signals], "symbol": [s.symbol for s in signals],
                         "strategy": [s.strategy for s in signals], "direction": [int(s.direction) for s in signals],
                         "strength": [float(s.strength) for s in signals], "reason": [s.reason for s in signals]})
