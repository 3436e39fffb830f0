"""Ready-made wiring of the market data path: ticks -> bars (+ late ticks) -> factors.

Used by the end-to-end job and notebooks; each piece is an ordinary table or runner, so
anything here can also be wired by hand (see ``docs/stream.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyplatform.domain.schemas import BARS, TICKS
from pyplatform.stream.registry import StreamTables
from pyplatform.stream.runtime import EngineRunner, Pipeline
from pyplatform.stream.table import StreamTable

__all__ = ["MarketPipeline", "market_pipeline"]


@dataclass
class MarketPipeline:
    """The tables and runners of :func:`market_pipeline`."""

    ticks: StreamTable
    bars: StreamTable
    late: StreamTable
    factors: StreamTable | None
    pipeline: Pipeline

    @property
    def factor_runner(self):
        """The runner of ``bars -> factors`` (None without factors)."""
        return self.pipeline.runners[1] if self.factors is not None else None

    @property
    def factor_engine(self):
        """The live :class:`~pyplatform.factors.FactorEngine` (None without factors).

        ``add_factor``/``remove_factor`` on it between steps reach the factors table: the
        runner adds the column (see ``EngineRunner``). Hand it to a
        :class:`~pyplatform.registry.RegistryWatcher` to follow published factors; the
        runner must not be stepping in another thread while the watcher polls.
        """
        runner = self.factor_runner
        return runner.engine if runner is not None else None

    def run_until_idle(self) -> int:
        return self.pipeline.run_until_idle()

    def on_clock(self, now_ns: int) -> int:
        return self.pipeline.on_clock(now_ns)

    def start(self) -> None:
        self.pipeline.start()

    def close(self) -> None:
        self.pipeline.close()


def market_pipeline(tables: StreamTables, *, window: str = "1min", accepted_delay: str | int = 0,
                    factors: Mapping[str, str] | None = None, state_dir: str | Path | None = None,
                    batch_size: int = 65_536, ticks_table: str = "ticks") -> MarketPipeline:
    """Wire ``ticks`` -> :class:`BarEngine` -> ``bars_<window>`` (late ticks to ``ticks_late``)
    and, with ``factors``, ``bars_<window>`` -> ``FactorEngine`` -> ``factors_<window>``.

    Parameters
    ----------
    tables : StreamTables
        Where the tables live (created if missing, reopened otherwise).
    window, accepted_delay
        Bar width and lateness allowance (see :class:`~pyplatform.stream.bar_engine.BarEngine`).
    factors : mapping of name -> expression, optional
        Factor expressions in the DolphinDB-compatible language.
    state_dir : path, optional
        Checkpoints of the runners; with it a restarted process continues exactly
        (default: ``<tables.directory>/_runners`` when the tables are on disk).
    """
    from pyplatform.stream.bar_engine import BarEngine

    label = window.replace(" ", "")
    if state_dir is None and tables.directory is not None:
        state_dir = tables.directory / "_runners"
    ticks = tables.get_table(ticks_table, TICKS)
    bars = tables.get_table(f"bars_{label}", BARS)
    late = tables.get_table(f"{ticks_table}_late", TICKS)
    runners = [EngineRunner(BarEngine(window, accepted_delay), ticks, bars, f"bars_{label}",
                            state_dir=state_dir, batch_size=batch_size, side_outputs={"late": late})]
    factor_table = None
    if factors:
        from pyplatform.factors import FactorEngine

        engine = FactorEngine(dict(factors), columns=BARS.names)
        factor_table = tables.get_table(f"factors_{label}", engine.schema)
        runners.append(EngineRunner(engine, bars, factor_table, f"factors_{label}", state_dir=state_dir,
                                    batch_size=batch_size))
    return MarketPipeline(ticks, bars, late, factor_table, Pipeline(runners))
