"""The signal benchmark's baseline: the fan-out everyone writes first.

:class:`NaiveFanout` serialises every message once per client (rows to dicts, then the
client's codec encodes the whole message), where :class:`~pyplatform.signals.fanout.Fanout`
encodes each batch's rows once per wire encoding and assembles every subscriber's frame from
the shared bytes. :class:`NaiveSignalService` is the service with that fan-out, so
``pyplatform bench signals`` can time both in the same run through the same sockets.

They live here, not behind a flag of the production classes, so the service's hot path
carries no benchmark branch. The tests check that both fan-outs deliver the same messages.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pyplatform.signals.fanout import Fanout, Subscriber
from pyplatform.signals.server import SignalService
from pyplatform.signals.topics import Topic, filter_symbols, project_rows

__all__ = ["NaiveFanout", "NaiveSignalService"]


class NaiveFanout(Fanout):
    """A :class:`Fanout` that builds and encodes each message per client (the baseline)."""

    def _fanout_topic(self, topic: Topic, subs: dict[Subscriber, frozenset[str] | None], rows: pa.Table) -> None:
        projected = project_rows(topic, rows)
        if projected.num_rows == 0:
            return
        for sub, symbols in list(subs.items()):
            self._push_per_client(sub, topic.name, filter_symbols(projected, symbols))

    @staticmethod
    def _push_per_client(sub: Subscriber, topic: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        records = rows.to_pylist()
        message: dict[str, Any] = {"type": "data", "topic": topic, "rows": records}
        if sub.codec.text:
            for r in records:  # JSON has no NaN
                for k, v in r.items():
                    if isinstance(v, float) and v != v:
                        r[k] = None
        # a whole message encoded by the codec's public encoder of one message (what the
        # service sends control messages with): JSON text, or flag byte + msgpack (+zstd)
        sub.push(sub.codec.control(message), topic, int(records[-1]["seq"]))


class NaiveSignalService(SignalService):
    """The signal service with :class:`NaiveFanout` (same adapter, sockets and limits)."""

    fanout_class = NaiveFanout
