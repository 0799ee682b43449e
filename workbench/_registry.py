"""A small named registry (timm-style) behind every ``register_X``/``list_X``/``get_X`` facade:
search spaces, benchmarks, zero-cost proxies, searches, predictors and figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Named factories of one kind: ``@register(name)``, ``names()``, ``get()``, ``create()``.

    Each registry is a module-level constant filled at import time by decorators; creating an
    item always returns a new object, so no state is shared between users. A registered class
    that has a string ``name`` attribute must be registered under that same name, so an item's
    ``name`` always is its registry key.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator adding a class or factory under ``name`` (unique, a non-empty string)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def deco(factory: F) -> F:
            if not callable(factory):
                raise ValueError(f"{self.kind} {name!r} must be a class or factory, got "
                                 f"{factory!r}")
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            own = getattr(factory, "name", None) if isinstance(factory, type) else None
            if isinstance(own, str) and own != name:
                raise ValueError(f"{factory.__name__}.name is {own!r} but it is registered as "
                                 f"{self.kind} {name!r}: they must be equal")
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The class or factory registered as ``name`` (ValueError listing the names if unknown)."""
        try:
            return self._factories[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; available: {self.names()}") from None

    def create(self, name: str, **kwargs: Any) -> T:
        """A new instance of the item registered as ``name``, built from ``kwargs``."""
        return self.get(name)(**kwargs)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._factories
        except TypeError:  # unhashable
            return False

    def __len__(self) -> int:
        return len(self._factories)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
