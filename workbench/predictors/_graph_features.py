"""Neural graph features (GRAF, Kadlecova et al., ICML 2024): a cell as a few dozen
interpretable numbers read off its op-on-node graph, for tree models to predict accuracy from.

The graph is ``space.to_graph(cell, prune=True)``: NAS-Bench-101's pruned spec, or the
NAS-Bench-201 op-on-node form without ``none`` edges and without nodes on no input-output path.
So isomorphic NB101 cells, and NB201 cells that differ only in edges whose result never reaches
the output, get the same features. "Op types" are the space's ``graph_ops`` without ``input``
and ``output`` (NB201: skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3; NB101:
conv1x1-bn-relu, conv3x3-bn-relu, maxpool3x3). Each subset ``S`` of op types is written as its
ops joined by ``+`` in ``graph_ops`` order, smallest subsets first. The columns
(:func:`graph_feature_names`), version :data:`GRAPH_FEATURE_VERSION`:

- ``n_edges``: edges of the graph; ``input_output_edge``: 1 if the input feeds the output
  directly (NB101 only; always 0 for NB201);
- ``count.{S}``: nodes whose op type is in ``S`` (for the set of all types: all intermediate
  nodes);
- ``min_path.{S}``: fewest intermediate nodes on an input-to-output path whose intermediate
  nodes all have ops in ``S`` (for NB201: the fewest cell edges on a path of those ops). With no
  such path it is the sentinel ``space.graph_nodes - 1`` (7 for NB201, 6 for NB101), longer
  than any real path, and ``has_path.{S}`` (1 if such a path exists, else 0) tells them apart;
- ``max_on_path.{S}``: the most nodes of types in ``S`` on any input-to-output path (0 when the
  input does not reach the output);
- ``input_out.{S}`` / ``output_in.{S}``: edges from the input into nodes of types in ``S`` /
  from nodes of types in ``S`` into the output;
- ``in_mean.{t}``, ``in_max.{t}``, ``out_mean.{t}``, ``out_max.{t}``: in- and out-degree of the
  nodes of type ``t`` (edges from the input and to the output count; 0 without such nodes);
  ``in_mean`` / ``out_mean``: the same over all intermediate nodes.

Sums over subsets (``count``, ``input_out``, ``output_in``) are given for every subset, not only
per type, because trees fitted on a hundred cells cannot add columns themselves: on NB201 they
lift Kendall tau by about 0.02.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from workbench.spaces import SearchSpace, get_space

#: Version of the feature list and definitions; saved with fitted graph-feature predictors and
#: checked when they are loaded.
GRAPH_FEATURE_VERSION = 1

_TERMINALS = ("input", "output")


def _resolve_space(space: str | SearchSpace) -> SearchSpace:
    """A space from a registered name or a space (ValueError naming the registered spaces)."""
    if isinstance(space, SearchSpace):
        return space
    if not isinstance(space, str):
        raise ValueError(f"space must be a space name or a SearchSpace, got {space!r}")
    return _space_by_name(space)


@cache
def _space_by_name(name: str) -> SearchSpace:
    # One instance per name: NB201's index lookup reads the table once per instance.
    return get_space(name)


def op_types(space: str | SearchSpace) -> tuple[str, ...]:
    """The op types the features count: the space's ``graph_ops`` without input and output."""
    return tuple(op for op in _resolve_space(space).graph_ops if op not in _TERMINALS)


def _subsets(ops: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``ops``, smallest first, each in ``ops`` order."""
    return [s for k in range(1, len(ops) + 1) for s in combinations(ops, k)]


def graph_feature_names(space: str | SearchSpace) -> list[str]:
    """The column names of :func:`graph_features` for ``space``, in order (see the module doc)."""
    return list(_names(op_types(space)))


@cache
def _names(ops: tuple[str, ...]) -> tuple[str, ...]:
    subsets = ["+".join(s) for s in _subsets(ops)]
    names = ["n_edges", "input_output_edge"]
    for stat in ("count", "min_path", "has_path", "max_on_path", "input_out", "output_in"):
        names += [f"{stat}.{s}" for s in subsets]
    for stat in ("in_mean", "in_max", "out_mean", "out_max"):
        names += [f"{stat}.{t}" for t in ops]
    names += ["in_mean", "out_mean"]
    return tuple(names)


def _topological(adj: np.ndarray) -> list[int]:
    """Nodes of the DAG ``adj`` in a topological order (ValueError if it has a cycle)."""
    indeg = adj.astype(bool).sum(0)
    order, ready = [], [v for v in range(adj.shape[0]) if indeg[v] == 0]
    while ready:
        u = ready.pop()
        order.append(u)
        for v in np.flatnonzero(adj[u]):
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(int(v))
    if len(order) != adj.shape[0]:
        raise ValueError("the cell graph has a cycle")
    return order


def _cell_features(adj: np.ndarray, labels: Sequence[str], ops: tuple[str, ...],
                   sentinel: float) -> list[float]:
    """The feature vector of one graph (order of :func:`_names`)."""
    adj = np.asarray(adj) > 0
    n = adj.shape[0]
    if list(labels).count("input") != 1 or list(labels).count("output") != 1:
        raise ValueError(f"a cell graph needs one input and one output node, got {list(labels)}")
    src, dst = list(labels).index("input"), list(labels).index("output")
    unknown = sorted({lab for lab in labels if lab not in ops and lab not in _TERMINALS})
    if unknown:
        raise ValueError(f"unknown node ops {unknown}; allowed: {list(ops)}")
    order = _topological(adj)
    preds = [[int(u) for u in np.flatnonzero(adj[:, v])] for v in range(n)]
    mids = [v for v in range(n) if v not in (src, dst)]
    kind = {t: [v for v in mids if labels[v] == t] for t in ops}
    out: list[float] = [float(adj.sum()), float(adj[src, dst])]
    subsets = _subsets(ops)
    members = [[v for t in subset for v in kind[t]] for subset in subsets]
    count = [float(len(nodes)) for nodes in members]

    min_path, has_path, max_on = [], [], []
    for subset in subsets:
        allowed = set(subset)
        # fewest[v]: fewest intermediate nodes on an input->v path through allowed nodes only;
        # most[v]: most allowed nodes on any input->v path (-inf: v not reachable).
        fewest = dict.fromkeys(range(n), np.inf)
        most = dict.fromkeys(range(n), -np.inf)
        fewest[src] = most[src] = 0.0
        for v in order:
            if v == src:
                continue
            inc = 1.0 if labels[v] in allowed else 0.0
            if v == dst or labels[v] in allowed:
                step = 0.0 if v == dst else 1.0
                fewest[v] = min((fewest[u] + step for u in preds[v]), default=np.inf)
            most[v] = max((most[u] + inc for u in preds[v]), default=-np.inf)
        found = bool(np.isfinite(fewest[dst]))
        min_path.append(fewest[dst] if found else sentinel)
        has_path.append(float(found))
        max_on.append(max(most[dst], 0.0))
    out += count + min_path + has_path + max_on
    out += [float(adj[src, nodes].sum()) for nodes in members]
    out += [float(adj[nodes, dst].sum()) for nodes in members]
    indeg, outdeg = adj.sum(0).astype(float), adj.sum(1).astype(float)
    for deg, stat in ((indeg, np.mean), (indeg, np.max), (outdeg, np.mean), (outdeg, np.max)):
        out += [float(stat(deg[kind[t]])) if kind[t] else 0.0 for t in ops]
    out += [float(indeg[mids].mean()) if mids else 0.0, float(outdeg[mids].mean()) if mids else 0.0]
    return out


def _as_cells(sp: SearchSpace, cells: Any) -> list[Any]:
    """``cells`` as a list of cell objects (cell strings are parsed)."""
    if isinstance(cells, (str, bytes)) or not isinstance(cells, Iterable):
        raise ValueError(f"cells must be a sequence of cells or cell strings, got {cells!r}")
    return [sp.parse(c) if isinstance(c, str) else c for c in cells]


def graph_features(space: str | SearchSpace, cells: Iterable[Any]) -> pd.DataFrame:
    """The graph features of ``cells`` (cell objects or cell strings of ``space``): one float
    row per cell in order, indexed by ``space.cell_id``, columns :func:`graph_feature_names`."""
    sp = _resolve_space(space)
    ops, cell_list = op_types(sp), _as_cells(sp, cells)
    sentinel = float(sp.graph_nodes - 1)
    rows = []
    for cell in cell_list:
        adj, labels = sp.to_graph(cell, prune=True)
        rows.append(_cell_features(adj, labels, ops, sentinel))
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(_names(ops)))
    index = pd.Index([sp.cell_id(c) for c in cell_list], name="cell_id")
    return pd.DataFrame(data, index=index, columns=list(_names(ops)))


class GraphFeatures(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: cells -> :func:`graph_features` (a DataFrame by cell id).

    ``proxies``: an optional DataFrame indexed by cell id (e.g. zero-cost proxy scores) whose
    numeric columns are appended to every row; ValueError for a cell it lacks. ``fit`` only
    records ``feature_names_out_``.
    """

    def __init__(self, space: str = "nb201", *, proxies: pd.DataFrame | None = None) -> None:
        self.space = space
        self.proxies = proxies

    def _proxy_table(self) -> pd.DataFrame | None:
        if self.proxies is None:
            return None
        if not isinstance(self.proxies, pd.DataFrame):
            raise ValueError(f"proxies must be a DataFrame indexed by cell id or None, got "
                             f"{type(self.proxies).__name__}")
        table = self.proxies.select_dtypes("number")
        clash = sorted(set(table.columns) & set(graph_feature_names(self.space)))
        if clash:
            raise ValueError(f"proxy columns {clash} clash with graph feature names")
        table = table.copy()
        table.index = table.index.astype(str)
        return table

    def fit(self, cells: Any = None, y: Any = None) -> GraphFeatures:
        """Check the parameters and record ``feature_names_out_`` (no data is read)."""
        names = graph_feature_names(self.space)
        table = self._proxy_table()
        if table is not None:
            names += [str(c) for c in table.columns]
        self.feature_names_out_ = np.asarray(names, dtype=object)
        self.n_features_out_ = len(names)
        return self

    def transform(self, cells: Any) -> pd.DataFrame:
        """Graph features (plus proxy columns) of ``cells`` (cell objects or cell strings)."""
        check_is_fitted(self)
        frame = graph_features(self.space, cells)
        table = self._proxy_table()
        if table is not None:
            missing = [k for k in frame.index if k not in table.index]
            if missing:
                raise ValueError(f"proxies has no row for cell ids {missing[:10]}"
                                 f"{' ...' if len(missing) > 10 else ''}")
            extra = table.loc[list(frame.index)].to_numpy(dtype=np.float64)
            frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index,
                                                   columns=[str(c) for c in table.columns])],
                              axis=1)
        return frame

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The output column names (graph features, then proxy columns)."""
        check_is_fitted(self)
        return self.feature_names_out_.copy()
