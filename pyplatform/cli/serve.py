"""``pyplatform serve``: run the live signal service (WebSocket + Redis)."""

from __future__ import annotations

import asyncio
import logging

import typer

app = typer.Typer(help="Run the live signal service (WebSocket + Redis).")


@app.callback(invoke_without_command=True)
def serve(
    host: str = typer.Option(None, help="Bind address (default: signal_host setting)."),
    port: int = typer.Option(None, help="Port (default: signal_port setting)."),
    redis: bool = typer.Option(True, help="Use the Redis hot cache and registry (redis_url setting)."),
    ping_interval: float = typer.Option(30.0, help="Seconds between server pings; a peer silent for as long is dropped."),
    queue_frames: int = typer.Option(1_000, help="Frames a client may fall behind before it is dropped."),
    demo_feed: int = typer.Option(0, help="Append a synthetic quote+factor stream for this many symbols (try-out mode)."),
    rate: float = typer.Option(2.0, help="With --demo-feed: batches per second."),
    stream_dir: str = typer.Option(None, help="Folder of the stream tables to serve (default: DATA_DIR/stream)."),
) -> None:
    """Serve the stream tables under DATA_DIR/stream (replay, snapshots), or a synthetic feed with --demo-feed.

    Inside the platform the pipeline and the service share one process:
    ``await pyplatform.signals.serve(settings, tables, stop_event, clock=LiveClock())``.
    """
    from pyplatform.clock import LiveClock
    from pyplatform.config import get_settings
    from pyplatform.signals.server import ServiceConfig
    from pyplatform.signals.service import serve as run_service
    from pyplatform.signals.service import subscribe_example

    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    tables = _open_tables(settings, demo_feed, stream_dir)
    cfg = ServiceConfig(host=host or settings.signal_host, port=port or settings.signal_port,
                        ping_interval_s=ping_interval, ping_timeout_s=ping_interval, queue_frames=queue_frames)

    async def main() -> None:
        stop = asyncio.Event()

        def ready(service) -> None:
            typer.echo(f"signal service on {service.url} (health: {service.url.replace('ws', 'http', 1)}/health)")
            typer.echo(subscribe_example(service.url))

        feeder = asyncio.create_task(_demo_feed(tables, demo_feed, rate, stop)) if demo_feed else None
        try:
            await run_service(settings, tables, stop, clock=LiveClock(), config=cfg, use_redis=redis, ready=ready)
        finally:
            stop.set()
            if feeder is not None:
                feeder.cancel()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        typer.echo("stopped")


def _open_tables(settings, demo_feed: int, stream_dir: str | None = None) -> dict:
    from pyplatform.domain.schemas import QUOTES, factor_schema
    from pyplatform.stream import StreamTable, StreamTables
    from pyplatform.clock import LiveClock

    if demo_feed:
        # persisted, so a restarted demo continues the sequence numbers instead of reusing them
        folder = settings.path("demo-stream")
        return {"quotes": StreamTable("quotes", QUOTES, folder, memory_rows=1_000_000, clock=LiveClock()),
                "factors": StreamTable("factors", factor_schema(["mom_20", "zscore_20"]), folder, memory_rows=1_000_000, clock=LiveClock())}
    folder = stream_dir or settings.path("stream")
    reg = StreamTables(folder, clock=LiveClock())
    out = {}
    for name in ("quotes", "bars", "factors", "signals"):
        try:
            out[name] = reg.get_table(name)
        except KeyError:
            continue
    if not out:
        raise typer.BadParameter(f"no quotes/bars/factors/signals stream tables under {folder}; "
                                 "run the pipeline, or try --demo-feed 100")
    return out


async def _demo_feed(tables: dict, n: int, rate: float, stop: asyncio.Event) -> None:
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    symbols = [f"SYM{i:04d}.US" for i in range(n)]
    price = 100 + rng.standard_normal(n).cumsum() * 0.1
    while not stop.is_set():
        ts = np.full(n, time.time_ns(), dtype=np.int64)
        price = price * np.exp(rng.standard_normal(n) * 1e-3)
        tables["quotes"].append({"ts": ts, "symbol": symbols, "last": price, "open": price, "high": price, "low": price,
                                 "volume": rng.integers(1, 1000, n).astype(float), "turnover": price * 100,
                                 "bid": price - 0.01, "ask": price + 0.01, "bid_size": np.full(n, 100.0),
                                 "ask_size": np.full(n, 100.0)})
        tables["factors"].append({"ts": ts, "symbol": symbols, "mom_20": rng.standard_normal(n),
                                  "zscore_20": rng.standard_normal(n)})
        await asyncio.sleep(1.0 / rate)
