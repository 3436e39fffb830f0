"""iTick WebSocket protocol messages: builders and the control events they decode to.

This is the sans-I/O vocabulary shared by the client and the simulator. Every shape here
follows iTick's published WebSocket documentation (connect ack, ``resAc`` answers for
``auth``/``subscribe``/``pong``); ``tests/feeds/golden/`` holds the documented messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from pyplatform.feeds.symbols import to_itick

__all__ = [
    "DATA_TYPES", "CONNECTED_MSG", "SUBSCRIPTION_LIMIT_MSG", "Connected", "AuthResult",
    "SubscribeResult", "Pong", "ServerNotice", "subscribe_message", "ping_message",
    "connected_message", "auth_message", "subscribe_result_message", "pong_message",
    "parse_control",
]

#: Data types a subscription can ask for (iTick ``types``).
DATA_TYPES = ("quote", "depth", "tick")
CONNECTED_MSG = "Connected Successfully"
SUBSCRIPTION_LIMIT_MSG = "exceeding the maximum subscription limit"
BAD_ACTION_MSG = "cannot be resolved action"


@dataclass(frozen=True, slots=True)
class Connected:
    """The server's connect acknowledgement ``{"code":1,"msg":"Connected Successfully"}``."""

    msg: str


@dataclass(frozen=True, slots=True)
class AuthResult:
    """``resAc`` = ``auth``: ``ok`` is ``code == 1``."""

    ok: bool
    msg: str


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """``resAc`` = ``subscribe``; ``limit_exceeded`` flags the plan's subscription limit."""

    ok: bool
    msg: str

    @property
    def limit_exceeded(self) -> bool:
        return (not self.ok) and "limit" in self.msg.lower()


@dataclass(frozen=True, slots=True)
class Pong:
    """``resAc`` = ``pong`` echoing the ping's ``params`` (milliseconds, as text)."""

    params: str


@dataclass(frozen=True, slots=True)
class ServerNotice:
    """Any other status message (``code``/``msg`` without data), e.g. an error notice."""

    code: int | None
    msg: str
    res_ac: str | None = None


ControlEvent = Connected | AuthResult | SubscribeResult | Pong | ServerNotice


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ---- client -> server -------------------------------------------------------------------
def subscribe_message(symbols: Iterable[str], types: Iterable[str] = DATA_TYPES) -> str:
    """``{"ac":"subscribe","params":"AAPL$US,EURUSD$GB","types":"quote,depth,tick"}``.

    Raises
    ------
    ValueError
        On an empty symbol list or an unknown data type (named in the message).
    """
    params = [to_itick(s) for s in symbols]
    if not params:
        raise ValueError("subscribe needs at least one symbol")
    types = list(types)
    for t in types:
        if t not in DATA_TYPES:
            raise ValueError(f"unknown iTick data type {t!r}; expected one of {DATA_TYPES}")
    return _dumps({"ac": "subscribe", "params": ",".join(params), "types": ",".join(types)})


def ping_message(ms: int) -> str:
    """Application heartbeat ``{"ac":"ping","params":"<ms>"}``; the pong must echo ``ms``."""
    return _dumps({"ac": "ping", "params": str(int(ms))})


# ---- server -> client (used by the simulator) -----------------------------------------
def connected_message() -> str:
    return _dumps({"code": 1, "msg": CONNECTED_MSG})


def auth_message(ok: bool, token_echo: str | None = None) -> str:
    if not ok:
        return _dumps({"code": 0, "resAc": "auth", "msg": "auth failed"})
    out: dict = {"code": 1, "resAc": "auth", "msg": "authenticated"}
    if token_echo is not None:
        out["data"] = {"params": token_echo}
    return _dumps(out)


def subscribe_result_message(ok: bool, msg: str | None = None) -> str:
    return _dumps({"code": 1 if ok else 0, "resAc": "subscribe",
                   "msg": msg or ("subscribe Successfully" if ok else BAD_ACTION_MSG)})


def pong_message(params: str) -> str:
    return _dumps({"resAc": "pong", "data": {"params": params}})


# ---- decoding control messages ---------------------------------------------------------
def parse_control(obj: dict) -> ControlEvent | None:
    """A decoded JSON object as a control event, or ``None`` when it is not one.

    Data messages (``data.type`` in :data:`DATA_TYPES`) are not control events; the batch
    decoder handles them column-wise.
    """
    res_ac = obj.get("resAc")
    code = obj.get("code")
    msg = obj.get("msg")
    msg = "" if msg is None else str(msg)
    if res_ac == "auth":
        return AuthResult(ok=code == 1, msg=msg)
    if res_ac == "subscribe":
        return SubscribeResult(ok=code == 1, msg=msg)
    if res_ac == "pong":
        data = obj.get("data")
        params = data.get("params") if isinstance(data, dict) else None
        return Pong(params=str(params) if params is not None else "")
    if res_ac is None and code == 1 and msg == CONNECTED_MSG:
        return Connected(msg=msg)
    if res_ac is not None or (msg and "data" not in obj):
        return ServerNotice(code=code if isinstance(code, int) else None, msg=msg, res_ac=res_ac)
    return None
