"""Keeps a running factor engine in step with the registry, without a restart.

Sans-I/O: ``poll()`` is called by whatever loop drives the engine (the live runtime, a
test). It reads the registry's generation counter, and only when it moved does it diff
the active factor set against what the engine runs: new factors and new versions are
added (a new version replaces the old column), retired ones are removed.
"""

from __future__ import annotations

import logging

from pyplatform.registry.factors import FactorRegistry, FactorVersion

__all__ = ["RegistryWatcher"]

log = logging.getLogger(__name__)


class RegistryWatcher:
    """Syncs published factors into an engine with ``add_factor`` / ``remove_factor``.

    Parameters
    ----------
    registry : FactorRegistry
    engine : object with ``add_factor(name, text)`` and ``remove_factor(name)``; published
        model factors are started too when it has ``add_published_model(version, history=)`` and
        ``remove_model(name)`` (e.g. ``pyplatform.models.factor.ModelEngine``)
    warmup : callable, optional
        ``warmup(version) -> history frame or None`` passed to ``add_factor`` as ``history=``
        when the engine supports it, so a new factor starts warm.
    """

    def __init__(self, registry: FactorRegistry, engine, warmup=None) -> None:
        self.registry = registry
        self.engine = engine
        self.warmup = warmup
        self.running: dict[str, FactorVersion] = {}
        self._generation = -1
        self.errors: list[str] = []

    def poll(self) -> list[tuple[str, str]]:
        """Apply registry changes; returns the actions taken as (action, name) pairs."""
        gen = self.registry.generation()
        if gen == self._generation:
            return []
        self._generation = gen
        models_ok = hasattr(self.engine, "add_published_model")
        wanted = {n: v for n, v in self.registry.active().items() if v.kind == "expression" or models_ok}
        actions: list[tuple[str, str]] = []
        for name in list(self.running):
            if name not in wanted or wanted[name].version != self.running[name].version:
                if self.running[name].kind == "model":
                    self.engine.remove_model(name)
                else:
                    self.engine.remove_factor(name)
                del self.running[name]
                actions.append(("remove", name))
        for name, v in wanted.items():
            if name in self.running:
                continue
            current = getattr(self.engine, "factors", {}) or {}
            if v.kind == "expression" and current.get(name) == v.expression:
                # restored from a checkpoint with this very version: adopt it, don't re-add
                self.running[name] = v
                actions.append(("adopt", name))
                continue
            try:
                hist = self.warmup(v) if self.warmup else None
                if v.kind == "model":
                    # the engine builds its own model spec: the registry stays below the models
                    self.engine.add_published_model(v, history=hist)
                elif hist is not None:
                    self.engine.add_factor(name, v.expression, history=hist)
                else:
                    self.engine.add_factor(name, v.expression)
            except Exception as exc:  # a bad factor must not stop the engine's other factors
                msg = f"could not start factor {name} v{v.version}: {exc}"
                log.error(msg)
                self.errors.append(msg)
                continue
            self.running[name] = v
            actions.append(("add", name))
        if actions:
            log.info("registry generation %d: %s", gen, actions)
        return actions
