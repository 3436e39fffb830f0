"""Market data in: the iTick WebSocket client, the exchange simulator, gap recovery,
replay from history and the compact binary tick codec. See ``docs/feeds.md``."""

from pyplatform._lazy import lazy_exports

_EXPORTS = {
    "RecentCache": "cache",
    "AuthenticationFailed": "client",
    "DeadConnection": "client",
    "FeedConfig": "client",
    "FeedStats": "client",
    "ITickClient": "client",
    "SubscriptionError": "client",
    "SubscriptionLimitError": "client",
    "CodecError": "codec",
    "decode_batch": "codec",
    "encode_batch": "codec",
    "Decoded": "decoder",
    "FeedDecoder": "decoder",
    "Gap": "ingest",
    "Ingestor": "ingest",
    "RestClient": "rest",
    "RestError": "rest",
    "backfill_bars": "rest",
    "run_feed": "runner",
    "FeedFailed": "runner",
    "run_market_feed": "runner",
    "DEPTH": "schemas",
    "ExchangeSimulator": "simulator",
    "FaultPlan": "simulator",
    "SimulatorConfig": "simulator",
    "start_simulator": "simulator",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ITickClient", "FeedConfig", "FeedStats", "AuthenticationFailed", "SubscriptionError",
    "SubscriptionLimitError", "DeadConnection", "FeedDecoder", "Decoded", "Ingestor", "Gap",
    "RecentCache", "RestClient", "RestError", "backfill_bars", "run_feed", "FeedFailed", "run_market_feed", "encode_batch",
    "decode_batch", "CodecError", "DEPTH", "ExchangeSimulator", "SimulatorConfig", "FaultPlan",
    "start_simulator",
]
