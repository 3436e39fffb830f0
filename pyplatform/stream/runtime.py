"""Wiring engines between stream tables, with exactly-once output across restarts.

An :class:`EngineRunner` subscribes an engine to an input table, appends what the engine
returns to an output table, and acknowledges input only after the output is durable.

Exactly once, without a snapshot per batch:

* every output append carries a *tag*: the input offset up to which the output is
  complete, written in the same frame as the rows (see ``StreamTable.append(tag=)``);
* a checkpoint (engine snapshot + input position) is written every ``checkpoint_rows``
  input rows, and *ahead of* any clock-driven output (``on_clock``) together with that
  output, because clock calls are not in the input and could not be replayed;
* on restart the runner restores the checkpoint, appends write-ahead output that did not
  make it, then re-feeds the input between the checkpoint and each output's last tag,
  discarding what those outputs already hold, and carries on from there.

Engines whose output columns change while running (a factor added to or removed from the
``FactorEngine``) are followed: the runner adds the new columns to the output table
(``StreamTable.add_columns``), appends nulls for columns the engine no longer produces,
and checkpoints at the change, because like the clock the change is not in the input and
a restart must replay with the engine as it was changed.

So the outputs hold exactly the rows an uninterrupted run would have produced. This needs
engines to be deterministic and *batch-invariant* (feeding ``a + b`` leaves the same state
and emits the same rows as feeding ``a`` then ``b``), as the bar and factor engines are,
and each output table to be written by one runner only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa

from pyplatform.clock import Clock
from pyplatform.stream.acks import check_name
from pyplatform.stream.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from pyplatform.stream.coerce import OFFSET_COLUMN
from pyplatform.stream.subscription import OFFSET_NEW, OFFSET_OLDEST, make_filter
from pyplatform.stream.table import StreamTable

__all__ = ["EngineRunner", "Pipeline"]

log = logging.getLogger(__name__)
_MAIN = "output"


def _as_table(result) -> pa.Table | None:
    if result is None:
        return None
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result])
    return result


def _fit_output(out: StreamTable, table: pa.Table, engine_schema: pa.Schema) -> pa.Table:
    """``table`` shaped for ``out``: new columns added to ``out``, ones it stopped producing null.

    Only columns the engine's declared ``schema`` agrees on are touched: a column the output
    has but the engine no longer declares (a removed factor) is appended as nulls when
    nullable; anything else (an engine bug) is left for ``append`` to refuse, naming it.
    """
    names = table.schema.names
    extra = [table.schema.field(n) for n in names if n not in out.schema.names and n in engine_schema.names]
    if extra:
        out.add_columns([f.with_nullable(True) for f in extra])
    missing = [f for f in out.schema if f.name not in names and f.nullable and f.name not in engine_schema.names]
    for f in missing:
        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table


class EngineRunner:
    """Drive one engine from an input stream table into an output stream table.

    Parameters
    ----------
    engine : object
        Has ``feed(batch) -> table``; optionally ``on_clock(now_ns) -> table``,
        ``snapshot() -> bytes`` / ``restore(bytes)``, ``drain(name) -> table | None`` (side
        outputs such as the bar engine's late ticks) and ``clock_version`` (an int that
        ``on_clock`` bumps when it changes state; without it every clock call checkpoints).
    source : StreamTable
        Input; subscribed as ``action``.
    sink : StreamTable or None
        Output (None: results are dropped, e.g. an engine that only updates state).
    action : str
        Subscription name; also names the checkpoint file.
    state_dir : path, optional
        Where checkpoints live. Without it the runner cannot resume after a restart.
    batch_size : int
        Most input rows per :meth:`step`.
    side_outputs : mapping of name -> StreamTable, optional
        Extra outputs filled from ``engine.drain(name)`` after each step.
    checkpoint_rows : int
        Checkpoint after at least this many input rows (bounds replay after a restart).
    clock : Clock, optional
        With ``clock_interval_s``, the background thread calls ``on_clock(clock.now_ns())``.
    pass_offset : bool
        Keep the input's ``offset`` column in the batches handed to the engine.
    start : int
        Where a runner without a checkpoint starts: an offset, ``OFFSET_OLDEST`` (default:
        everything retained) or ``OFFSET_NEW``. A checkpoint, once written, wins.
    """

    def __init__(self, engine, source: StreamTable, sink: StreamTable | None, action: str, *,
                 state_dir: str | Path | None = None, batch_size: int = 65_536, filter=None,
                 side_outputs: Mapping[str, StreamTable] | None = None, checkpoint_rows: int = 100_000,
                 clock: Clock | None = None, clock_interval_s: float | None = None,
                 pass_offset: bool = True, start: int = OFFSET_OLDEST) -> None:
        self.engine = engine
        self.source = source
        self.action = check_name("action", action)
        self.outputs: dict[str, StreamTable] = {}
        if sink is not None:
            self.outputs[_MAIN] = sink
        for name, table in (side_outputs or {}).items():
            if name == _MAIN:
                raise ValueError(f"side output name {_MAIN!r} is reserved for the main output")
            if not hasattr(engine, "drain"):
                raise TypeError(f"side output {name!r} needs an engine with drain(name)")
            self.outputs[name] = table
        self.batch_size = int(batch_size)
        self.checkpoint_rows = int(checkpoint_rows)
        self.clock = clock
        self.clock_interval_s = clock_interval_s
        self.pass_offset = pass_offset
        self._stateful = hasattr(engine, "snapshot") and hasattr(engine, "restore")
        self._ck_path = Path(state_dir) / f"{action}.ckpt" if state_dir is not None else None
        if self._ck_path is not None:
            self._ck_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.rows_in = 0
        self.rows_out = 0
        self.replayed_rows = 0
        self._since_checkpoint = 0
        self._start = start
        self._filter = make_filter(filter, source.schema)  # replay must see what the subscription sees
        resume = self._recover()
        self._engine_schema = getattr(engine, "schema", None)
        self._evolve_outputs()
        self._sub = source.subscribe(action, offset=resume, batch_size=self.batch_size, filter=filter)

    # -- recovery -------------------------------------------------------------------------
    def _recover(self) -> int:
        """Restore state and outputs; return the input offset to continue from."""
        ck = load_checkpoint(self._ck_path) if self._ck_path is not None else None
        if ck is None:
            if self._start == OFFSET_OLDEST:
                first = self.source.oldest_offset
            elif self._start == OFFSET_NEW:
                first = self.source.next_offset
            else:
                first = int(self._start)
            if self._ck_path is not None:
                if any(t.next_offset for t in self.outputs.values()):
                    raise RuntimeError(
                        f"runner {self.action!r}: output tables already hold rows but there is no "
                        f"checkpoint at {self._ck_path}; refusing to write them twice")
                # An initial checkpoint makes a crash before the first periodic one recoverable.
                self._checkpoint(first)
            return first
        if ck.engine_state and self._stateful:
            self.engine.restore(ck.engine_state)
        self._evolve_outputs()  # the restored engine may have factors added after the table was made
        for name, (expected, rows) in ck.pending.items():
            table = self.outputs[name]
            if table.next_offset == expected:
                table.append(rows, tag=ck.input_next)  # written ahead, lost in the crash
                table.flush()
            elif table.next_offset < expected:
                raise RuntimeError(
                    f"runner {self.action!r}: output {name!r} ends at {table.next_offset} but the "
                    f"checkpoint expects rows from {expected}; the output lost durable rows")
        # Re-feed input up to each output's last tag, discarding output it already holds.
        tags = {n: t.last_tag for n, t in self.outputs.items()}
        bounds = sorted({t for t in tags.values() if t is not None and t > ck.input_next})
        pos = ck.input_next
        for bound in bounds:
            self.replayed_rows += self._replay(pos, bound, keep={n for n, t in tags.items() if t is None or t < bound})
            pos = bound
        if pos != ck.input_next:
            self._checkpoint(pos)
        return pos

    def _replay(self, start: int, end: int, keep: set[str]) -> int:
        rows = 0
        for lo in range(start, end, self.batch_size):
            chunk = self.source.read(lo, min(end, lo + self.batch_size))
            if self._filter is not None:
                chunk = self._filter(chunk)
                if chunk.num_rows == 0:
                    continue
            rows += chunk.num_rows
            out = self._feed(chunk)
            self._write(out, tag=min(end, lo + self.batch_size), only=keep)
        return rows

    # -- engine changes -------------------------------------------------------------------
    def _evolve_outputs(self) -> None:
        """Add the engine's new output columns to the main output table (if it has a schema)."""
        schema = getattr(self.engine, "schema", None)
        out = self.outputs.get(_MAIN)
        if isinstance(schema, pa.Schema) and out is not None:
            new = [f for f in schema if f.name not in out.schema.names and f.name != OFFSET_COLUMN]
            if new:
                out.add_columns([f.with_nullable(True) for f in new])

    def _follow_engine(self) -> None:
        """Notice a change of the engine's output schema (a factor added or removed) between steps.

        The change is made from outside the input (a registry watcher), so it could not be
        replayed after a crash: a checkpoint taken now records the changed engine at the
        current input position, exactly as ``on_clock`` output is written ahead.
        """
        schema = getattr(self.engine, "schema", None)
        if not isinstance(schema, pa.Schema) or schema is self._engine_schema:
            return
        self._engine_schema = schema
        self._evolve_outputs()
        if self._ck_path is not None:
            self._checkpoint(self._sub.position)
        log.info("runner %r: engine output is now %s", self.action, schema.names)

    # -- stepping -------------------------------------------------------------------------
    def _feed(self, chunk: pa.Table) -> dict[str, pa.Table | None]:
        batch = chunk if self.pass_offset else chunk.drop_columns([OFFSET_COLUMN])
        results = {_MAIN: _as_table(self.engine.feed(batch))}
        for name in self.outputs:
            if name != _MAIN:
                results[name] = _as_table(self.engine.drain(name))
        return results

    def _write(self, results: dict[str, pa.Table | None], tag: int, only: set[str] | None = None) -> int:
        written = 0
        for name, table in results.items():
            out = self.outputs.get(name)
            if out is None or table is None or table.num_rows == 0 or (only is not None and name not in only):
                continue
            if OFFSET_COLUMN in table.schema.names:
                # No table stores an "offset" column (it is the row number), so rows passed
                # through from the input (e.g. late ticks) drop it.
                table = table.drop_columns([OFFSET_COLUMN])
            schema = getattr(self.engine, "schema", None) if name == _MAIN else None
            if isinstance(schema, pa.Schema) and not table.schema.equals(out.schema):
                table = _fit_output(out, table, schema)
            out.append(table, tag=tag)
            out.flush()
            written += table.num_rows
        return written

    def step(self) -> int:
        """Process at most ``batch_size`` input rows; return how many were consumed."""
        with self._lock:
            self._follow_engine()
            before = self._sub.position
            chunk = self._sub.poll()
            if chunk is None:
                if self._sub.position != before:  # only filtered-out rows were read
                    self._advance(self._sub.position, 0)
                return 0
            end = self._sub.position
            try:
                results = self._feed(chunk)
            except Exception:
                # Nothing was written: put the rows back so they are not skipped. (An engine
                # must leave its state unchanged when it rejects a batch, as the bar engine
                # does; otherwise recreate the runner, which restores the last checkpoint.)
                self._sub.seek(before)
                raise
            self.rows_out += self._write(results, tag=end)
            self._advance(end, end - before)
            return chunk.num_rows

    def _advance(self, end: int, rows: int) -> None:
        self.rows_in += rows
        self._since_checkpoint += rows
        acked = self.source.acked(self.action)
        if acked is None or end - 1 > acked:
            # After a restart the runner may re-read rows it had acked before the crash (steps
            # with no output leave no tag); acks never move back, so those are not re-acked.
            self.source.ack(self.action, end - 1)
        if self._ck_path is not None and self._since_checkpoint >= self.checkpoint_rows:
            self._checkpoint(end)

    def run_until_idle(self, max_steps: int | None = None) -> int:
        """Step until the input is drained; return rows consumed."""
        total, steps = 0, 0
        while max_steps is None or steps < max_steps:
            n = self.step()
            steps += 1
            if n == 0 and self._sub.pending == 0:
                break
            total += n
        return total

    def on_clock(self, now_ns: int) -> int:
        """Give the engine the time (closes quiet windows); return output rows written."""
        if not hasattr(self.engine, "on_clock"):
            return 0
        with self._lock:
            self._follow_engine()
            version = getattr(self.engine, "clock_version", None)
            results = {_MAIN: _as_table(self.engine.on_clock(int(now_ns)))}
            for name in self.outputs:
                if name != _MAIN:
                    results[name] = _as_table(self.engine.drain(name))
            pos = self._sub.position
            if (version is not None and version == getattr(self.engine, "clock_version", None)
                    and not any(t is not None and t.num_rows for t in results.values())):
                return 0  # the engine says the clock changed nothing: no checkpoint needed
            if self._ck_path is not None:
                # The clock is not in the input, so this output could not be replayed:
                # write it ahead in the checkpoint, then append it.
                pending = {n: (self.outputs[n].next_offset, t) for n, t in results.items()
                           if n in self.outputs and t is not None and t.num_rows}
                self._checkpoint(pos, pending)
            written = self._write(results, tag=pos)
            self.rows_out += written
            return written

    def checkpoint(self) -> None:
        """Write a checkpoint now (also done every ``checkpoint_rows`` and on close)."""
        with self._lock:
            if self._ck_path is not None:
                self._checkpoint(self._sub.position)

    def _checkpoint(self, input_next: int, pending=None) -> None:
        state = self.engine.snapshot() if self._stateful else b""
        save_checkpoint(self._ck_path, Checkpoint(input_next, state, pending or {}))
        self._since_checkpoint = 0

    # -- background thread ----------------------------------------------------------------
    def start(self) -> None:
        """Run in a background thread until :meth:`close`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"runner-{self.action}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_clock = time.monotonic()
        cond = self.source._cond
        try:
            while not self._stop.is_set():
                n = self.step()
                if self.clock is not None and self.clock_interval_s and time.monotonic() >= next_clock:
                    self.on_clock(self.clock.now_ns())
                    next_clock = time.monotonic() + self.clock_interval_s
                if n == 0:
                    wait = 0.5 if not self.clock_interval_s else max(0.0, min(0.5, next_clock - time.monotonic()))
                    with cond:
                        if self.source.next_offset <= self._sub.position and not self._stop.is_set():
                            cond.wait(timeout=wait)
        except Exception as exc:
            self.error = exc
            log.exception("runner %r stopped", self.action)

    def close(self) -> None:
        """Stop the thread, checkpoint and unsubscribe (tables stay open: they are shared)."""
        self._stop.set()
        with self.source._cond:
            self.source._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.error is None:
            self.checkpoint()
        self.source.unsubscribe(self.action)


class Pipeline:
    """Several runners driven together (e.g. ticks -> bars -> factors).

    Parameters
    ----------
    runners : iterable of EngineRunner
        In data-flow order; :meth:`run_until_idle` repeats passes until nothing moves.
    """

    def __init__(self, runners: Iterable[EngineRunner]) -> None:
        self.runners = list(runners)

    def step(self) -> int:
        return sum(r.step() for r in self.runners)

    def run_until_idle(self) -> int:
        total = 0
        while True:
            moved = sum(r.run_until_idle() for r in self.runners)
            if moved == 0:
                return total
            total += moved

    def on_clock(self, now_ns: int) -> int:
        return sum(r.on_clock(now_ns) for r in self.runners)

    def start(self) -> None:
        for r in self.runners:
            r.start()

    def close(self) -> None:
        for r in reversed(self.runners):
            r.close()
