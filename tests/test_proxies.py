"""Zero-cost proxies: hand-checked values, invariances, a smoke test over the registry, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from workbench.predictors import ProxyBatch, proxy_batch, score_cells
from workbench.predictors._proxies import (
    JACOV_K,
    PROXIES,
    compute_proxies,
    count_distinct_columns,
    epsinas_from_outputs,
    jacov_from_jacobians,
    list_proxies,
)
from workbench.predictors._proxy_scores import CACHE_COLUMNS
from workbench.spaces import count_parameters, get_space

pytestmark = pytest.mark.usefixtures("one_thread")


ALL = ["epsinas", "fisher", "flops", "grad_norm", "grasp", "jacov", "nwot", "params", "snip",
       "swap", "synflow"]

# A 2-layer bias-free linear net x (3) -> h (2) -> z (2), with every quantity checked by hand.
W1 = [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]
W2 = [[2.0, -1.0], [0.5, 1.0]]
X = [[0.5, 1.0, -1.0], [2.0, 0.0, 1.0]]
Y = [0, 1]


def _linear_net() -> nn.Module:
    net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W1))
        net[1].weight.copy_(torch.tensor(W2))
    return net


def _linear_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(X), torch.tensor(Y)


def _matvec(m: list[list[float]], v: list[float]) -> list[float]:
    return [sum(a * b for a, b in zip(row, v, strict=True)) for row in m]


def _transpose(m: list[list[float]]) -> list[list[float]]:
    return [list(col) for col in zip(*m, strict=True)]


def _by_hand(dloss_dz):
    """Activations and weight/activation gradients of the linear net, by the chain rule."""
    h = [_matvec(W1, x) for x in X]
    z = [_matvec(W2, hn) for hn in h]
    delta = [dloss_dz(zn, yn) for zn, yn in zip(z, Y, strict=True)]  # dL/dz_n
    back = [_matvec(_transpose(W2), d) for d in delta]  # dL/dh_n
    g2 = [[sum(d[i] * hn[j] for d, hn in zip(delta, h, strict=True)) for j in range(2)]
          for i in range(2)]
    g1 = [[sum(b[j] * x[k] for b, x in zip(back, X, strict=True)) for k in range(3)]
          for j in range(2)]
    return h, z, delta, back, g1, g2


def _cross_entropy_grad(z: list[float], y: int) -> list[float]:
    e = [math.exp(v) for v in z]
    return [(ei / sum(e) - (i == y)) / len(X) for i, ei in enumerate(e)]  # mean over the batch


def _sum_abs_prod(w, g) -> float:
    return sum(abs(a * b) for rw, rg in zip(w, g, strict=True) for a, b in zip(rw, rg, strict=True))


def _fro(g) -> float:
    return math.sqrt(sum(v * v for row in g for v in row))


# --------------------------------------------------------------------------------------------
# Hand-checked values
# --------------------------------------------------------------------------------------------


def test_registry_lists_every_proxy() -> None:
    assert list_proxies() == ALL
    assert all(name in PROXIES for name in ALL)


def test_grad_norm_snip_fisher_by_hand() -> None:
    _, z, delta, back, g1, g2 = _by_hand(_cross_entropy_grad)
    h = [_matvec(W1, x) for x in X]
    scores = compute_proxies(_linear_net(), _linear_batch(), ["grad_norm", "snip", "fisher"])
    assert scores["grad_norm"] == pytest.approx(_fro(g1) + _fro(g2), rel=1e-5)
    assert scores["snip"] == pytest.approx(_sum_abs_prod(W1, g1) + _sum_abs_prod(W2, g2),
                                           rel=1e-5)
    # Fisher: per layer output a and channel c, 1/2 * mean_n (a_nc * dL/da_nc)^2.
    fisher = sum(0.5 * sum((a[c] * g[c]) ** 2 for a, g in zip(acts, grads, strict=True)) / len(X)
                 for acts, grads in ((h, back), (z, delta)) for c in range(2))
    assert scores["fisher"] == pytest.approx(fisher, rel=1e-5)


def test_custom_loss_is_used() -> None:
    # L = sum of all logits: dL/dz_n = (1, 1) for every sample.
    _, _, _, _, g1, g2 = _by_hand(lambda z, y: [1.0, 1.0])
    score = compute_proxies(_linear_net(), _linear_batch(), ["snip"],
                            loss_fn=lambda out, y: out.sum())
    assert score["snip"] == pytest.approx(_sum_abs_prod(W1, g1) + _sum_abs_prod(W2, g2), rel=1e-6)


def test_synflow_by_hand() -> None:
    # R = 1^T |W2| |W1| 1; each layer's sum of |w * dR/dw| equals R (synaptic flow conservation).
    abs_w1 = [[abs(v) for v in row] for row in W1]
    abs_w2 = [[abs(v) for v in row] for row in W2]
    hidden = _matvec(abs_w1, [1.0, 1.0, 1.0])  # [3.5, 4]
    col = [sum(r[j] for r in abs_w2) for j in range(2)]  # 1^T |W2| = [2.5, 2]
    layer2 = sum(abs_w2[i][j] * hidden[j] for i in range(2) for j in range(2))
    layer1 = sum(abs_w1[j][k] * col[j] for j in range(2) for k in range(3))
    assert layer1 == layer2 == 16.75
    scores = compute_proxies(_linear_net(), _linear_batch(), ["synflow"])
    assert scores["synflow"] == pytest.approx(33.5)


def test_grasp_matches_an_explicit_hessian() -> None:
    x, y = _linear_batch()
    theta = torch.cat([torch.tensor(W1).ravel(), torch.tensor(W2).ravel()]).double()

    def loss(t: torch.Tensor) -> torch.Tensor:
        w1, w2 = t[:6].reshape(2, 3), t[6:].reshape(2, 2)
        return nn.functional.cross_entropy(x.double() @ w1.T @ w2.T, y)

    grad = torch.autograd.functional.jacobian(loss, theta)
    hess = torch.autograd.functional.hessian(loss, theta)
    expected = -float(theta @ (hess @ grad))
    assert expected != 0.0
    scores = compute_proxies(_linear_net(), (x, y), ["grasp"])
    assert scores["grasp"] == pytest.approx(expected, rel=1e-4)


def test_jacov_values() -> None:
    k = JACOV_K
    # The linear net's input Jacobian is the same row for every sample: correlation 1, eig {0, 2}.
    both_correlated = -(math.log(k) + 1 / k) - (math.log(2 + k) + 1 / (2 + k))
    assert compute_proxies(_linear_net(), _linear_batch(), ["jacov"])["jacov"] == pytest.approx(
        both_correlated, rel=1e-6)
    # Uncorrelated rows: identity correlation, eigenvalues all 1 (the best score).
    assert jacov_from_jacobians(np.array([[1.0, -1, 0, 0], [0, 0, 1, -1]])) == pytest.approx(
        -2 * (math.log(1 + k) + 1 / (1 + k)))
    # A constant Jacobian row counts as fully correlated (the worst case), not NaN.
    assert jacov_from_jacobians(np.array([[1.0, 2, 3], [0, 0, 0]])) == pytest.approx(
        both_correlated)


def test_nwot_and_swap_by_hand() -> None:
    relu = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1, 2, 3], [1, 1, -1, 4]])
    batch = (x, torch.tensor([0, 1]))
    # Codes (1,0,1,1) and (1,1,0,1): K = N_A - Hamming = [[4, 2], [2, 4]], det 12.
    assert compute_proxies(relu, batch, ["nwot"])["nwot"] == pytest.approx(math.log(12))
    # Unit patterns across the 2 samples: (1,1), (0,1), (1,0), (1,1) -> 3 distinct.
    assert compute_proxies(relu, batch, ["swap"])["swap"] == 3.0
    regular = compute_proxies(relu, batch, ["swap"],
                              options={"swap": {"regularise": True, "mu": 1.0, "sigma": 2.0}})
    assert regular["swap"] == pytest.approx(3 * math.exp(-0.5))  # 0 parameters


def test_count_distinct_columns_past_one_word() -> None:
    codes = torch.from_numpy(np.random.default_rng(0).random((70, 300)) < 0.5)
    codes[:, 7] = codes[:, 3]
    codes[:, 150:] = codes[:, :150]  # every pattern twice
    expected = len({tuple(col) for col in codes.T.tolist()})
    assert count_distinct_columns(codes) == expected == 149


class _Quadratic(nn.Module):
    """Outputs (w x + b + x^2, x): not scale-invariant, so the two epsinas passes differ."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 1)
        with torch.no_grad():
            self.lin.weight.fill_(0.3)
            self.lin.bias.fill_(5.0)  # epsinas zeroes biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.lin(x) + x**2, x], dim=1)


def test_epsinas_by_hand() -> None:
    # Min-max normalised p1=(0,.25,.5,1), p2=(0,.5,.5,1); zeros dropped: mean|diff| = .25/3,
    # mean of the rest = 3.75/6.
    assert epsinas_from_outputs(np.array([0.0, 1, 2, 4]), np.array([0.0, 2, 2, 4])) == (
        pytest.approx((0.25 / 3) / (3.75 / 6)))
    assert epsinas_from_outputs(np.ones(4), np.arange(4.0)) == 0.0  # no spread: the minimum
    x = torch.tensor([[1.0], [2.0], [3.0]])
    outs = [np.array([[w * v + v * v, v] for v in (1.0, 2.0, 3.0)]) for w in (1e-7, 1.0)]
    got = compute_proxies(_Quadratic(), (x, torch.tensor([0, 1, 0])), ["epsinas"])["epsinas"]
    assert got == pytest.approx(epsinas_from_outputs(*outs), rel=1e-9)
    assert got > 0


def _small_conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 108 + 4 params; 4*8*8 outputs x 27 = 6912 MACs
        nn.BatchNorm2d(4),  # 8 params
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False),  # 216; 6*4*4 x 36 = 3456 MACs
        nn.Conv2d(6, 6, 3, padding=1, groups=3, bias=False),  # 108; 6*4*4 x 18 = 1728 MACs
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 10),  # 70; 60 MACs
    )


def test_params_and_flops_by_hand() -> None:
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    scores = compute_proxies(_small_conv_net(), (x, torch.arange(4)), ["params", "flops"])
    assert scores == {"params": 514.0, "flops": 12156.0}
    frozen = _small_conv_net()
    frozen[1].requires_grad_(False)
    assert compute_proxies(frozen, (x, torch.arange(4)), "params") == {"params": 506.0}


def test_params_excludes_nasbench_dummies() -> None:
    model, (x, y) = _space_model("nb101"), _image_batch(0)
    params = compute_proxies(model, (x, y), ["params"])["params"]
    assert params == count_parameters(model) < sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# Invariances, the registry smoke test, determinism
# --------------------------------------------------------------------------------------------


def _space_model(space: str, seed: int = 0) -> nn.Module:
    s = get_space(space)
    return s.build(s.sample(seed), **s.model_kwargs("tiny"))


def _image_batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_data_independent_proxies_ignore_the_data() -> None:
    model = _space_model("nb201", seed=1)
    names = ["synflow", "params", "flops"]
    first = compute_proxies(model, _image_batch(1), names)
    assert compute_proxies(model, _image_batch(2, n=4), names) == first
    assert first["synflow"] > 0
    assert all(PROXIES.create(n).data_independent for n in names)
    assert (compute_proxies(model, _image_batch(2), ["snip"])
            != compute_proxies(model, _image_batch(1), ["snip"]))


def _snapshot(model: nn.Module) -> tuple:
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()],
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            [p.requires_grad for p in model.parameters()],
            [p.dtype for p in model.parameters()])


def _same(a: tuple, b: tuple) -> bool:
    states_a, states_b = a[0], b[0]
    return (states_a.keys() == states_b.keys()
            and all(torch.equal(states_a[k], states_b[k]) for k in states_a)
            and a[1] == b[1] and a[3] == b[3] and a[4] == b[4]
            and all((ga is None and gb is None) or (ga is not None and gb is not None
                                                   and torch.equal(ga, gb))
                    for ga, gb in zip(a[2], b[2], strict=True)))


@pytest.mark.parametrize(("space", "train"), [("nb101", True), ("nb201", False)])
def test_every_proxy_runs_on_each_space_and_leaves_the_model_unchanged(
        space: str, train: bool) -> None:
    model = _space_model(space, seed=3)
    model.train(train)
    first = next(model.parameters())
    first.grad = torch.full_like(first, 0.5)  # an existing gradient must survive
    before = _snapshot(model)
    batch = _image_batch(3)
    for name in list_proxies():
        value = compute_proxies(model, batch, [name])[name]
        assert isinstance(value, float) and math.isfinite(value), (space, name, value)
        assert _same(before, _snapshot(model)), f"{name} changed the {space} model"


def test_deterministic_for_a_fixed_batch() -> None:
    model, batch = _space_model("nb201", seed=4), _image_batch(4)
    assert compute_proxies(model, batch) == compute_proxies(model, batch, device="cpu")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unknown_names_raise_listing_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*'bad'.*allowed: \['epsinas'"):
        compute_proxies(_linear_net(), _linear_batch(), ["snip", "nope", "bad"])
    with pytest.raises(ValueError, match="not computed"):
        compute_proxies(_linear_net(), _linear_batch(), ["snip"], options={"swap": {}})
    assert list(compute_proxies(_linear_net(), _linear_batch(), ["snip", "params", "snip"])) == [
        "snip", "params"]


@pytest.mark.parametrize(("batch", "message"), [
    (torch.zeros(8, 3, 16, 16), "pair"),
    ((torch.zeros(8, 3, 16, 16), torch.zeros(7, dtype=torch.long)), "shape mismatch"),
    ((torch.zeros(8, 3, 16, 16), torch.tensor(3)), "shape mismatch"),
    ((torch.zeros(8, 3, 16, 16, dtype=torch.long), torch.zeros(8, dtype=torch.long)), "floating"),
    ((torch.zeros(1, 3, 16, 16), torch.zeros(1, dtype=torch.long)), "at least 2"),
    ((torch.zeros(8, 3, 16, 16).index_fill(0, torch.tensor([2]), float("nan")),
      torch.zeros(8, dtype=torch.long)), "NaN"),
    ((torch.zeros(8, 3, 16, 16), torch.full((8,), -1)), ">= 0"),
    ((torch.zeros(8, 3, 16, 16), [0] * 8), "tensors"),
])
def test_malformed_batches_raise(batch: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_proxies(_small_conv_net(), batch, ["params"])


def test_labels_beyond_the_outputs_and_models_without_relu_raise() -> None:
    x, _ = _linear_batch()
    with pytest.raises(ValueError, match="out of range"):
        compute_proxies(_linear_net(), (x, torch.tensor([0, 2])), ["snip"])
    with pytest.raises(ValueError, match=r"nn\.ReLU"):
        compute_proxies(_linear_net(), _linear_batch(), ["nwot"])
    with pytest.raises(ValueError, match="unknown device"):
        compute_proxies(_linear_net(), _linear_batch(), ["params"], device="gpu0")
    with pytest.raises(ValueError, match="sigma"):
        PROXIES.create("swap", regularise=True, sigma=0.0)
    with pytest.raises(ValueError, match="two positive"):
        PROXIES.create("epsinas", weights=(1e-7,))


# -- proxy_batch / score_cells: the cached loop over many cells ---------------------------------

CELLS = ["|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|",
         "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"]


def _random_batch(n: int = 8) -> ProxyBatch:
    gen = torch.Generator().manual_seed(0)
    return ProxyBatch(x=torch.randn(n, 3, 8, 8, generator=gen),
                      y=torch.randint(0, 10, (n,), generator=gen), dataset="cifar10",
                      description="random 8x8")


def test_proxy_batch_is_a_seeded_draw_prepared_on_cpu() -> None:
    a, b = proxy_batch(n=6, seed=3, resize=8), proxy_batch(n=6, seed=3, resize=8)
    x, y = a
    assert x.shape == (6, 3, 8, 8) and x.device.type == "cpu" and y.dtype == torch.long
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a.description == b.description
    assert not torch.equal(proxy_batch(n=6, seed=4, resize=8).x, a.x)
    assert "seed=3" in a.description and "resize=8" in a.description and a.num_classes == 10
    with pytest.raises(ValueError, match="n=1000000 exceeds"):
        proxy_batch(n=1_000_000)


def test_score_cells_is_deterministic_for_a_seed() -> None:
    space, batch = get_space("nb201"), _random_batch()
    names = ["synflow", "nwot", "params"]
    a = score_cells(space, CELLS, names, batch=batch, model="tiny", progress=False)
    b = score_cells("nb201", [space.parse(c) for c in CELLS], names, batch=batch, model="tiny",
                    progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == names and list(a.index) == [space.cell_id(c) for c in CELLS]
    other = score_cells(space, CELLS, ["synflow"], batch=batch, model="tiny", seed=1,
                        progress=False)
    assert not np.allclose(other["synflow"], a["synflow"])  # the seed sets the initialisation


def test_score_cells_reuses_its_cache(tmp_path, monkeypatch) -> None:
    space, batch, cache = get_space("nb201"), _random_batch(), tmp_path / "scores.csv"
    builds: list[str] = []
    build = space.build

    def counting_build(cell, **kwargs):
        builds.append(space.cell_id(cell))
        return build(cell, **kwargs)

    monkeypatch.setattr(space, "build", counting_build)
    first = score_cells(space, CELLS[:2], ["synflow", "params"], batch=batch, model="tiny",
                        cache=cache, progress=False)
    assert len(builds) == 2
    again = score_cells(space, CELLS[:2], ["params", "synflow"], batch=batch, model="tiny",
                        cache=cache, progress=False, seconds=True)
    assert len(builds) == 2  # nothing new computed
    pd.testing.assert_frame_equal(again[["synflow", "params"]], first)
    assert (again["seconds"] > 0).all()
    more = score_cells(space, CELLS, ["synflow", "params"], batch=batch, model="tiny",
                       cache=cache, progress=False)
    assert builds[2:] == [space.cell_id(CELLS[2])]  # only the new cell
    pd.testing.assert_frame_equal(more.iloc[:2], first)
    stored = pd.read_csv(cache)  # plain CSV, one row per (cell, proxy, model, seed, batch)
    assert list(stored.columns) == list(CACHE_COLUMNS) and len(stored) == 6
    assert set(stored["batch"]) == {"random 8x8"} and set(stored["model"]) == {"tiny"}
    score_cells(space, CELLS[:1], ["synflow"], batch=batch, model="small", cache=cache,
                progress=False)
    assert len(builds) == 4  # another model is another key
    (tmp_path / "bad.csv").write_text("cell_id,synflow\n1,2\n")
    with pytest.raises(ValueError, match="not a score_cells cache"):
        score_cells(space, CELLS[:1], ["synflow"], batch=batch, cache=tmp_path / "bad.csv",
                    progress=False)


def test_score_cells_rejects_bad_arguments_naming_them() -> None:
    batch = _random_batch()
    with pytest.raises(ValueError, match=r"'nope'.*allowed"):
        score_cells("nb201", CELLS[:1], ["synflow", "nope"], batch=batch, progress=False)
    with pytest.raises(ValueError, match=r"'nb999'.*available"):
        score_cells("nb999", CELLS[:1], batch=batch, progress=False)
    with pytest.raises(ValueError, match=r"'huge'.*available"):
        score_cells("nb201", CELLS[:1], batch=batch, model="huge", progress=False)
    with pytest.raises(ValueError, match="ProxyBatch"):
        score_cells("nb201", CELLS[:1], batch=(batch.x, batch.y), progress=False)
