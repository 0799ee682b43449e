"""Where a backend's candidates come from, apart from how they are evaluated: a pool draws,
identifies, resolves and formats cells (a benchmark table's, a whole space's, or a subset of
another pool's), and a :class:`PooledBackend` answers the cell half of the :class:`Backend`
interface from its pool."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from typing import Any

from workbench._checks import check_int
from workbench.benchmarks import CellNotInTableError
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


class SubsetPool(CandidatePool):
    """The cells of ``base`` (a :class:`CandidatePool`, or a :class:`Backend`'s own cells) kept
    to the list ``cells`` (None: all of them) minus those of ``exclude``, identified as
    ``base`` identifies them: what lets every method of one benchmark seed draw from the same
    cells, and none from the cells a predictor was fitted on."""

    def __init__(self, base: CandidatePool | Backend, cells: Iterable[Any] | None = None,
                 exclude: Iterable[Any] = ()) -> None:
        if not isinstance(base, (CandidatePool, Backend)):
            raise ValueError(f"base must be a CandidatePool or a workbench.search Backend, "
                             f"got {base!r}")
        self.base = base
        self.space = base.space
        #: Ids of the excluded cells.
        self.excluded = frozenset(base.cell_id(base.resolve(c)) for c in exclude)
        #: The kept cells (base's objects), in the order given; None: every cell of ``base``.
        self.cells: list[Any] | None = None
        self._ids: list[str] = []
        self._id_set: frozenset[str] = frozenset()
        if cells is not None:
            objs = [base.resolve(c) for c in cells]
            ids = [base.cell_id(c) for c in objs]
            if len(set(ids)) != len(ids):
                dup = sorted({k for k in ids if ids.count(k) > 1})
                raise ValueError(f"pool holds duplicate cells: {dup[:5]}")
            inside = [k for k in ids if k in self.excluded]
            if inside:
                raise ValueError(f"pool and exclude overlap: {inside[:5]}")
            if not objs:
                raise ValueError("pool must not be empty (None: every cell of base)")
            self.cells, self._ids, self._id_set = objs, ids, frozenset(ids)

    def __repr__(self) -> str:
        size = "all cells" if self.cells is None else f"{len(self.cells)} cells"
        return f"SubsetPool({self.base!r}, {size}, {len(self.excluded)} excluded)"

    def _kept(self, key: str) -> bool:
        return key not in self.excluded and (self.cells is None or key in self._id_set)

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct random cells of the pool, none excluded here or by ``exclude``."""
        taken = set(self.excluded) | {str(e) for e in exclude}
        if self.cells is None:
            return self.base.sample(n, rng, exclude=taken)
        n = check_int("n", n, minimum=0)
        free = [c for c, k in zip(self.cells, self._ids, strict=True) if k not in taken]
        if n > len(free):
            raise ValueError(f"n={n!r}: only {len(free)} cells of the pool of "
                             f"{len(self.cells)} are left")
        picks = as_rng(rng).choice(len(free), size=n, replace=False)
        return [free[int(i)] for i in picks]

    def resolve(self, cell: Any) -> Any:
        """``base``'s cell object for a cell, cell string or id (CellNotInTableError, a
        ValueError, for a cell that is not in the pool)."""
        obj = self.base.resolve(cell)
        key = self.base.cell_id(obj)
        if not self._kept(key):
            why = ("excluded from this pool" if key in self.excluded
                   else f"not one of the {len(self._ids)} cells of this pool")
            raise CellNotInTableError(f"cell {cell!s} (id {key!r}) is {why}")
        return obj

    def cell_id(self, cell: Any) -> str:
        return self.base.cell_id(cell)

    def contains(self, cell: Any) -> bool:
        """Whether ``base`` holds ``cell`` and it is kept here (False for unreadable cells)."""
        try:
            return bool(self.base.contains(cell)) and self._kept(
                self.base.cell_id(self.base.resolve(cell)))
        except (ValueError, LookupError, TypeError):  # e.g. a mutant an NB101 table lacks
            return False

    def format(self, cell: Any) -> str:
        return self.base.format(cell)


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
