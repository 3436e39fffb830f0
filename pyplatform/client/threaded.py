"""A thread-friendly callback API for notebooks and synchronous programs.

``sub = subscribe(url, token, ["factors:mom_20"], ["AAPL.US"], print)`` runs a
:class:`~pyplatform.client.signal_client.SignalClient` on its own event loop in a daemon
thread and calls ``callback(message)`` there; ``sub.stop()`` ends it and re-raises any
error the subscription ended with.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from pyplatform.client.signal_client import Message, SignalClient

__all__ = ["ThreadedSubscription", "subscribe", "subscribe_forever"]


class ThreadedSubscription:
    """A running subscription in a background thread.

    Parameters
    ----------
    client : SignalClient
    callback : callable
        ``callback(Message)``, called in the subscription's thread, one row at a time.
    """

    def __init__(self, client: SignalClient, callback: Callable[[Message], Any]) -> None:
        self.client = client
        self.callback = callback
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pyplatform-signal-client", daemon=True)

    def start(self) -> ThreadedSubscription:
        self._thread.start()
        self._started.wait(5)
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._started.set()
            async for msg in self.client:
                self.callback(msg)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced by stop()/join()
            self.error = exc
        finally:
            self._started.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the subscription; re-raise the error it failed with, if any."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error


def subscribe(url: str, token: Any, topics: list[str], symbols: list[str] | str, callback: Callable[[Message], Any],
              **client_kw: Any) -> ThreadedSubscription:
    """Start a background subscription calling ``callback(message)`` for each row."""
    return ThreadedSubscription(SignalClient(url, token, topics, symbols, **client_kw), callback).start()


def subscribe_forever(url: str, token: Any, topics: list[str], symbols: list[str] | str,
                      callback: Callable[[Message], Any], **client_kw: Any) -> None:
    """Blocking form of :func:`subscribe` for scripts; Ctrl-C stops it."""
    sub = subscribe(url, token, topics, symbols, callback, **client_kw)
    try:
        sub.join()
    except KeyboardInterrupt:
        sub.stop()
