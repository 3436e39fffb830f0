"""Trading signals emitted by strategies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

__all__ = ["Direction", "Signal"]


class Direction(IntEnum):
    SHORT = -1
    FLAT = 0
    LONG = 1


@dataclass(frozen=True, slots=True)
class Signal:
    ts: int
    symbol: str
    strategy: str
    direction: Direction
    strength: float = 1.0
    reason: str = ""
    factors: dict[str, float] = field(default_factory=dict)
