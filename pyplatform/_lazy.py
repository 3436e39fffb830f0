"""Lazy package exports (PEP 562), so importing a package does not import all its parts.

``pyplatform bench`` imports every area's bench module to register its commands; with eager
``__init__`` imports that pulled Dash, empyrical, the signal server and the feed client into
every CLI start (over 2 s). Packages list their public names here instead and each loads on
first use.
"""

from __future__ import annotations

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` serving ``name -> submodule`` on first access.

    The one lazy-export mechanism of the platform: a package assigns the pair to its own
    ``__getattr__`` and ``__dir__`` (PEP 562).

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict
        Public name -> the submodule (relative to ``package``) that defines it.

    Returns
    -------
    tuple of callables
        ``__getattr__`` imports the submodule on first access and caches the value on the
        package (later lookups are plain attribute reads); ``__dir__`` lists the package's
        own names and the lazy ones.

    Examples
    --------
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"FactorEngine": "engine"})  # doctest: +SKIP
    """

    def __getattr__(name: str):
        sub = exports.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sub}"), name)
        setattr(importlib.import_module(package), name, value)  # cache: later lookups are plain
        return value

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
