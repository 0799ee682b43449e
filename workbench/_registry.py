"""A small named registry (timm-style) shared by spaces, benchmarks and later proxies/predictors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories of one kind: ``@register(name)``, ``names()``, ``create(name)``.

    Each registry is a module-level constant filled at import time by decorators; creating an
    item always returns a new object, so no state is shared between users.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator adding a class or factory under ``name`` (names are unique)."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def create(self, name: str, **kwargs: Any) -> T:
        """A new instance of the item registered as ``name``."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {self.names()}") from None
        return factory(**kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
