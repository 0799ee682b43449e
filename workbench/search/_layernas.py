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
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

Candidate = tuple[Hashable, ...]
Evaluator = Callable[[Candidate], float]

RANGE_RULES = ("paper", "exact")
_HISTORY_COLUMNS = ["iteration", "sweep", "layer", "parent", "child", "candidate", "cost",
                    "bucket", "score", "trained", "seconds", "event"]


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _fmt_num(x: float) -> str:
    """Compact number: integers without decimals, others with 4 significant digits."""
    return str(round(x)) if float(x).is_integer() else f"{x:.4g}"


def _fmt_score(x: float) -> str:
    """Score as in the paper's figures (0.40, 93.21); tiny values in 3 significant digits."""
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.3g}"


# --------------------------------------------------------------------------------------------
# Space
# --------------------------------------------------------------------------------------------


class LayerwiseSpace:
    """L search layers, each a list of options, and a cost over whole candidates (tuples).

    ``default`` (one option value per layer) is where the search starts; by default each
    layer's most expensive option (found by coordinate ascent on ``cost_fn``, exact for costs
    that are sums over layers or monotone in each layer). Spaces with at most
    ``enumerate_limit`` candidates get exact layer ranges by enumeration; larger ones use the
    per-layer cost changes around the default, exact only for additive costs.
    """

    def __init__(self, layers: Sequence[Sequence[Hashable]], cost_fn: Callable[[Candidate], float],
                 default: Sequence[Hashable] | None = None, name: str = "layerwise", *,
                 format_fn: Callable[[Candidate], str] | None = None,
                 enumerate_limit: int = 200_000) -> None:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(f"layers must be a non-empty list of option lists, got {layers!r}")
        opts: list[tuple[Hashable, ...]] = []
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
        if not (_is_int(enumerate_limit) and enumerate_limit >= 0):
            raise ValueError(f"enumerate_limit must be an int >= 0, got {enumerate_limit!r}")
        self.layers: tuple[tuple[Hashable, ...], ...] = tuple(opts)
        self.name = str(name)
        self._cost_fn = cost_fn
        self._format_fn = format_fn
        self._index = [{o: k for k, o in enumerate(layer)} for layer in self.layers]
        self._costs: dict[Candidate, float] = {}
        self._grid: np.ndarray | None = None
        self.enumerable = self.size <= enumerate_limit
        self.default: Candidate = (self._most_expensive() if default is None
                                   else self.check(default, "default"))

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

    def check(self, candidate: Sequence[Hashable], what: str = "candidate") -> Candidate:
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

    def positions(self, candidate: Candidate) -> tuple[int, ...]:
        """The option index of each layer's option in ``candidate``."""
        return tuple(self._index[i][o] for i, o in enumerate(candidate))

    def replace(self, candidate: Candidate, layer: int, option: Hashable) -> Candidate:
        """``candidate`` with layer ``layer`` (1-based) set to ``option``."""
        return (*candidate[:layer - 1], option, *candidate[layer:])

    def cost(self, candidate: Sequence[Hashable]) -> float:
        """Cost of ``candidate`` from ``cost_fn`` (cached per space)."""
        try:
            return self._costs[candidate]  # type: ignore[index]
        except (KeyError, TypeError):
            cand = self.check(candidate)
        if cand not in self._costs:
            value = float(self._cost_fn(cand))
            if not math.isfinite(value):
                raise ValueError(f"cost_fn returned {value!r} for {cand!r}")
            self._costs[cand] = value
        return self._costs[cand]

    def format(self, candidate: Candidate) -> str:
        """Short label: ``format_fn`` if given, else the options joined ('CAD', '64-32-8')."""
        if self._format_fn is not None:
            return str(self._format_fn(candidate))
        if all(isinstance(o, str) and len(o) == 1 for o in candidate):
            return "".join(candidate)  # type: ignore[arg-type]
        return "-".join(str(o) for o in candidate)

    def candidates(self) -> Iterator[Candidate]:
        """Every candidate, in lexicographic order of option positions."""
        return itertools.product(*self.layers)

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

    def _most_expensive(self) -> Candidate:
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

    def can_reach(self, target: tuple[float, float]) -> list[np.ndarray] | None:
        """For layers 1..L, a boolean array over option positions of layers 1..i: whether that
        prefix has a completion whose cost lies within ``target`` (None if not enumerable)."""
        if not self.enumerable:
            return None
        lo, hi = _check_target(target)
        grid = self.cost_grid()
        inside = (grid >= lo) & (grid <= hi)
        L = self.n_layers
        return [inside.any(axis=tuple(range(i, L))) if i < L else inside
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


def _check_target(target: object) -> tuple[float, float]:
    """``target`` as ``(lo, hi)`` floats with lo <= hi, else ``ValueError`` naming it."""
    try:
        lo, hi = target  # type: ignore[misc]
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
    """A candidate with its label, cost and score (what :meth:`LayerNAS.best` returns)."""

    candidate: Candidate
    name: str
    cost: float
    score: float


@dataclass
class _Member:
    candidate: Candidate
    cost: float
    score: float
    seq: int  # evaluation number: the last tie-break (-1 for the unevaluated root)

    def key(self) -> tuple[float, float, int]:
        return (-self.score, self.cost, self.seq)


class LayerNAS:
    """LayerNAS on a :class:`LayerwiseSpace`: per-layer bucket tables, stepped one iteration at
    a time (conventions in the module docstring).

    ``evaluator(candidate) -> score`` (higher is better) is called once per candidate; the
    optional ``eval_seconds(candidate) -> seconds`` charges each evaluation (``total_seconds``).
    """

    def __init__(self, space: LayerwiseSpace, evaluator: Evaluator, target: tuple[float, float],
                 buckets_per_layer: int = 4, capacity_H: int = 2, candidates_per_iter: int = 2,
                 seed: int = 0, *, range_rule: str = "paper",
                 eval_seconds: Callable[[Candidate], float] | None = None) -> None:
        if not isinstance(space, LayerwiseSpace):
            raise ValueError(f"space must be a LayerwiseSpace, got {type(space).__name__}")
        if not callable(evaluator):
            raise ValueError(f"evaluator must be callable, got {evaluator!r}")
        if eval_seconds is not None and not callable(eval_seconds):
            raise ValueError(f"eval_seconds must be callable or None, got {eval_seconds!r}")
        for name, v in (("buckets_per_layer", buckets_per_layer), ("capacity_H", capacity_H),
                        ("candidates_per_iter", candidates_per_iter)):
            if not (_is_int(v) and v >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not (_is_int(seed) and seed >= 0):
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.space = space
        self.evaluator = evaluator
        self.eval_seconds = eval_seconds
        self.target = _check_target(target)
        self.buckets_per_layer = int(buckets_per_layer)
        self.capacity_H = int(capacity_H)
        self.candidates_per_iter = int(candidates_per_iter)
        self.seed = int(seed)
        self.range_rule = range_rule
        self.ranges = space.layer_ranges(target, range_rule)  # errors name the given target
        self._reach = space.can_reach(self.target) if range_rule == "exact" else None
        self._integer = space.integer_costs
        self._rng = np.random.default_rng(self.seed)
        L = space.n_layers
        self._root = _Member(space.default, space.cost(space.default), math.nan, -1)
        # _tables[0] is the root's single bucket; _tables[i] the buckets of layer i.
        self._tables: list[list[list[_Member]]] = [[[self._root]]] + [
            [[] for _ in range(self.buckets_per_layer)] for _ in range(L)]
        # _queues[i][c]: options of layer i not yet generated from candidate c of table i-1.
        self._queues: list[dict[Candidate, list[Hashable]]] = [{} for _ in range(L + 1)]
        self._scores: dict[Candidate, tuple[float, int]] = {}
        self._rows: list[dict[str, Any]] = []
        # _fates[(layer, candidate)]: what happened to it there (kept, evicted by X, ...).
        self._fates: dict[tuple[int, Candidate], str] = {}
        self._iteration = 0
        self._sweep = 1
        self._last_layer = 0  # layer of the previous iteration (0: none yet)
        self.total_seconds = 0.0

    # -- state -------------------------------------------------------------------------------
    @property
    def n_evaluated(self) -> int:
        """How many candidates were evaluated (trained); re-insertions are free."""
        return len(self._scores)

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
            first = [own] if parent.candidate in self._scores else []
            rest = [o for o in options if o not in first]
            order = [rest[k] for k in self._rng.permutation(len(rest))]
            queues[parent.candidate] = first + order
        return queues[parent.candidate]

    def bucket_of(self, layer: int, cost: float) -> int | None:
        """Bucket index (0-based) of ``cost`` in ``layer``'s table, None if outside its range."""
        lo, hi = self.ranges[layer - 1]
        eps = 1e-9 * max(1.0, abs(lo), abs(hi))
        if cost < lo - eps or cost > hi + eps:
            return None
        if hi <= lo:
            return 0
        q = (cost - lo) * self.buckets_per_layer / (hi - lo)
        return min(self.buckets_per_layer - 1, max(0, math.floor(q + 1e-9)))

    def bucket_bounds(self, layer: int) -> list[tuple[float, float]]:
        """``(lo, hi)`` of each bucket of ``layer``: half-open except the last, which ends at hi."""
        self._check_layer(layer)
        lo, hi = self.ranges[layer - 1]
        edges = np.linspace(lo, hi, self.buckets_per_layer + 1)
        return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]

    def bucket_label(self, layer: int, bucket: int) -> str:
        """Label of a bucket: its integer costs ('6-7', '8', '-' for none) or its float bounds."""
        a, b = self.bucket_bounds(layer)[bucket]
        last = bucket == self.buckets_per_layer - 1
        if self._integer:
            first = math.ceil(a - 1e-9)
            end = math.floor(b + 1e-9) if last else math.ceil(b - 1e-9) - 1
            if end < first:
                return "-"
            return str(first) if end == first else f"{first}-{end}"
        return f"{_fmt_num(a)}-{_fmt_num(b)}"

    def _check_layer(self, layer: int) -> None:
        if not (_is_int(layer) and 1 <= layer <= self.space.n_layers):
            raise ValueError(f"layer must be an int in 1..{self.space.n_layers}, got {layer!r}")

    # -- the algorithm -----------------------------------------------------------------------
    def _evaluate(self, cand: Candidate) -> tuple[float, int, float]:
        """(score, evaluation number, seconds charged) of ``cand``; evaluates only once."""
        if cand in self._scores:
            score, seq = self._scores[cand]
            return score, seq, 0.0
        score = float(self.evaluator(cand))
        if math.isnan(score):
            raise ValueError(f"evaluator returned NaN for {self.space.format(cand)}")
        seconds = 0.0 if self.eval_seconds is None else float(self.eval_seconds(cand))
        self.total_seconds += seconds
        self._scores[cand] = (score, len(self._scores))
        return score, len(self._scores) - 1, seconds

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

    def step(self) -> pd.DataFrame:
        """One iteration: train up to ``candidates_per_iter`` children at the next layer.

        Returns the history rows of this iteration (empty when the search is done).
        """
        layer = self._next_layer()
        if layer is None:
            return pd.DataFrame(columns=_HISTORY_COLUMNS)
        if layer <= self._last_layer:
            self._sweep += 1
        self._last_layer = layer
        self._iteration += 1
        start = len(self._rows)
        trained = 0
        for parent in self._pending(layer):
            if trained >= self.candidates_per_iter:
                break
            queue = self._queue(parent, layer)
            while queue and trained < self.candidates_per_iter:
                trained += self._generate(parent, layer, queue.pop(0))
        return pd.DataFrame(self._rows[start:], columns=_HISTORY_COLUMNS)

    def _generate(self, parent: _Member, layer: int, option: Hashable) -> int:
        """Generate one child of ``parent``; returns 1 if it needed an evaluation."""
        child = self.space.replace(parent.candidate, layer, option)
        cost = self.space.cost(child)
        bucket = self.bucket_of(layer, cost)
        if bucket is not None and self._reach is not None:
            reach = self._reach[layer - 1][self.space.positions(child[:layer])]
            bucket = bucket if reach else None
        row: dict[str, Any] = {
            "iteration": self._iteration, "sweep": self._sweep, "layer": layer,
            "parent": self.space.format(parent.candidate), "child": self.space.format(child),
            "candidate": child, "cost": cost, "bucket": math.nan, "score": math.nan,
            "trained": False, "seconds": 0.0}
        if bucket is None:
            row["event"] = "dropped"
            self._fates[(layer, child)] = "dropped"
            self._rows.append(row)
            return 0
        new = child not in self._scores
        score, seq, seconds = self._evaluate(child)
        event = self._insert(layer, _Member(child, cost, score, seq), bucket)
        row.update(bucket=self.bucket_label(layer, bucket), score=score, trained=new,
                   seconds=seconds, event=event)
        self._rows.append(row)
        return int(new)

    def run(self, max_evaluations: int | None = None, max_sweeps: int | None = None
            ) -> LayerNAS:
        """Step until done (or until ``max_evaluations`` / the end of sweep ``max_sweeps``)."""
        for name, v in (("max_evaluations", max_evaluations), ("max_sweeps", max_sweeps)):
            if v is not None and not (_is_int(v) and v >= 1):
                raise ValueError(f"{name} must be None or an int >= 1, got {v!r}")
        while not self.done:
            if max_evaluations is not None and self.n_evaluated >= max_evaluations:
                break
            if max_sweeps is not None and self._starts_sweep_after(max_sweeps):
                break
            self.step()
        return self

    def _starts_sweep_after(self, max_sweeps: int) -> bool:
        """Whether the next step would begin a sweep numbered above ``max_sweeps``."""
        nxt = self._next_layer()
        return nxt is None or self._sweep + (nxt <= self._last_layer) > max_sweeps

    # -- results ---------------------------------------------------------------------------
    def best(self) -> Found:
        """The best candidate of layer L's table (the answer); ``LookupError`` if it is empty."""
        members = self._members(self.space.n_layers)
        if not members:
            raise LookupError("layer L's table is empty: step() or run() the search first")
        m = min(members, key=_Member.key)
        return Found(m.candidate, self.space.format(m.candidate), m.cost, m.score)

    @property
    def history(self) -> pd.DataFrame:
        """Every generated child: iteration, sweep, layer, parent, child, cost, bucket, score,
        whether it was trained, seconds charged and the event (added / evicted X / dropped /
        rejected-full)."""
        return pd.DataFrame(self._rows, columns=_HISTORY_COLUMNS)

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
                             "candidate": m.candidate, "name": self.space.format(m.candidate),
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
        """Each layer's cost range and bucket labels."""
        return pd.DataFrame([
            {"layer": i, "lo": lo, "hi": hi,
             "buckets": " ".join(f"[{self.bucket_label(i, b)}]"
                                 for b in range(self.buckets_per_layer))}
            for i, (lo, hi) in enumerate(self.ranges, start=1)])

    def explain(self, candidate: Sequence[Hashable]) -> pd.DataFrame:
        """Why ``candidate`` was (not) reached: for each layer i, its prefix (own options on
        layers 1..i, defaults after), what happened to it there and whether the next layer's
        option was generated from it."""
        cand = self.space.check(candidate)
        rows = []
        for i in range(1, self.space.n_layers + 1):
            prefix = cand[:i] + self.space.default[i:]
            fate = self._fates.get((i, prefix), "not generated")
            expanded = math.nan
            if i < self.space.n_layers:
                queue = self._queues[i + 1].get(prefix)
                expanded = queue is not None and cand[i] not in queue
            rows.append({"layer": i, "prefix": self.space.format(prefix), "prefix_candidate":
                         prefix, "cost": self.space.cost(prefix), "fate": fate,
                         "next_generated": expanded})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        state = "done" if self.done else f"iteration {self._iteration}"
        return (f"LayerNAS({self.space.name!r}, target={self.target}, "
                f"B={self.buckets_per_layer}, H={self.capacity_H}, "
                f"k={self.candidates_per_iter}, {state}, {self.n_evaluated} evaluated)")


# --------------------------------------------------------------------------------------------
# Problems, brute force and the independence check
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerwiseProblem:
    """A space with its evaluator, and what a LayerNAS run on it needs or may report.

    ``settings``: suggested LayerNAS arguments; ``eval_seconds``: seconds charged per
    evaluation; ``truth``: a reference score for analysis only (e.g. final accuracy).
    """

    space: LayerwiseSpace
    evaluator: Evaluator
    target: tuple[float, float] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    eval_seconds: Callable[[Candidate], float] | None = None
    truth: Evaluator | None = None
    description: str = ""

    def search(self, target: tuple[float, float] | None = None, **overrides: Any) -> LayerNAS:
        """A fresh :class:`LayerNAS` on this problem (``settings`` updated by ``overrides``)."""
        target = self.target if target is None else target
        if target is None:
            raise ValueError(f"problem {self.space.name!r} has no default target: pass target=")
        kwargs = {**self.settings, **overrides}
        kwargs.setdefault("eval_seconds", self.eval_seconds)
        return LayerNAS(self.space, self.evaluator, target, **kwargs)

    def brute_force(self, target: tuple[float, float] | None = None) -> pd.DataFrame:
        """:func:`brute_force` over this problem's space (default: its target)."""
        target = self.target if target is None else target
        if target is None:
            raise ValueError(f"problem {self.space.name!r} has no default target: pass target=")
        return brute_force(self.space, self.evaluator, target)


def brute_force(space: LayerwiseSpace, evaluator: Evaluator, target: tuple[float, float]
                ) -> pd.DataFrame:
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
        targets = [targets]  # type: ignore[list-item]
    if not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    rows = []
    for target in targets:  # type: ignore[union-attr]
        lo, hi = _check_target(target)
        brute = brute_force(space, evaluator, (lo, hi))
        opt = brute.iloc[0]
        truths = (None if truth is None
                  else np.array([float(truth(c)) for c in brute["candidate"]]))
        for seed in seeds:
            nas = LayerNAS(space, evaluator, (lo, hi), seed=seed, **layernas_kwargs).run()
            try:
                found = nas.best()
            except LookupError:  # every kept candidate of layer L-1 was a dead end
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
                   "n_evaluated": nas.n_evaluated, "optimum": opt["name"],
                   "optimum_cost": opt["cost"], "optimum_score": opt["score"],
                   "found": found.name, "found_cost": found.cost, "found_score": found.score,
                   "regret": opt["score"] - found.score,
                   "found_rank": (int((brute["score"] > found.score).sum()) + 1
                                  if found.name else pd.NA),
                   "violated": found.candidate != opt["candidate"], "broken_at": broken,
                   "reason": reason}
            if truths is not None:
                t = float(truth(found.candidate)) if found.name else math.nan  # type: ignore[misc]
                row["found_truth"] = t
                row["truth_top_pct"] = (100.0 * float((truths > t).sum() + 1) / len(truths)
                                        if found.name else math.nan)
                row["best_truth"] = float(truths.max())
            rows.append(row)
    return pd.DataFrame(rows)
