"""A logger adapter that keeps secrets out of logs (for websockets' own debug logging).

websockets logs every handshake header at DEBUG, including ``token: ...``. Both the
client and the simulator hand websockets this adapter, which blanks known secrets and the
value of any ``token`` header line before the record is emitted.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingLogger"]

_TOKEN_HEADER = re.compile(r"(?i)(\btoken:\s*)(\S+)")


class RedactingLogger(logging.LoggerAdapter):
    """Wraps ``logger``; ``secrets`` are replaced by ``***`` as are ``token:`` header values."""

    def __init__(self, logger: logging.Logger, *secrets: str) -> None:
        super().__init__(logger, {})
        self._secrets = [s for s in secrets if s]

    def log(self, level, msg, *args, **kwargs):
        if not self.isEnabledFor(level):
            return
        try:
            text = (str(msg) % args) if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join([str(msg), *map(str, args)])
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _TOKEN_HEADER.sub(r"\1***", text)
        kwargs.setdefault("stacklevel", 2)
        self.logger.log(level, "%s", text, **kwargs)
