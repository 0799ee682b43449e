"""The GCN Neural Predictor (Wen et al., ECCV 2020) as a scikit-learn regressor over cell graphs.

Input format (``X``): a float array of shape ``[n, N, N + n_ops]``; for each cell, its ``N x N``
adjacency (``X[i, u, v] = 1`` for an edge u -> v) followed by one-hot node ops
(``X[i, u, N:]``). Graphs with fewer than N nodes are zero-padded at the end; a node is real iff
its one-hot row is non-zero. :func:`graphs_from_cells` builds it for any registered space
from the space's own graph: ``N = space.graph_nodes``, ops one-hot over ``space.graph_ops``,
adjacency and labels from ``space.to_graph(cell)`` (NAS-Bench-101: the pruned spec, N = 7;
NAS-Bench-201: the op-on-node form pruned to the nodes on an input-output path, N = 8).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from workbench._device import resolve_device
from workbench.predictors._predictor_registry import register_predictor
from workbench.predictors._targets import check_target, transform_target
from workbench.predictors._torch_fit import (
    check_dropout,
    check_ints,
    check_reals,
    check_threads,
    torch_threads,
    train_minibatches,
)
from workbench.spaces import SearchSpace, get_space

#: Version of the graph encoding a fitted GCN reads; saved in predictor files and checked on
#: load. 1: NB201 graphs kept nodes on no input-output path; 2: they are pruned.
GRAPH_SCHEMA_VERSION = 2


def graphs_from_cells(space: str | SearchSpace, cells: Iterable[Any]) -> np.ndarray:
    """Padded graph array ``[n, N, N + n_ops]`` (float32) of cells or cell strings of ``space``
    (a registered name or a space; see the module doc)."""
    sp = get_space(space) if isinstance(space, str) else space
    if not isinstance(sp, SearchSpace):
        raise ValueError(f"space must be a space name or a SearchSpace, got {space!r}")
    vocab, n_nodes = sp.graph_ops, sp.graph_nodes
    graphs = []
    for cell in cells:
        adj, ops = sp.to_graph(sp.parse(cell) if isinstance(cell, str) else cell)
        g = np.zeros((n_nodes, n_nodes + len(vocab)), dtype=np.float32)
        k = len(ops)
        g[:k, :k] = adj
        g[np.arange(k), n_nodes + np.array([vocab.index(op) for op in ops])] = 1.0
        graphs.append(g)
    if not graphs:
        raise ValueError("no cells given")
    return np.stack(graphs)


def split_graphs(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (adjacency [n,N,N], ops [n,N,n_ops], node mask [n,N]) of a graph array."""
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"X must be a numeric graph array [n, N, N + n_ops]: {err}") from None
    if arr.ndim != 3 or arr.shape[2] <= arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"X must have shape [n, N, N + n_ops] with n >= 1 and n_ops >= 1, "
                         f"got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("X has NaN or inf entries")
    n_nodes = arr.shape[1]
    adj, ops = arr[:, :, :n_nodes], arr[:, :, n_nodes:]
    mask = (ops != 0).any(axis=2)
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(f"graph {int(np.argmax(empty))} has no node (all op rows are zero)")
    return adj, ops, mask.astype(np.float32)


def _propagation(adj: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised (A + I)^T (messages from predecessors) and A + I (from successors)."""
    eye = np.eye(adj.shape[1], dtype=np.float32)[None] * mask[:, :, None]
    out = []
    for a in (np.transpose(adj, (0, 2, 1)) + eye, adj + eye):
        deg = a.sum(axis=2, keepdims=True)
        out.append(a / np.where(deg > 0, deg, 1.0))
    return out[0], out[1]


class _GCNNet(nn.Module):
    """Directed GCN layers (both directions, averaged), masked mean pooling, MLP head."""

    def __init__(self, n_ops: int, hidden: int, layers: int, fc: int, dropout: float) -> None:
        super().__init__()
        widths = list(pairwise([n_ops] + [hidden] * layers))
        self.fwd = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in widths)
        self.bwd = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in widths)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, fc)
        self.head = nn.Linear(fc, 1)

    def forward(self, a_in: torch.Tensor, a_out: torch.Tensor, ops: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        h = ops
        for f, b in zip(self.fwd, self.bwd, strict=True):
            h = 0.5 * (torch.relu(a_in @ f(h)) + torch.relu(a_out @ b(h)))
            h = self.drop(h) * mask.unsqueeze(-1)
        pooled = h.sum(1) / mask.sum(1, keepdim=True)
        return self.head(self.drop(torch.relu(self.fc(pooled)))).squeeze(-1)


def _check_params(est: GCNPredictor) -> None:
    check_ints(hidden=est.hidden, layers=est.layers, fc=est.fc, epochs=est.epochs,
               batch_size=est.batch_size, n_ensemble=est.n_ensemble)
    check_reals(lr=est.lr, weight_decay=est.weight_decay)
    check_dropout(est.dropout)
    check_threads(est.n_threads)
    check_target(est)


@register_predictor("gcn")
class GCNPredictor(RegressorMixin, BaseEstimator):
    """Wen et al.'s Neural Predictor: a directed GCN regressing accuracy from the cell graph.

    Defaults are the paper's NAS-Bench-101 setting (3 layers of 144, FC 128, Adam 1e-4 with a
    cosine schedule, 300 epochs, batch 10, weight decay 1e-3, dropout 0.1). ``X`` is a graph
    array (see :func:`graphs_from_cells`); targets are standardised internally. ``target``:
    ``"raw"`` regresses accuracy (the paper); ``"rank"`` regresses the normalised rank of the
    training labels, which keeps the tail of failed cells from dominating the loss (better
    rank correlation; ``predict`` then returns rank scores, not accuracies). Deterministic
    for a ``random_state`` on CPU; the global torch RNG is left as it was. ``n_threads``: torch CPU
    threads while fitting/predicting (restored afterwards; None keeps torch's setting).

    ``n_ensemble`` members differ only by seed (``random_state + i``), each fitted on all rows:
    their randomness is the weight initialisation, the mini-batch order and dropout, and
    averaging their predictions (in the target space: rank scores for ``target="rank"``) cuts
    seed-to-seed spread. Fitting and predicting cost ``n_ensemble`` times one network; member 0
    is the network that ``n_ensemble=1`` fits. ``models_`` holds the members, ``loss_curve_``
    their mean loss per epoch.
    """

    def __init__(self, hidden: int = 144, layers: int = 3, fc: int = 128, lr: float = 1e-4,
                 epochs: int = 300, batch_size: int = 10, weight_decay: float = 1e-3,
                 dropout: float = 0.1, random_state: int = 0, device: str = "auto",
                 n_threads: int | None = 1, target: str = "raw", n_ensemble: int = 1) -> None:
        self.hidden = hidden
        self.layers = layers
        self.fc = fc
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.target = target
        self.n_ensemble = n_ensemble

    def _net(self) -> _GCNNet:
        return _GCNNet(self.n_ops_, self.hidden, self.layers, self.fc, self.dropout)

    def _tensors(self, X: Any, device: torch.device) -> list[torch.Tensor]:
        adj, ops, mask = split_graphs(X)
        a_in, a_out = _propagation(adj, mask)
        return [torch.from_numpy(np.ascontiguousarray(v)).to(device)
                for v in (a_in, a_out, ops, mask)]

    def fit(self, X: Any, y: Any) -> GCNPredictor:
        """Train ``n_ensemble`` fresh networks on graphs ``X`` and accuracies ``y``."""
        _check_params(self)
        adj, ops, _ = split_graphs(X)
        t = np.asarray(y, dtype=np.float64).ravel()
        if t.size != adj.shape[0]:
            raise ValueError(f"X has {adj.shape[0]} graphs but y has {t.size} values")
        t = transform_target(t, self.target)  # ValueError on NaN / inf
        device = resolve_device(self.device)
        self.y_mean_ = float(t.mean())
        self.y_std_ = float(t.std()) if t.std() > 0 else 1.0
        self.n_nodes_, self.n_ops_ = adj.shape[1], ops.shape[2]
        data = self._tensors(X, device)
        target = torch.as_tensor((t - self.y_mean_) / self.y_std_, dtype=torch.float32,
                                 device=device)
        n, bs = t.size, int(self.batch_size)
        steps = self.epochs * -(-n // bs)
        models, curves = [], []
        for i in range(int(self.n_ensemble)):
            model, losses = self._fit_member(int(self.random_state) + i, data, target, steps,
                                             device)
            models.append(model)
            curves.append(losses)
        self.models_ = models
        self.device_ = str(device)
        self.loss_curve_ = [float(v) for v in np.mean(curves, axis=0)]
        self.graph_schema_version_ = GRAPH_SCHEMA_VERSION
        return self

    def _fit_member(self, seed: int, data: list[torch.Tensor], target: torch.Tensor, steps: int,
                    device: torch.device) -> tuple[_GCNNet, list[float]]:
        """One network trained under ``seed`` (its init, batch order and dropout)."""
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.n_threads):
            torch.manual_seed(seed)
            model = self._net().to(device).train()
            opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            gen = torch.Generator().manual_seed(seed)
            losses = train_minibatches(
                lambda idx: nn.functional.mse_loss(model(*(d[idx] for d in data)), target[idx]),
                opt, sched, n=target.numel(), batch_size=int(self.batch_size),
                epochs=int(self.epochs), generator=gen, device=device)
        return model.eval(), losses

    def predict(self, X: Any) -> np.ndarray:
        """Predicted accuracy (``target="raw"``) or rank score of every graph in ``X`` (the mean
        over the ensemble's members)."""
        check_is_fitted(self)
        _, ops, _ = split_graphs(X)
        if ops.shape[1:] != (self.n_nodes_, self.n_ops_):
            raise ValueError(f"X has {ops.shape[1]} nodes and {ops.shape[2]} ops; the model was "
                             f"fitted on {self.n_nodes_} nodes and {self.n_ops_} ops")
        data = self._tensors(X, torch.device(self.device_))
        total = np.zeros(ops.shape[0], dtype=np.float64)
        with torch.no_grad(), torch_threads(self.n_threads):
            for model in self.models_:
                out = [model(*(d[start:start + 4096] for d in data)).cpu().numpy()
                       for start in range(0, ops.shape[0], 4096)]
                total += np.concatenate(out).astype(np.float64) * self.y_std_ + self.y_mean_
        return total / len(self.models_)

    def _export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        # Member 0's weights are ``state.*``, as in files from before ensembles; member i > 0's
        # are ``state{i}.*``, and ``n_members`` (absent in old files: 1) says how many there are.
        attrs = {k: getattr(self, k) for k in ("y_mean_", "y_std_", "n_nodes_", "n_ops_",
                                               "loss_curve_")}
        attrs["n_members"] = len(self.models_)
        arrays = {}
        for i, model in enumerate(self.models_):
            prefix = "state." if i == 0 else f"state{i}."
            arrays.update({prefix + k: v.detach().cpu().numpy()
                           for k, v in model.state_dict().items()})
        return attrs, arrays

    def _import(self, attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        attrs = dict(attrs)
        n_members = int(attrs.pop("n_members", 1))
        for k, v in attrs.items():
            setattr(self, k, v)
        device = resolve_device(self.device)
        models = []
        for i in range(n_members):
            prefix = "state." if i == 0 else f"state{i}."
            model = self._net()
            model.load_state_dict({k[len(prefix):]: torch.from_numpy(np.array(v))
                                   for k, v in arrays.items() if k.startswith(prefix)})
            models.append(model.to(device).eval())
        self.models_ = models
        self.device_ = str(device)
        self.graph_schema_version_ = GRAPH_SCHEMA_VERSION  # load_predictor checked it


def benchmark_graphs(bench: Any, cell_ids: Sequence[Any]) -> np.ndarray:
    """Graph array of table cells given by id (or cell/cell string) of a tabular benchmark."""
    return graphs_from_cells(bench.space_name, [bench.cell(bench.cell_id(c)) for c in cell_ids])
