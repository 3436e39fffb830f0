"""Market data in: the iTick WebSocket client, the exchange simulator, gap recovery,
replay from history and the compact binary tick codec. See ``docs/feeds.md``."""

from pyplatform.feeds.cache import RecentCache
from pyplatform.feeds.client import (AuthenticationFailed, DeadConnection, FeedConfig, FeedStats, ITickClient,
                                     SubscriptionError, SubscriptionLimitError)
from pyplatform.feeds.codec import CodecError, decode_batch, encode_batch
from pyplatform.feeds.decoder import Decoded, FeedDecoder
from pyplatform.feeds.ingest import Gap, Ingestor
from pyplatform.feeds.rest import RestClient, RestError, backfill_bars
from pyplatform.feeds.runner import run_feed, run_market_feed
from pyplatform.feeds.schemas import DEPTH
from pyplatform.feeds.simulator import ExchangeSimulator, FaultPlan, SimulatorConfig, start_simulator

__all__ = [
    "ITickClient", "FeedConfig", "FeedStats", "AuthenticationFailed", "SubscriptionError",
    "SubscriptionLimitError", "DeadConnection", "FeedDecoder", "Decoded", "Ingestor", "Gap",
    "RecentCache", "RestClient", "RestError", "backfill_bars", "run_feed", "run_market_feed", "encode_batch",
    "decode_batch", "CodecError", "DEPTH", "ExchangeSimulator", "SimulatorConfig", "FaultPlan",
    "start_simulator",
]
