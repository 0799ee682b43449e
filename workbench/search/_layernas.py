"""LayerNAS (Fan et al., 2023): layer-wise constrained search with cost buckets, step by step.

A :class:`LayerwiseSpace` is a sequence of L search layers, each a list of options, with a cost
function over whole candidates (tuples holding one option value per layer). :class:`LayerNAS`
fixes the layers one at a time, keeping per layer a table of cost *buckets* of at most H
candidates each, and shows every table and every decision (added, evicted, dropped, rejected)
so that a run can be stepped through like the paper's worked example. :meth:`LayerNAS.explain`
follows one candidate's prefixes through the tables; :func:`brute_force` gives the exact
constrained optimum of an enumerable space and :func:`independence_violations` measures how
often the paper's independence assumption costs LayerNAS that optimum. A
:class:`LayerwiseProblem` bundles a space with its evaluator (``_layernas_spaces`` ships three).

:class:`LayerNAS` is a :class:`~workbench.search.Search` like every other method (``step()``,
``run()`` -> history, ``best()`` -> (cell, score), ``table()``, registered as "layernas"), so
``simulate`` and the generic stepper run it: on a NAS-Bench-201 backend it builds the topology
space itself; a :class:`LayerwiseProblem` is evaluated through a :class:`ProblemBackend`.

Conventions (the paper leaves them open; see ``../shared/reference/layernas.md``):

* Layers are numbered 1..L as in the paper; "layer 0" is the root, the all-default candidate.
  A candidate of layer i has its own options on layers 1..i and the defaults on i+1..L; its
  *children* replace layer i+1's option (the unchanged option gives the candidate itself, which
  is inserted without training when it was already evaluated).
* Layer ranges, ``range_rule="paper"`` (default): layer i keeps totals within
  ``[lo - S_i, hi + S_i]`` clipped to the totals its candidates can have, where ``S_i`` is how
  far changing layers i+1..L can move the cost (the largest spread of the completions of one
  prefix). This reproduces the paper's example (layer 1: 9-12, layer 2: 6-12, layer 3: 8-9).
  ``range_rule="exact"`` keeps exactly the totals of prefixes some completion of which lands in
  the target (the example's layer 2 becomes 8-12: AAD and ABD cannot reach 8 M) and, where the
  space can be enumerated, also drops each child none of whose completions lands in the target
  (costs come in clusters, e.g. NAS-Bench-201 params, so an interval alone lets dead ends in:
  with "paper" ranges the last table can even end empty).
* Buckets: ``buckets_per_layer`` equal splits of ``[lo_i, hi_i]``; a cost c goes to bucket
  ``floor((c - lo_i) / width)``, the top edge ``hi_i`` into the last bucket. With integer costs
  a bucket covers the integers in its half-open interval: 6-12 in 4 -> [6-7] [8] [9-10] [11-12].
* Alternatives for costs that are far from additive (device latency; see ``bench/hardware.py``),
  both for enumerable spaces: ``bucket_edges="quantile"`` splits each layer's range at the
  quantiles of the costs of the prefixes it keeps (equally many prefixes per bucket, so that a
  few outlying costs do not leave most buckets empty), and ``bucket_cost="floor"`` buckets a
  prefix by the lowest cost any completion of it reaches (how much of the target it uses up
  whatever the later layers choose) instead of its own cost with the defaults.
* Layer order: layers are searched in the space's order (``layer_order="given"``: NAS-Bench-201's
  edges in cell-string order), or ``"cost"``: the layer whose option moves the cost most first
  (:meth:`LayerwiseSpace.cost_order`), so that the early bucket decisions are the ones the cost
  target constrains most; or any permutation of the layer numbers. The search runs on
  :meth:`LayerwiseSpace.reordered`; labels, candidates and answers stay in the space's order
  (tables and history number the *search* layers; ``range_table`` shows which is which).
* Ranking inside a bucket and "best": higher score, then lower cost, then earlier evaluation.
* An iteration at layer i trains up to ``candidates_per_iter`` new children (the paper's "2
  candidates per iteration": its first iteration trains two children of the root). It walks the
  layer i-1 candidates that still have unexplored children *best first* (the ranking above)
  and generates each one's children an option at a time: the candidate itself first when
  already evaluated (free), then the other options in a seeded random order (the paper mutates
  at random). Children outside layer i's range are dropped without training. A candidate is
  marked ``[x]`` once all its children have been generated.
* A sweep visits layers 1..L once (layers without pending parents are skipped); the search
  repeats sweeps until no table has a candidate with unexplored children. The answer is the
  best candidate of layer L's table, whose range lies within the target.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar, cast

import numpy as np
import pandas as pd

from workbench._checks import check_int, is_int
from workbench.search._base import (
    Backend,
    Evaluation,
    RankerLike,
    Search,
    check_budget,
    register_search,
)
from workbench.spaces import RngLike, as_rng

#: The options of a layer-wise space: op names (NAS-Bench-201), widths (channel spaces), ...
Opt = TypeVar("Opt", bound=Hashable)
Candidate = tuple[Hashable, ...]
#: ``evaluator(candidate) -> score``; plain ``Evaluator`` takes a candidate of any space.
Evaluator = Callable[[tuple[Opt, ...]], float]

RANGE_RULES = ("paper", "exact")
BUCKET_EDGES = ("equal", "quantile")
BUCKET_COSTS = ("candidate", "floor")
LAYER_ORDERS = ("given", "cost")
_HISTORY_COLUMNS = ["iteration", "sweep", "layer", "parent", "child", "candidate", "cost",
                    "bucket", "score", "trained", "seconds", "event"]


def _fmt_num(x: float) -> str:
    """Compact number: integers without decimals, others with 4 significant digits."""
    return str(round(x)) if float(x).is_integer() else f"{x:.4g}"


def _fmt_score(x: float) -> str:
    """Score as in the paper's figures (0.40, 93.21); tiny values in 3 significant digits."""
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.3g}"


# --------------------------------------------------------------------------------------------
# Space
# --------------------------------------------------------------------------------------------


class LayerwiseSpace(Generic[Opt]):
    """L search layers, each a list of options, and a cost over whole candidates (tuples).

    ``default`` (one option value per layer) is where the search starts; by default each
    layer's most expensive option (found by coordinate ascent on ``cost_fn``, exact for costs
    that are sums over layers or monotone in each layer). Spaces with at most
    ``enumerate_limit`` candidates get exact layer ranges by enumeration; larger ones use the
    per-layer cost changes around the default, exact only for additive costs.
    """

    def __init__(self, layers: Sequence[Sequence[Opt]], cost_fn: Evaluator[Opt],
                 default: Sequence[Opt] | None = None, name: str = "layerwise", *,
                 format_fn: Callable[[tuple[Opt, ...]], str] | None = None,
                 enumerate_limit: int = 200_000, unit: str = "") -> None:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(f"layers must be a non-empty list of option lists, got {layers!r}")
        opts: list[tuple[Opt, ...]] = []
        for i, layer in enumerate(layers, start=1):
            if isinstance(layer, (str, bytes)) or not isinstance(layer, Sequence) or not layer:
                raise ValueError(f"layer {i} must be a non-empty list of options, got {layer!r}")
            layer = tuple(layer)
            try:
                distinct = len(set(layer)) == len(layer)
            except TypeError:
                raise ValueError(f"layer {i} options must be hashable, got {layer!r}") from None
            if not distinct:
                raise ValueError(f"layer {i} has repeated options: {layer!r}")
            opts.append(layer)
        if not callable(cost_fn):
            raise ValueError(f"cost_fn must be callable, got {cost_fn!r}")
        check_int("enumerate_limit", enumerate_limit, minimum=0)
        self.layers: tuple[tuple[Opt, ...], ...] = tuple(opts)
        self.name = str(name)
        #: Unit of the costs ('ms', 'mJ'; '' when unnamed), shown in bucket labels.
        self.unit = str(unit)
        self._cost_fn = cost_fn
        self._format_fn = format_fn
        self._index = [{o: k for k, o in enumerate(layer)} for layer in self.layers]
        self._costs: dict[tuple[Opt, ...], float] = {}
        self._grid: np.ndarray | None = None
        self.enumerable = self.size <= enumerate_limit
        self.default: tuple[Opt, ...] = (self._most_expensive() if default is None
                                         else self.check(default, "default"))
        #: The space this one reorders (None: it is its own) and, for each of its layers, the
        #: number (1-based) of that layer in ``base`` (see :meth:`reordered`).
        self.base: LayerwiseSpace[Opt] | None = None
        self.order: tuple[int, ...] = tuple(range(1, self.n_layers + 1))
        self._reorders: dict[tuple[int, ...], LayerwiseSpace[Opt]] = {}

    # -- basics -----------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of search layers L."""
        return len(self.layers)

    @property
    def size(self) -> int:
        """Number of candidates (product of the layers' option counts)."""
        return math.prod(len(layer) for layer in self.layers)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        sizes = "x".join(str(len(layer)) for layer in self.layers)
        return (f"LayerwiseSpace({self.name!r}, {sizes} options, "
                f"default={self.format(self.default)})")

    def check(self, candidate: Sequence[Opt], what: str = "candidate") -> tuple[Opt, ...]:
        """``candidate`` as a tuple after checking it has one valid option per layer."""
        if isinstance(candidate, (str, bytes)) and not all(
                len(layer) and all(isinstance(o, str) and len(o) == 1 for o in layer)
                for layer in self.layers):
            raise ValueError(f"{what} must be a sequence of options, got {candidate!r}")
        try:
            cand = tuple(candidate)
        except TypeError:
            raise ValueError(f"{what} must be a sequence of options, got {candidate!r}") from None
        if len(cand) != self.n_layers:
            raise ValueError(f"{what} {candidate!r} has {len(cand)} options; the space "
                             f"{self.name!r} has {self.n_layers} layers")
        for i, (o, idx) in enumerate(zip(cand, self._index, strict=True), start=1):
            try:
                ok = o in idx
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(f"{what} {candidate!r}: option {o!r} is not in layer {i}'s "
                                 f"options {list(self.layers[i - 1])}")
        return cand

    def positions(self, candidate: tuple[Opt, ...]) -> tuple[int, ...]:
        """The option index of each layer's option in ``candidate``."""
        return tuple(self._index[i][o] for i, o in enumerate(candidate))

    def replace(self, candidate: tuple[Opt, ...], layer: int, option: Opt) -> tuple[Opt, ...]:
        """``candidate`` with layer ``layer`` (1-based) set to ``option``."""
        return (*candidate[:layer - 1], option, *candidate[layer:])

    def cost(self, candidate: Sequence[Opt]) -> float:
        """Cost of ``candidate`` from ``cost_fn`` (cached per space)."""
        try:  # fast path: a cached tuple; lists and other unhashables raise TypeError
            return self._costs[candidate]  # type: ignore[index]  # keys are tuples
        except (KeyError, TypeError):
            cand = self.check(candidate)
        if cand not in self._costs:
            value = float(self._cost_fn(cand))
            if not math.isfinite(value):
                raise ValueError(f"cost_fn returned {value!r} for {cand!r}")
            self._costs[cand] = value
        return self._costs[cand]

    def format(self, candidate: tuple[Opt, ...]) -> str:
        """Short label: ``format_fn`` if given, else the options joined ('CAD', '64-32-8')."""
        if self._format_fn is not None:
            return str(self._format_fn(candidate))
        if all(isinstance(o, str) and len(o) == 1 for o in candidate):
            return "".join(cast(tuple[str, ...], candidate))
        return "-".join(str(o) for o in candidate)

    def candidates(self) -> Iterator[tuple[Opt, ...]]:
        """Every candidate, in lexicographic order of option positions."""
        return itertools.product(*self.layers)

    # -- layer order ---------------------------------------------------------------------------
    def reordered(self, order: Sequence[int]) -> LayerwiseSpace[Opt]:
        """The same candidates searched in another layer order: layer k of the result is layer
        ``order[k]`` (1-based) of this space. Costs, labels (:meth:`format`) and
        :meth:`restore` stay in this space's order; reorderings are cached per space."""
        L = self.n_layers
        try:
            items = None if isinstance(order, (str, bytes)) else list(order)
        except TypeError:
            items = None
        if items is None or sorted(o if is_int(o) else -1 for o in items) != list(range(1, L + 1)):
            raise ValueError(f"layer order must list the layer numbers 1..{L} once each, got "
                             f"{order!r}")
        key = tuple(int(o) for o in items)
        if key == tuple(range(1, L + 1)):
            return self
        if key not in self._reorders:
            perm = [k - 1 for k in key]
            space: LayerwiseSpace[Opt] = LayerwiseSpace(
                [self.layers[p] for p in perm],
                lambda c: self.cost(space.restore(c)), tuple(self.default[p] for p in perm),
                self.name, format_fn=lambda c: self.format(space.restore(c)),
                enumerate_limit=self.size if self.enumerable else 0, unit=self.unit)
            space.base, space.order = self, key
            if self.enumerable:
                space._grid = np.transpose(self.cost_grid(), perm)
            self._reorders[key] = space
        return self._reorders[key]

    def restore(self, candidate: Sequence[Opt]) -> tuple[Opt, ...]:
        """A candidate of this space with its options in :attr:`base`'s layer order (itself
        when this space is not a reordering)."""
        if self.base is None:
            return tuple(candidate)
        out: list[Any] = [None] * self.n_layers
        for k, o in zip(self.order, candidate, strict=True):
            out[k - 1] = o
        return tuple(out)

    def arrange(self, candidate: Sequence[Opt]) -> tuple[Opt, ...]:
        """The inverse of :meth:`restore`: a candidate of :attr:`base` in this space's order."""
        if self.base is None:
            return self.check(candidate)
        cand = self.base.check(candidate)
        return tuple(cand[k - 1] for k in self.order)

    def cost_spread(self) -> np.ndarray:
        """Per layer, how far its option moves the cost: the mean over the other layers'
        options of (highest - lowest cost over this layer's options) when enumerable, else the
        spread of single-layer changes around the default."""
        if self.enumerable:
            grid = self.cost_grid()
            return np.array([float(np.mean(grid.max(axis=i) - grid.min(axis=i)))
                             for i in range(self.n_layers)])
        return np.array([float(np.ptp([self.cost(self.replace(self.default, i, o))
                                       for o in layer]))
                         for i, layer in enumerate(self.layers, start=1)])

    def cost_order(self) -> tuple[int, ...]:
        """Layer numbers (1-based), the layer that moves the cost most first (ties: in order)."""
        spread = self.cost_spread()
        return tuple(int(i) + 1 for i in sorted(range(self.n_layers), key=lambda i: -spread[i]))

    # -- costs over the whole space ----------------------------------------------------------
    def cost_grid(self) -> np.ndarray:
        """Cost of every candidate as an array of shape (options of layer 1, ..., of layer L)."""
        if not self.enumerable:
            raise ValueError(f"space {self.name!r} has {self.size} candidates, more than "
                             "enumerate_limit; it cannot be enumerated")
        if self._grid is None:
            flat = np.fromiter((self.cost(c) for c in self.candidates()), dtype=np.float64,
                               count=self.size)
            self._grid = flat.reshape([len(layer) for layer in self.layers])
        return self._grid

    @property
    def integer_costs(self) -> bool:
        """Whether every cost is a whole number (buckets are then shown as integer spans)."""
        if self.enumerable:
            return bool(np.all(self.cost_grid() == np.round(self.cost_grid())))
        return all(float(self.cost(self.replace(self.default, i + 1, o))).is_integer()
                   for i, layer in enumerate(self.layers) for o in layer)

    def _most_expensive(self) -> tuple[Opt, ...]:
        """Coordinate ascent from the last options: each layer's costliest option, stable."""
        cand = tuple(layer[-1] for layer in self.layers)
        for _ in range(self.n_layers + 1):
            changed = False
            for i, layer in enumerate(self.layers, start=1):
                costs = [self.cost(self.replace(cand, i, o)) for o in layer]
                best = layer[int(np.argmax(costs))]
                if costs[self._index[i - 1][best]] > costs[self._index[i - 1][cand[i - 1]]]:
                    cand, changed = self.replace(cand, i, best), True
            if not changed:
                break
        return cand

    def cost_range(self) -> tuple[float, float]:
        """(lowest, highest) cost of a candidate: exact when enumerable, else the additive
        approximation from single-layer changes around the default."""
        if self.enumerable:
            grid = self.cost_grid()
            return float(grid.min()), float(grid.max())
        base = self.cost(self.default)
        deltas = [[self.cost(self.replace(self.default, i, o)) - base for o in layer]
                  for i, layer in enumerate(self.layers, start=1)]
        return (base + sum(min(d) for d in deltas), base + sum(max(d) for d in deltas))

    def can_reach(self, target: tuple[float, float]) -> list[np.ndarray] | None:
        """For layers 1..L, a boolean array over option positions of layers 1..i: whether that
        prefix has a completion whose cost lies within ``target`` (None if not enumerable)."""
        if not self.enumerable:
            return None
        lo, hi = _check_target(target)
        grid = self.cost_grid()
        inside = (grid >= lo) & (grid <= hi)
        L = self.n_layers
        return [np.asarray(inside.any(axis=tuple(range(i, L)))) if i < L else inside
                for i in range(1, L + 1)]

    def layer_ranges(self, target: tuple[float, float], rule: str = "paper"
                     ) -> list[tuple[float, float]]:
        """Cost range ``(lo_i, hi_i)`` of layers 1..L for ``target`` under ``rule`` (module doc).

        Raises ``ValueError`` when no candidate's cost lies within the target.
        """
        lo, hi = _check_target(target)
        if rule not in RANGE_RULES:
            raise ValueError(f"unknown range_rule {rule!r}; allowed: {RANGE_RULES}")
        d = [self._index[i][o] for i, o in enumerate(self.default)]
        L = self.n_layers
        out: list[tuple[float, float]] = []
        if self.enumerable:
            grid = self.cost_grid()
            if not np.any((grid >= lo) & (grid <= hi)):
                raise ValueError(f"target {target!r} is unreachable: no candidate of "
                                 f"{self.name!r} costs within it (costs span "
                                 f"{_fmt_num(grid.min())}..{_fmt_num(grid.max())})")
            for i in range(1, L + 1):
                totals = grid[(slice(None),) * i + tuple(d[i:])]
                rest = tuple(range(i, L))
                rmin = grid.min(axis=rest) if rest else grid
                rmax = grid.max(axis=rest) if rest else grid
                if rule == "paper":
                    spread = float((rmax - rmin).max())
                    out.append((max(float(totals.min()), lo - spread),
                                min(float(totals.max()), hi + spread)))
                else:
                    ok = (rmin <= hi) & (rmax >= lo)
                    out.append((float(totals[ok].min()), float(totals[ok].max())))
        else:  # additive approximation from single-layer changes around the default
            base = self.cost(self.default)
            deltas = [[self.cost(self.replace(self.default, i, o)) - base for o in layer]
                      for i, layer in enumerate(self.layers, start=1)]
            mins, maxs = [min(x) for x in deltas], [max(x) for x in deltas]
            if base + sum(mins) > hi or base + sum(maxs) < lo:
                raise ValueError(f"target {target!r} is unreachable: costs of {self.name!r} "
                                 f"span about {_fmt_num(base + sum(mins))}.."
                                 f"{_fmt_num(base + sum(maxs))}")
            for i in range(1, L + 1):
                tmin, tmax = base + sum(mins[:i]), base + sum(maxs[:i])
                qmin, qmax = sum(mins[i:]), sum(maxs[i:])
                if rule == "paper":
                    out.append((max(tmin, lo - (qmax - qmin)), min(tmax, hi + (qmax - qmin))))
                else:
                    out.append((max(tmin, lo - qmax), min(tmax, hi - qmin)))
        for i, (a, b) in enumerate(out, start=1):
            if a > b:
                raise ValueError(f"target {target!r} is unreachable: layer {i} has an empty "
                                 f"cost range ({_fmt_num(a)} > {_fmt_num(b)})")
        return out


def _check_target(target: Any) -> tuple[float, float]:
    """``target`` as ``(lo, hi)`` floats with lo <= hi, else ``ValueError`` naming it."""
    try:
        lo, hi = target
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"target must be a pair (lo, hi) of numbers, got {target!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"target must be finite with lo <= hi, got {target!r}")
    return lo, hi


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


class Found(NamedTuple):
    """A candidate with its label, cost and score (what :meth:`LayerNAS.found` returns)."""

    candidate: Candidate
    name: str
    cost: float
    score: float


@dataclass
class _Member:
    candidate: Candidate
    cost: float
    score: float  # the ranking score (the ranker's; -inf for NaN)
    seq: int  # evaluation number: the last tie-break (-1 for the unevaluated root)
    row: int = -1  # history row where it entered this layer's table (-1: the root)

    def key(self) -> tuple[float, float, int]:
        return (-self.score, self.cost, self.seq)


@register_search("layernas")
class LayerNAS(Search):
    """LayerNAS as a step-through :class:`Search`: per-layer bucket tables, one iteration per
    ``step()`` (conventions in the module docstring).

    ``backend``: a NAS-Bench-201 backend (tabular or training: the cell's 6 edges are the layers,
    ``cost`` "params" or "flops" from the bundled table, every candidate evaluated by the backend
    at ``budget``, in its unit, default its smallest budget), a
    :class:`LayerwiseProblem` (scored by its evaluator through a :class:`ProblemBackend`) or a
    :class:`LayerwiseSpace` with ``evaluator(candidate) -> score`` (optional ``eval_seconds``,
    ``truth``). ``problem=`` searches that problem whatever the backend; any other backend
    needs one. ``target`` (lo, hi) defaults to the problem's, else the whole cost range; a
    single number is a budget (lo = the cheapest cost). On NB201, ``cost`` may also be
    ``(metric, device)``, a tabulated inference cost such as ``("latency", "pixel3")`` (ms, on
    the backend's dataset), or a function of an ``NB201Cell``: the paper's latency setting.
    Candidates are ranked by the ranker (default: the observed score). ``bucket_edges``
    ("equal" or "quantile") and ``bucket_cost`` ("candidate" or "floor") choose how prefixes
    are bucketed (module doc); the alternatives suit costs far from additive, like latency.
    ``layer_order`` ("given", "cost" or a permutation of 1..L) is the order the layers are
    searched in (module doc); ``bench/hardware.py`` measures "cost" with floor costs.

    History: one row per generated child (trained, re-inserted for free, rejected or dropped
    outside the layer's range) with the base columns (``decision``: added / evicted X /
    rejected-full / dropped; ``iteration`` counts from 1 as in the paper) and ``sweep``,
    ``layer``, ``parent``, ``child`` (labels), ``options`` (the candidate tuple),
    ``model_cost`` (its cost under the constraint), ``bucket`` and ``trained``;
    ``n_evaluations`` counts the trained rows (``evaluations``: a re-inserted row repeats its
    Evaluation, a dropped one gets a NaN placeholder with ``info["dropped"]``). ``best()`` is
    the best of layer L's table as ``(cell, score)`` (RuntimeError while it is empty),
    ``found()`` the same as a :class:`Found`, ``incumbent_trace()`` that answer after each row.
    """

    name: ClassVar[str] = "layernas"
    label = "LayerNAS"
    extra_columns: ClassVar[tuple[str, ...]] = ("sweep", "layer", "parent", "child", "options",
                                                "model_cost", "bucket", "trained")

    def __init__(self, backend: Backend | LayerwiseProblem | LayerwiseSpace,
                 evaluator: Evaluator | None = None, target: tuple[float, float] | None = None,
                 buckets_per_layer: int = 4, capacity_H: int = 2, candidates_per_iter: int = 2,
                 *, seed: RngLike = 0, ranker: RankerLike = "observed",
                 range_rule: str = "paper", bucket_edges: str = "equal",
                 bucket_cost: str = "candidate", layer_order: str | Sequence[int] = "given",
                 problem: LayerwiseProblem | None = None,
                 budget: float | None = None,
                 cost: str | tuple[str, str] | Callable[[Any], float] = "params",
                 eval_seconds: Callable[[Candidate], float] | None = None,
                 truth: Evaluator | None = None) -> None:
        for name, v in (("buckets_per_layer", buckets_per_layer), ("capacity_H", capacity_H),
                        ("candidates_per_iter", candidates_per_iter)):
            check_int(name, v, minimum=1)
        if not (isinstance(seed, np.random.Generator)
                or (seed is not None and is_int(seed) and seed >= 0)):
            raise ValueError(f"seed must be an int >= 0 or a numpy Generator, got {seed!r}")
        runner, space, to_cell, self.problem = _layerwise_setup(
            backend, evaluator, problem, cost, eval_seconds, truth)
        super().__init__(runner, seed=seed, ranker=ranker)
        self.layer_order = layer_order
        order: Sequence[int]
        if isinstance(layer_order, str):
            if layer_order not in LAYER_ORDERS:
                raise ValueError(f"unknown layer_order {layer_order!r}; allowed: {LAYER_ORDERS} "
                                 f"or a list of the layer numbers 1..{space.n_layers}")
            order = (tuple(range(1, space.n_layers + 1)) if layer_order == "given"
                     else space.cost_order())
        else:
            order = layer_order
        #: The space in search order: its layer i is layer ``search_order[i - 1]`` of the
        #: problem's space (candidates shown and returned are in the problem's order).
        self._given = space
        space = space.reordered(order)
        self.search_order: tuple[int, ...] = tuple(int(o) for o in order)
        self.space = space
        self._to_cell = to_cell
        budget = runner.min_budget if budget is None else check_budget("budget", budget)
        self.budget = float(budget)  # what each candidate is evaluated at (backend's unit)
        self._ran = float(runner.fidelity(budget))  # names a budget the backend cannot run
        if target is None:
            target = (self.problem.target if self.problem is not None
                      and self.problem.target is not None else space.cost_range())
        elif isinstance(target, (int, float)) and not isinstance(target, bool):
            target = (min(space.cost_range()[0], float(target)), float(target))  # a budget
        self.target = _check_target(target)
        self.buckets_per_layer = int(buckets_per_layer)
        self.capacity_H = int(capacity_H)
        self.candidates_per_iter = int(candidates_per_iter)
        self.range_rule = range_rule
        self.ranges = space.layer_ranges(target, range_rule)  # errors name the given target
        self._reach = space.can_reach(self.target) if range_rule == "exact" else None
        self.bucket_edges, self.bucket_cost = bucket_edges, bucket_cost
        self._edges = self._bucket_setup()
        self._integer = space.integer_costs
        L = space.n_layers
        self._root = _Member(space.default, space.cost(space.default), math.nan, -1)
        # _tables[0] is the root's single bucket; _tables[i] the buckets of layer i.
        self._tables: list[list[list[_Member]]] = [[[self._root]]] + [
            [[] for _ in range(self.buckets_per_layer)] for _ in range(L)]
        # _queues[i][c]: options of layer i not yet generated from candidate c of table i-1.
        self._queues: list[dict[Candidate, list[Hashable]]] = [{} for _ in range(L + 1)]
        # _evals[c]: (evaluation, ranker score, evaluation number) of each evaluated candidate.
        self._evals: dict[Candidate, tuple[Evaluation, float, int]] = {}
        self._cell_of: dict[Candidate, Any] = {}
        # _fates[(layer, candidate)]: what happened to it there (kept, evicted by X, ...).
        self._fates: dict[tuple[int, Candidate], str] = {}
        self._incumbents: list[int] = []  # after each history row: the answer's row (-1: none)
        self._iteration = 0
        self._sweep = 1
        self._last_layer = 0  # layer of the previous iteration (0: none yet)

    def _bucket_setup(self) -> list[np.ndarray] | None:
        """Check ``bucket_edges`` / ``bucket_cost``; for the alternatives, fix per layer the
        bucketed values (``_values``), the kept prefixes and the bucket edges (None: equal)."""
        for name, v, allowed in (("bucket_edges", self.bucket_edges, BUCKET_EDGES),
                                 ("bucket_cost", self.bucket_cost, BUCKET_COSTS)):
            if v not in allowed:
                raise ValueError(f"unknown {name} {v!r}; allowed: {allowed}")
        self._values: list[np.ndarray] | None = None
        if (self.bucket_edges, self.bucket_cost) == BUCKET_EDGES[:1] + BUCKET_COSTS[:1]:
            return None
        if not self.space.enumerable:
            raise ValueError(f"bucket_edges={self.bucket_edges!r}, bucket_cost="
                             f"{self.bucket_cost!r} need an enumerable space; "
                             f"{self.space.name!r} has {self.space.size} candidates (use "
                             "'equal' and 'candidate')")
        grid, L = self.space.cost_grid(), self.space.n_layers
        d = tuple(self.space.positions(self.space.default))
        reach = self.space.can_reach(self.target)
        assert reach is not None  # enumerable
        if self.bucket_cost == "floor":  # the prefix's cheapest completion
            self._values = [grid.min(axis=tuple(range(i, L))) if i < L else grid
                            for i in range(1, L + 1)]
            self._reach = reach  # a floor above the target is a dead end under any rule
            self.ranges = [(float(v[r].min()), float(v[r].max()))
                           for v, r in zip(self._values, reach, strict=True)]
        else:
            self._values = [grid[(slice(None),) * i + d[i:]] for i in range(1, L + 1)]
        edges = []
        for i, ((lo, hi), vals) in enumerate(zip(self.ranges, self._values, strict=True)):
            kept = vals if self._reach is None else vals[self._reach[i]]
            kept = kept[(kept >= lo - 1e-9) & (kept <= hi + 1e-9)].ravel()
            if self.bucket_edges == "quantile" and kept.size:
                e = np.quantile(kept, np.linspace(0.0, 1.0, self.buckets_per_layer + 1))
                e[0], e[-1] = lo, hi
            else:
                e = np.linspace(lo, hi, self.buckets_per_layer + 1)
            edges.append(e)
        return edges

    def bucket_value(self, layer: int, candidate: Sequence[Hashable]) -> float:
        """The value ``candidate`` (a candidate of ``layer``) is bucketed by there: its own cost,
        or with ``bucket_cost="floor"`` the lowest cost of a completion of its prefix."""
        self._check_layer(layer)
        return self._value(layer, self._arrange(candidate))

    def _value(self, layer: int, cand: Candidate) -> float:
        """:meth:`bucket_value` of a checked candidate."""
        if self._values is None:
            return self.space.cost(cand)
        return float(self._values[layer - 1][self.space.positions(cand[:layer])])

    # -- state -------------------------------------------------------------------------------
    @property
    def n_evaluations(self) -> int:
        """How many candidates were evaluated (trained); re-insertions are free."""
        return len(self._evals)

    @property
    def iteration(self) -> int:
        """Number of iterations done so far."""
        return self._iteration

    @property
    def done(self) -> bool:
        """True when no table holds a candidate with unexplored children."""
        return all(not self._pending(i) for i in range(1, self.space.n_layers + 1))

    def _members(self, layer: int) -> list[_Member]:
        return [m for bucket in self._tables[layer] for m in bucket]

    def _pending(self, layer: int) -> list[_Member]:
        """Candidates of table ``layer - 1`` with children not yet generated, best first."""
        queues = self._queues[layer]
        out = [m for m in self._members(layer - 1)
               if m.candidate not in queues or queues[m.candidate]]
        return sorted(out, key=_Member.key)

    def _queue(self, parent: _Member, layer: int) -> list[Hashable]:
        """The options of ``layer`` still to generate from ``parent`` (made on first use)."""
        queues = self._queues[layer]
        if parent.candidate not in queues:
            options = list(self.space.layers[layer - 1])
            own = parent.candidate[layer - 1]
            first = [own] if parent.candidate in self._evals else []
            rest = [o for o in options if o not in first]
            order = [rest[k] for k in self.rng.permutation(len(rest))]
            queues[parent.candidate] = first + order
        return queues[parent.candidate]

    def bucket_of(self, layer: int, cost: float) -> int | None:
        """Bucket index (0-based) of ``cost`` (a :meth:`bucket_value`) in ``layer``'s table,
        None if outside its range."""
        lo, hi = self.ranges[layer - 1]
        eps = 1e-9 * max(1.0, abs(lo), abs(hi))
        if cost < lo - eps or cost > hi + eps:
            return None
        if hi <= lo:
            return 0
        if self._edges is not None:
            inner = self._edges[layer - 1][1:-1]
            return min(self.buckets_per_layer - 1, int(np.searchsorted(inner, cost + eps,
                                                                       side="right")))
        q = (cost - lo) * self.buckets_per_layer / (hi - lo)
        return min(self.buckets_per_layer - 1, max(0, math.floor(q + 1e-9)))

    def bucket_bounds(self, layer: int) -> list[tuple[float, float]]:
        """``(lo, hi)`` of each bucket of ``layer``: half-open except the last, which ends at hi."""
        self._check_layer(layer)
        lo, hi = self.ranges[layer - 1]
        edges = (np.linspace(lo, hi, self.buckets_per_layer + 1) if self._edges is None
                 else self._edges[layer - 1])
        return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]

    def bucket_label(self, layer: int, bucket: int) -> str:
        """Label of a bucket: its integer costs ('6-7', '8', '-' for none) or its float bounds,
        followed by the space's cost unit when it has one ('2.1-3.4 ms')."""
        label = self._bucket_span(layer, bucket)
        return f"{label} {self.space.unit}" if self.space.unit and label != "-" else label

    def _bucket_span(self, layer: int, bucket: int) -> str:
        a, b = self.bucket_bounds(layer)[bucket]
        last = bucket == self.buckets_per_layer - 1
        if self._integer:
            first = math.ceil(a - 1e-9)
            end = math.floor(b + 1e-9) if last else math.ceil(b - 1e-9) - 1
            if end < first:
                return "-"
            return str(first) if end == first else f"{first}-{end}"
        return f"{_fmt_num(a)}-{_fmt_num(b)}"

    def _restore(self, cand: Candidate) -> Candidate:
        """A candidate in search order, in the problem's space's order."""
        return cand if self.space is self._given else self.space.restore(cand)

    def _arrange(self, candidate: Sequence[Hashable]) -> Candidate:
        """A candidate of the problem's space (checked), in search order."""
        return (self._given.check(candidate) if self.space is self._given
                else self.space.arrange(candidate))

    def _check_layer(self, layer: int) -> None:
        check_int("layer", layer, minimum=1, maximum=self.space.n_layers)

    # -- the algorithm -----------------------------------------------------------------------
    def _cell(self, cand: Candidate) -> Any:
        """The backend's cell object for a candidate (cached)."""
        cell = self._cell_of.get(cand)
        if cell is None:
            raw = self._restore(cand)
            raw = raw if self._to_cell is None else self._to_cell(raw)
            cell = self._cell_of[cand] = self.backend.resolve(raw)
        return cell

    def _bucket(self, layer: int, child: Candidate, cost: float) -> int | None:
        """The child's bucket at ``layer``; None when it is dropped (outside the range, or
        with exact ranges a prefix none of whose completions lands in the target)."""
        if self._values is not None:
            cost = self._value(layer, child)
        bucket = self.bucket_of(layer, cost)
        if bucket is not None and self._reach is not None:
            reach = self._reach[layer - 1][self.space.positions(child[:layer])]
            bucket = bucket if reach else None
        return bucket

    def _insert(self, layer: int, member: _Member, bucket: int) -> str:
        """Put ``member`` in a bucket of ``layer``; the event: added, evicted X, rejected-full."""
        slot = self._tables[layer][bucket]
        if len(slot) < self.capacity_H:
            event = "added"
        else:
            worst = max(slot, key=_Member.key)
            if member.key() >= worst.key():
                self._fates[(layer, member.candidate)] = "rejected-full"
                return "rejected-full"
            slot.remove(worst)
            self._fates[(layer, worst.candidate)] = (
                f"evicted by {self.space.format(member.candidate)} (iteration {self._iteration})")
            event = f"evicted {self.space.format(worst.candidate)}"
        self._fates[(layer, member.candidate)] = "kept"
        slot.append(member)
        slot.sort(key=_Member.key)
        return event

    def _next_layer(self) -> int | None:
        """The next layer, cyclically after the last one stepped, with pending parents."""
        L = self.space.n_layers
        for offset in range(L):
            layer = (self._last_layer + offset) % L + 1
            if self._pending(layer):
                return layer
        return None

    def _step(self) -> None:
        """One iteration: generate children at the next layer until ``candidates_per_iter``
        of them needed an evaluation (evaluated as one batch), then place them in order."""
        layer = self._next_layer()
        if layer is None:  # unreachable: _advance checks done first
            raise RuntimeError(f"{self.label} is done; nothing left to step")
        if layer <= self._last_layer:
            self._sweep += 1
        self._last_layer = layer
        self._iteration += 1
        plan: list[tuple[_Member, Candidate, float, int | None]] = []
        fresh: list[Candidate] = []
        for parent in self._pending(layer):
            if len(fresh) >= self.candidates_per_iter:
                break
            queue = self._queue(parent, layer)
            while queue and len(fresh) < self.candidates_per_iter:
                child = self.space.replace(parent.candidate, layer, queue.pop(0))
                cost = self.space.cost(child)
                bucket = self._bucket(layer, child, cost)
                plan.append((parent, child, cost, bucket))
                if bucket is not None and child not in self._evals and child not in fresh:
                    fresh.append(child)
        if fresh:
            results, scores = self._evaluate([self._cell(c) for c in fresh], self.budget)
            for child, res, s in zip(fresh, results, scores, strict=True):
                self._evals[child] = (res, float(s), len(self._evals))
        new = set(fresh)
        for parent, child, cost, bucket in plan:
            self._place(parent, layer, child, cost, bucket, child in new)
            new.discard(child)

    def _place(self, parent: _Member, layer: int, child: Candidate, cost: float,
               bucket: int | None, trained: bool) -> None:
        """Log one generated child and put it in its bucket (or drop it)."""
        cell = self._cell(child)
        row: dict[str, Any] = {
            "iteration": self._iteration, "candidate": self.backend.cell_id(cell),
            "cell": self.backend.format(cell), "budget": self.budget,
            "fidelity": self._ran, "cost": 0.0,
            "score": math.nan, "ranker_score": math.nan, "final": math.nan,
            "sweep": self._sweep, "layer": layer, "parent": self.space.format(parent.candidate),
            "child": self.space.format(child), "options": self._restore(child),
            "model_cost": cost,
            "bucket": math.nan, "trained": trained}
        if bucket is None:  # no evaluation: a placeholder keeps rows and results parallel
            result = Evaluation(cell=cell, cell_id=row["candidate"], budget=self.budget,
                                fidelity=self._ran, score=math.nan, cost=0.0, full_cost=0.0,
                                info={"dropped": True})
            row["decision"] = "dropped"
            self._fates[(layer, child)] = "dropped"
        else:
            result, rscore, seq = self._evals[child]
            key = -math.inf if math.isnan(rscore) else rscore
            row.update(score=float(result.score), ranker_score=rscore, final=float(result.final),
                       cost=float(result.cost) if trained else 0.0,
                       bucket=self.bucket_label(layer, bucket))
            row["decision"] = self._insert(layer, _Member(child, cost, key, seq, len(self._rows)),
                                           bucket)
        self._cost += row["cost"]
        row["eval"] = len(self._rows)
        row["cum_cost"] = self._cost
        self._rows.append(row)
        self._cells.append(cell)
        self._results.append(result)
        answer = self._answer()
        self._incumbents.append(-1 if answer is None else answer.row)

    def run(self, *, max_cost: float | None = None, max_evaluations: int | None = None,
            max_steps: int | None = None, max_sweeps: int | None = None,
            progress: bool | None = None) -> pd.DataFrame:
        """``Search.run`` (until done, ``max_cost``, ``max_evaluations`` trained candidates or
        ``max_steps`` iterations) that can also stop at the end of sweep ``max_sweeps``."""
        check_int("max_sweeps", max_sweeps, minimum=1, allow_none=True)
        stop = None if max_sweeps is None else (lambda: self._starts_sweep_after(max_sweeps))
        return self._run(max_cost=max_cost, max_evaluations=max_evaluations,
                         max_steps=max_steps, progress=progress, stop=stop)

    def _starts_sweep_after(self, max_sweeps: int) -> bool:
        """Whether the next step would begin a sweep numbered above ``max_sweeps``."""
        nxt = self._next_layer()
        return nxt is None or self._sweep + (nxt <= self._last_layer) > max_sweeps

    # -- results ---------------------------------------------------------------------------
    def _answer(self) -> _Member | None:
        """The best member of layer L's table (None while it is empty)."""
        members = self._members(self.space.n_layers)
        return min(members, key=_Member.key) if members else None

    def _answer_row(self) -> int:
        answer = self._answer()
        if answer is None:
            raise RuntimeError(f"{self.label}: layer L's table is empty "
                               f"({'it ended at dead ends' if self.done else 'step() further'})")
        return answer.row

    def best(self) -> tuple[Any, float]:
        """(cell, observed score) of the answer: the best candidate of layer L's table
        (RuntimeError while that table is empty)."""
        i = self._answer_row()
        return self._cells[i], float(self._rows[i]["score"])

    def found(self) -> Found:
        """The answer as a :class:`Found`: options, label, cost and observed score."""
        i = self._answer_row()
        r = self._rows[i]
        return Found(r["options"], r["child"], r["model_cost"], r["score"])

    def incumbent_final(self) -> float:
        """The answer's final accuracy (for regret; never used to decide)."""
        return float(self._rows[self._answer_row()]["final"])

    def incumbent_trace(self) -> tuple[np.ndarray, np.ndarray]:
        """After each history row: evaluations made so far and the row of the answer then
        (the best of layer L's table; -1 while it is empty)."""
        trained = np.fromiter((r["trained"] for r in self._rows), dtype=bool,
                              count=len(self._rows))
        return np.cumsum(trained), np.array(self._incumbents, dtype=int)

    def table(self) -> pd.DataFrame:
        """The current bucket tables of every layer (see :meth:`tables`)."""
        return self.tables()

    def bucket_table(self, layer: int, long: bool = False) -> pd.DataFrame:
        """Layer ``layer``'s buckets: one row per bucket with its members as 'CAD 0.40 [x]'
        (``[x]``: all children generated), or one row per member with ``long=True``."""
        self._check_layer(layer)
        L = self.space.n_layers
        queues = self._queues[layer + 1] if layer < L else {}
        rows: list[dict[str, Any]] = []
        for b, ((lo, hi), slot) in enumerate(zip(self.bucket_bounds(layer), self._tables[layer],
                                                 strict=True)):
            label = self.bucket_label(layer, b)
            marks = [layer < L and m.candidate in queues and not queues[m.candidate]
                     for m in slot]
            if long:
                rows.extend({"layer": layer, "bucket": b, "range": label, "rank": r,
                             "candidate": self._restore(m.candidate),
                             "name": self.space.format(m.candidate),
                             "cost": m.cost, "score": m.score, "done": x}
                            for r, (m, x) in enumerate(zip(slot, marks, strict=True)))
                continue
            members = ", ".join(
                f"{self.space.format(m.candidate)} {_fmt_score(m.score)}" + (" [x]" if x else "")
                for m, x in zip(slot, marks, strict=True))
            rows.append({"layer": layer, "bucket": b, "range": label, "lo": lo, "hi": hi,
                         "n": len(slot), "members": members,
                         "best": self.space.format(slot[0].candidate) if slot else "",
                         "best_score": slot[0].score if slot else math.nan})
        columns = (["layer", "bucket", "range", "rank", "candidate", "name", "cost", "score",
                    "done"] if long else
                   ["layer", "bucket", "range", "lo", "hi", "n", "members", "best",
                    "best_score"])
        return pd.DataFrame(rows, columns=columns)

    def tables(self, long: bool = False) -> pd.DataFrame:
        """:meth:`bucket_table` of every layer, stacked."""
        return pd.concat([self.bucket_table(i, long) for i in range(1, self.space.n_layers + 1)],
                         ignore_index=True)

    def range_table(self) -> pd.DataFrame:
        """Each search layer's cost range and bucket labels, and which layer of the problem's
        space it is (``space_layer``: the same number unless ``layer_order`` reorders)."""
        return pd.DataFrame([
            {"layer": i, "space_layer": self.search_order[i - 1], "lo": lo, "hi": hi,
             "buckets": " ".join(f"[{self.bucket_label(i, b)}]"
                                 for b in range(self.buckets_per_layer))}
            for i, (lo, hi) in enumerate(self.ranges, start=1)])

    def explain(self, candidate: Sequence[Hashable]) -> pd.DataFrame:
        """Why ``candidate`` was (not) reached: for each layer i, its prefix (own options on
        layers 1..i, defaults after), what happened to it there and whether the next layer's
        option was generated from it."""
        cand = self._arrange(candidate)
        rows = []
        for i in range(1, self.space.n_layers + 1):
            prefix = cand[:i] + self.space.default[i:]
            fate = self._fates.get((i, prefix), "not generated")
            expanded = math.nan
            if i < self.space.n_layers:
                queue = self._queues[i + 1].get(prefix)
                expanded = queue is not None and cand[i] not in queue
            rows.append({"layer": i, "space_layer": self.search_order[i - 1],
                         "prefix": self.space.format(prefix),
                         "prefix_candidate": self._restore(prefix),
                         "cost": self.space.cost(prefix), "fate": fate,
                         "next_generated": expanded})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        state = "done" if self.done else f"iteration {self._iteration}"
        return (f"LayerNAS({self.space.name!r}, target={self.target}, "
                f"B={self.buckets_per_layer}, H={self.capacity_H}, "
                f"k={self.candidates_per_iter}, seed={self.seed!r}, "
                + (f"order={self.search_order}, " if self.space is not self._given else "")
                + f"{state}, "
                f"{self.n_evaluations} evaluated, cost={self._cost:.0f} {self.cost_unit})")


def _layerwise_setup(backend: Any, evaluator: Evaluator | None,
                     problem: LayerwiseProblem | None,
                     cost: str | tuple[str, str] | Callable[[Any], float],
                     eval_seconds: Callable[[Candidate], float] | None, truth: Evaluator | None
                     ) -> tuple[Backend, LayerwiseSpace, Callable[[tuple[Any, ...]], Any] | None,
                                LayerwiseProblem | None]:
    """(backend that evaluates, layer-wise space, candidate -> cell or None, the problem) for
    the ways :class:`LayerNAS` can be given what to search."""
    if isinstance(backend, LayerwiseSpace):
        if evaluator is None or not callable(evaluator):
            raise ValueError(f"a LayerwiseSpace needs evaluator(candidate) -> score, got "
                             f"{evaluator!r}")
        for name, fn in (("eval_seconds", eval_seconds), ("truth", truth)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name} must be callable or None, got {fn!r}")
        backend = LayerwiseProblem(backend, evaluator, eval_seconds=eval_seconds, truth=truth)
    elif evaluator is not None or eval_seconds is not None or truth is not None:
        raise ValueError("evaluator, eval_seconds and truth go with a LayerwiseSpace; a backend "
                         "or a LayerwiseProblem evaluates its candidates itself")
    if problem is not None:
        if not isinstance(problem, LayerwiseProblem):
            raise ValueError(f"problem must be a LayerwiseProblem, got {problem!r}")
        backend = problem
    if isinstance(backend, LayerwiseProblem):
        return ProblemBackend(backend), backend.space, None, backend
    if not isinstance(backend, Backend):
        raise ValueError(f"backend must be a workbench.search Backend, a LayerwiseProblem or a "
                         f"LayerwiseSpace, got {backend!r}")
    space_name = getattr(getattr(backend, "space", None), "name", None)
    if space_name == "nb201":
        from workbench.search._layernas_spaces import nb201_space
        from workbench.spaces import NB201Cell

        bench = getattr(backend, "benchmark", None)
        bench = bench if getattr(bench, "name", None) == "nb201" else None
        dataset = getattr(backend, "dataset", "cifar10")
        return backend, nb201_space(bench, dataset, cost), NB201Cell, None
    raise ValueError(f"LayerNAS has no layer-wise view of the {space_name!r} space of "
                     f"{backend!r}: pass problem=LayerwiseProblem(...) (NAS-Bench-201 "
                     "backends build the topology problem themselves)")


class ProblemBackend(Backend):
    """A :class:`Backend` over a :class:`LayerwiseProblem`: cells are candidates (option
    tuples, ids their labels), the score is the problem's evaluator, the cost its
    ``eval_seconds`` (0 without), ``final`` its ``truth`` (NaN without). Budgets are nominal
    (the evaluator ignores them; 1 by default), so any search can run on a layer-wise problem."""

    def __init__(self, problem: LayerwiseProblem) -> None:
        if not isinstance(problem, LayerwiseProblem):
            raise ValueError(f"problem must be a LayerwiseProblem, got {problem!r}")
        self.problem = problem
        self.space = problem.space  # type: ignore[assignment]  # a LayerwiseSpace
        self._labels: dict[str, Candidate] | None = None
        self._best_final: float | None = None

    def __repr__(self) -> str:
        return f"ProblemBackend({self.problem.space.name!r})"

    @property
    def max_budget(self) -> float:
        return 1.0

    def fidelity(self, budget: float) -> float:
        return float(check_budget("budget", budget))

    def resolve(self, cell: Any) -> Candidate:
        """The candidate tuple for a candidate or its label (ValueError if not in the space)."""
        space = self.problem.space
        try:
            return space.check(cell)
        except ValueError:
            if not isinstance(cell, str) or not space.enumerable:
                raise
        if self._labels is None:
            self._labels = {space.format(c): c for c in space.candidates()}
        if cell not in self._labels:
            raise ValueError(f"{cell!r} is not a candidate label of {space.name!r}")
        return self._labels[cell]

    def contains(self, cell: Any) -> bool:
        try:
            self.resolve(cell)
        except ValueError:
            return False
        return True

    def cell_id(self, cell: Any) -> str:
        return self.problem.space.format(self.resolve(cell))

    def format(self, cell: Any) -> str:
        return self.cell_id(cell)

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct uniformly random candidates whose labels are not in ``exclude``."""
        space, gen = self.problem.space, as_rng(rng)
        taken = set(map(str, exclude))
        check_int("n (candidates left)", n, minimum=0, maximum=space.size - len(taken))
        if space.enumerable and 2 * (len(taken) + n) > space.size:
            rest = [c for c in space.candidates() if space.format(c) not in taken]
            if n > len(rest):
                raise ValueError(f"only {len(rest)} candidates are left, asked for {n}")
            return [rest[i] for i in gen.choice(len(rest), size=int(n), replace=False)]
        out: list[Candidate] = []
        while len(out) < n:
            cand = tuple(layer[int(gen.integers(len(layer)))] for layer in space.layers)
            label = space.format(cand)
            if label not in taken:
                taken.add(label)
                out.append(cand)
        return out

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """Score a candidate with the evaluator; continuing ``previous`` is free."""
        cand = self.resolve(cell)
        fid = self.fidelity(budget)
        p = self.problem
        score = float(p.evaluator(cand))
        if math.isnan(score):
            raise ValueError(f"evaluator returned NaN for {p.space.format(cand)}")
        seconds = 0.0 if p.eval_seconds is None else float(p.eval_seconds(cand))
        final = math.nan if p.truth is None else float(p.truth(cand))
        return Evaluation(cell=cand, cell_id=p.space.format(cand), budget=float(budget),
                          fidelity=fid, score=score, cost=0.0 if previous else seconds,
                          full_cost=seconds, final=final,
                          resumed_from=None if previous is None else previous.fidelity)

    def best_final(self) -> float:
        """The best ``truth`` over the space when it can be enumerated (else NaN)."""
        if self._best_final is None:
            p = self.problem
            self._best_final = (max(float(p.truth(c)) for c in p.space.candidates())
                                if p.truth is not None and p.space.enumerable else math.nan)
        return self._best_final


# --------------------------------------------------------------------------------------------
# Problems, brute force and the independence check
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerwiseProblem(Generic[Opt]):
    """A space with its evaluator, and what a LayerNAS run on it needs or may report.

    ``settings``: suggested LayerNAS arguments (applied by :meth:`search`); ``eval_seconds``:
    seconds charged per evaluation; ``truth``: a reference score for analysis only (e.g. final
    accuracy).
    """

    space: LayerwiseSpace[Opt]
    evaluator: Evaluator[Opt]
    target: tuple[float, float] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    eval_seconds: Evaluator[Opt] | None = None
    truth: Evaluator[Opt] | None = None
    description: str = ""

    def search(self, target: tuple[float, float] | None = None, **overrides: Any) -> LayerNAS:
        """A fresh :class:`LayerNAS` on this problem with ``settings`` updated by
        ``overrides`` (target: the given one, else the problem's, else the whole cost range)."""
        return LayerNAS(self, target=target, **{**self.settings, **overrides})

    def brute_force(self, target: tuple[float, float] | None = None) -> pd.DataFrame:
        """:func:`brute_force` over this problem's space (default: its target)."""
        target = self.target if target is None else target
        if target is None:
            raise ValueError(f"problem {self.space.name!r} has no default target: pass target=")
        return brute_force(self.space, self.evaluator, target)


def brute_force(space: LayerwiseSpace[Opt], evaluator: Evaluator[Opt],
                target: tuple[float, float]) -> pd.DataFrame:
    """Every candidate whose cost lies within ``target``, evaluated, best first (higher score,
    then lower cost): the exact constrained optimum LayerNAS is measured against."""
    lo, hi = _check_target(target)
    grid = space.cost_grid()
    flat = grid.ravel()
    pos = np.flatnonzero((flat >= lo) & (flat <= hi))
    if not len(pos):
        raise ValueError(f"target {target!r} is unreachable: no candidate of {space.name!r} "
                         "costs within it")
    shape = grid.shape
    cands = [tuple(space.layers[i][k] for i, k in enumerate(np.unravel_index(p, shape)))
             for p in pos]
    out = pd.DataFrame({"candidate": cands, "name": [space.format(c) for c in cands],
                        "cost": flat[pos], "score": [float(evaluator(c)) for c in cands],
                        "position": pos})
    out = out.sort_values(["score", "cost", "position"], ascending=[False, True, True])
    return out.drop(columns="position").reset_index(drop=True)


def independence_violations(space: LayerwiseSpace, evaluator: Evaluator,
                            targets: tuple[float, float] | Sequence[tuple[float, float]],
                            seeds: Sequence[int] = (0, 1, 2), *, truth: Evaluator | None = None,
                            **layernas_kwargs: Any) -> pd.DataFrame:
    """How often LayerNAS's independence assumption costs it the constrained optimum.

    For every target and seed: run LayerNAS to completion, find the optimum by brute force and
    follow the optimum's prefixes through the tables (:meth:`LayerNAS.explain`): ``broken_at``
    is the first layer whose prefix was not kept long enough to be expanded (outranked in its
    bucket while later layers sat at their defaults: the assumption failing) and ``reason``
    its fate there. ``truth`` (optional, e.g. final accuracy) adds the found cell's truth and
    its top-percent rank by truth among the in-target cells.
    """
    if (isinstance(targets, Sequence) and len(targets) == 2
            and all(isinstance(t, (int, float, np.number)) for t in targets)):
        targets = [cast(tuple[float, float], targets)]  # one (lo, hi) pair
    if not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    rows = []
    for target in targets:
        lo, hi = _check_target(target)
        brute = brute_force(space, evaluator, (lo, hi))
        opt = brute.iloc[0]
        truths = (None if truth is None
                  else np.array([float(truth(c)) for c in brute["candidate"]]))
        for seed in seeds:
            nas = LayerNAS(space, evaluator, (lo, hi), seed=seed, **layernas_kwargs)
            nas.run()
            try:
                found = nas.found()
            except RuntimeError:  # every kept candidate of layer L-1 was a dead end
                found = Found((), "", math.nan, math.nan)
            chain = nas.explain(opt["candidate"])
            broken, reason = pd.NA, ""
            for r in chain.itertuples():
                ok = r.fate == "kept" or r.fate.startswith("evicted")
                if ok and r.layer < space.n_layers and not r.next_generated:
                    broken, reason = r.layer, f"{r.prefix}: {r.fate}, not expanded"
                    break
                if not ok:
                    broken, reason = r.layer, f"{r.prefix}: {r.fate}"
                    break
            row = {"target_lo": lo, "target_hi": hi, "seed": seed, "n_in_target": len(brute),
                   "n_evaluated": nas.n_evaluations, "optimum": opt["name"],
                   "optimum_cost": opt["cost"], "optimum_score": opt["score"],
                   "found": found.name, "found_cost": found.cost, "found_score": found.score,
                   "regret": opt["score"] - found.score,
                   "found_rank": (int((brute["score"] > found.score).sum()) + 1
                                  if found.name else pd.NA),
                   "violated": found.candidate != opt["candidate"], "broken_at": broken,
                   "reason": reason}
            if truth is not None and truths is not None:  # both or neither
                t = float(truth(found.candidate)) if found.name else math.nan
                row["found_truth"] = t
                row["truth_top_pct"] = (100.0 * float((truths > t).sum() + 1) / len(truths)
                                        if found.name else math.nan)
                row["best_truth"] = float(truths.max())
            rows.append(row)
    return pd.DataFrame(rows)
