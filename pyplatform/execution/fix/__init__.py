"""FIX 4.4 adapters (quickfix): the broker initiator and the exchange-simulator acceptor.

Importing this package needs the optional ``quickfix`` dependency (``pip install
pyplatform[fix]``); the rest of ``pyplatform.execution`` does not.
"""
