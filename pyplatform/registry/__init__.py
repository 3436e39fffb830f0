"""Registries in the data directory (published factors and models)."""

from pyplatform.registry.factors import FactorRegistry, FactorVersion, RegistryError

__all__ = ["FactorRegistry", "FactorVersion", "RegistryError"]
