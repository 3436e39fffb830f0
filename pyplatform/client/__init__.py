"""Client library of the live signal service.

>>> from pyplatform.client import SignalClient, subscribe          # doctest: +SKIP
>>> async for msg in SignalClient(url, token_fn, ["factors:mom_20"], ["AAPL.US"]):  # doctest: +SKIP
...     print(msg.topic, msg.seq, msg.row)
>>> sub = subscribe(url, token_fn, ["quotes"], ["AAPL.US"], print)  # notebooks  # doctest: +SKIP
"""

from pyplatform.client.signal_client import ClientAuthError, GapError, Message, SignalClient, SubscriptionError
from pyplatform.client.threaded import ThreadedSubscription, subscribe, subscribe_forever

__all__ = ["SignalClient", "Message", "ClientAuthError", "GapError", "SubscriptionError", "ThreadedSubscription",
           "subscribe", "subscribe_forever"]
