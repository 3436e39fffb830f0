"""Registers the fixtures defined in signals_support.py for this folder."""

from signals_support import *  # noqa: F401,F403  (fixtures are collected from this namespace)
