"""FIX 4.4 adapters (quickfix): the broker initiator and the exchange-simulator acceptor.

Importing this package needs the optional ``quickfix`` dependency (``pip install
pyplatform[fix]``); the rest of ``pyplatform.execution`` does not.
"""


class SessionDown(RuntimeError):
    """A command sent while the FIX session is not logged on (the text says why, in the
    session's own words). Defined here, free of quickfix, so callers can catch it without
    importing the adapter."""
