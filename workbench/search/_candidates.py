"""Where a backend's candidates come from, apart from how they are evaluated: a pool draws,
identifies, resolves and formats cells (a benchmark table's, or a whole space's), and a
:class:`PooledBackend` answers the cell half of the :class:`Backend` interface from its pool."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any

from workbench._checks import check_int
from workbench.search._base import Backend
from workbench.spaces import RngLike, SearchSpace, as_rng


class CandidatePool(ABC):
    """The cells a backend can evaluate: ``sample`` draws them, ``resolve``/``cell_id``/
    ``format`` identify them, ``contains`` says whether a cell is one of them."""

    space: SearchSpace

    @abstractmethod
    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct random cells of the pool whose ids are not in ``exclude``."""

    @abstractmethod
    def resolve(self, cell: Any) -> Any:
        """The canonical cell object for a cell, cell string or id (ValueError if unknown)."""

    @abstractmethod
    def cell_id(self, cell: Any) -> str:
        """A stable string key of ``cell``."""

    def contains(self, cell: Any) -> bool:
        """Whether ``cell`` is in the pool (False for anything that cannot be read)."""
        try:
            self.resolve(cell)
        except (ValueError, LookupError, TypeError):
            return False
        return True

    def format(self, cell: Any) -> str:
        """The canonical cell string of ``cell``."""
        return self.space.format(self.resolve(cell))


class SpacePool(CandidatePool):
    """Every cell of ``space`` (drawn with ``space.sample``): for backends without a table."""

    def __init__(self, space: SearchSpace) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, got {space!r}")
        self.space = space

    def __repr__(self) -> str:
        return f"SpacePool({self.space.name!r})"

    def resolve(self, cell: Any) -> Any:
        """The cell object of a cell or cell string (ValueError naming it if it is not one)."""
        try:
            obj = self.space.parse(cell) if isinstance(cell, str) else cell
            self.space.format(obj)
            return obj
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read cell {cell!r} in {self.space.name}: {exc}") from None

    def cell_id(self, cell: Any) -> str:
        return str(self.space.cell_id(self.resolve(cell)))

    def contains(self, cell: Any) -> bool:
        """Whether ``cell`` is a cell of the space."""
        try:
            self.cell_id(cell)
        except ValueError:
            return False
        return True

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct cells drawn from the space, none of whose ids is in ``exclude``."""
        n = check_int("n", n, minimum=0)
        gen = as_rng(rng)
        taken = {str(e) for e in exclude}
        out: list[Any] = []
        for _ in range(100 * n + 1000):
            if len(out) == n:
                break
            cell = self.space.sample(gen)
            key = str(self.space.cell_id(cell))
            if key not in taken:
                taken.add(key)
                out.append(cell)
        if len(out) < n:
            raise ValueError(f"n={n!r}: could not draw that many new cells from "
                             f"{self.space.name} ({len(out)} found)")
        return out


class PooledBackend(Backend):
    """A :class:`Backend` whose cells come from ``self.candidates`` (a :class:`CandidatePool`
    set by the subclass): sampling and identifying cells is the pool's, evaluating the
    backend's."""

    candidates: CandidatePool

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct random cells of the pool, none of whose ids is in ``exclude``."""
        return self.candidates.sample(n, rng, exclude)

    def resolve(self, cell: Any) -> Any:
        """The pool's cell object for a cell, cell string or id (ValueError if not in it)."""
        return self.candidates.resolve(cell)

    def contains(self, cell: Any) -> bool:
        """Whether ``cell`` is in the pool (can be evaluated here)."""
        return self.candidates.contains(cell)

    def cell_id(self, cell: Any) -> str:
        return self.candidates.cell_id(cell)

    def format(self, cell: Any) -> str:
        return self.candidates.format(cell)
