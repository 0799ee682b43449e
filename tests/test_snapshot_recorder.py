"""SnapshotRecorder(model, every=k) on models written here: an MLP, a ResNet-style CNN and a
tiny transformer block (attention, layer norm, tied embedding, a bare parameter)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from workbench.features import FEATURE_NAMES, SnapshotRecorder, model_layers

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3))


class Block(nn.Module):
    """A residual block whose projection is registered before the path that runs first."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + self.proj(x))


class ResNetish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(8, 4)  # registered first, used last
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.block = Block(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)).mean((2, 3)))


class TinyTransformer(nn.Module):
    """Embedding, a learned position parameter, one pre-norm block, an output head tied to the
    embedding (a shared parameter)."""

    def __init__(self, vocab: int = 11, dim: int = 8, length: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(length, dim).normal_(0, 0.1))
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos
        a = self.ln1(h)
        h = h + self.attn(a, a, a, need_weights=False)[0]
        h = h + self.mlp(self.ln2(h))
        return self.out(h)


def tokens(n: int = 4, gen: torch.Generator | None = None) -> torch.Tensor:
    return torch.randint(0, 11, (n, 5), generator=gen)


def loop(model: nn.Module, rec: SnapshotRecorder, make: Callable[[torch.Generator], Any],
         loss_of: Callable[[Any, Any], torch.Tensor], steps: int) -> None:
    """A plain user training loop: backward, then the recorder, then the update."""
    gen = torch.Generator().manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    for _ in range(steps):
        x, y = make(gen)
        loss_of(model(x), y).backward()
        rec.maybe_record()
        with torch.no_grad():
            for p in params:
                p -= 0.05 * p.grad
                p.grad = None


def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def test_mlp_registration_order_stats_and_frame() -> None:
    torch.manual_seed(0)
    model = mlp()
    rec = SnapshotRecorder(model, every=2, sample_size=4096)
    assert rec.layer_names == ("0", "2", "4") and rec.layer_kinds == ("linear",) * 3
    loop(model, rec, lambda g: (torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,),
                                                                               generator=g)),
         ce, steps=7)
    snaps = rec.snapshots()
    assert snaps.steps.tolist() == [2, 4, 6]
    assert snaps.weights.shape == (3, 65, len(FEATURE_NAMES)) and snaps.mask.sum() == 3
    assert not snaps.weights[:, 3:].any() and not snaps.grads[:, 3:].any()  # zero padding
    # the last snapshot is of step 6, before its update: the weights of a re-run of 5 steps
    torch.manual_seed(0)
    again = mlp()
    rec2 = SnapshotRecorder(again, every=2, sample_size=4096)
    loop(again, rec2, lambda g: (torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,),
                                                                                generator=g)),
         ce, steps=5)
    for i, layer in enumerate((again[0], again[2], again[4])):
        w = layer.weight.detach().numpy().astype(np.float64)
        assert snaps.weights[-1, i, F["l2_norm"]] == pytest.approx(np.linalg.norm(w), rel=1e-5)
        assert snaps.weights[-1, i, F["mean"]] == pytest.approx(w.mean(), abs=1e-6)
    assert (snaps.grads[:, :3, F["l2_norm"]] > 0).all()
    frame = rec.to_frame()
    assert len(frame) == 3 * 2 * 3 * len(FEATURE_NAMES)
    assert set(frame["layer_name"]) == {"0", "2", "4"} and set(frame["kind"]) == {"linear"}


def test_resnet_forward_order_differs_from_registration() -> None:
    model = ResNetish()
    reg = SnapshotRecorder(model, every=1)
    assert reg.layer_names == ("head", "stem", "block.proj", "block.conv1", "block.bn1",
                               "block.conv2", "block.bn2")
    fwd = SnapshotRecorder(model, every=1, order="forward",
                           example_input=torch.zeros(1, 3, 6, 6))
    assert fwd.layer_names == ("stem", "block.conv1", "block.bn1", "block.conv2", "block.bn2",
                               "block.proj", "head")
    assert fwd.layer_kinds == ("conv", "conv", "bn", "conv", "bn", "conv", "linear")
    assert model.training and all(m.training for m in model.modules())  # modes restored

    class Both:  # one loop feeding both recorders
        def maybe_record(self) -> None:
            reg.maybe_record()
            fwd.maybe_record()

    loop(model, Both(), lambda g: (torch.randn(2, 3, 6, 6, generator=g),  # type: ignore[arg-type]
                                   torch.randint(0, 4, (2,), generator=g)), ce, steps=3)
    a, b = reg.snapshots(), fwd.snapshots()
    assert b.steps.tolist() == [1, 2, 3] and b.n_layers == 7
    # the same layers, permuted: the head is 0 in registration order, 6 in forward order
    perm = [reg.layer_names.index(n) for n in fwd.layer_names]
    np.testing.assert_allclose(b.weights[:, :7], a.weights[:, perm], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.grads[:, :7], a.grads[:, perm], rtol=1e-6, atol=1e-7)
    gamma = model.block.bn1.weight.detach()  # a BN layer's weights are its gamma
    assert (b.weights[-1, 2, F["l2_norm"]] > 0) and gamma.numel() == 8


def test_transformer_block_attention_norms_shared_and_bare_parameters() -> None:
    torch.manual_seed(1)
    model = TinyTransformer()
    rec = SnapshotRecorder(model, every=1, order="forward", example_input=tokens(1))
    names = rec.layer_names
    # the tied head is the embedding's weight: recorded once, under the embedding
    assert "out" not in names and names.count("embed") == 1
    assert names == ("embed", "pos", "ln1", "attn.in_proj_weight", "attn.out_proj", "ln2",
                     "mlp.0", "mlp.2")
    kinds = dict(zip(names, rec.layer_kinds, strict=True))
    assert kinds == {"embed": "embedding", "pos": "other", "ln1": "norm",
                     "attn.in_proj_weight": "attention", "attn.out_proj": "linear",
                     "ln2": "norm", "mlp.0": "linear", "mlp.2": "linear"}
    reg = [name for name, _, _ in model_layers(model)]
    assert sorted(reg) == sorted(names) and reg[0] == "pos"  # the root's own parameter first

    def make(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = tokens(4, g)
        return x, x.roll(1, dims=1)

    loop(model, rec, make, ce, steps=4)
    snaps = rec.snapshots()
    assert snaps.weights.shape == (4, 65, len(FEATURE_NAMES))
    assert (snaps.grads[:, :8, F["l2_norm"]] > 0).all()  # every layer got a gradient
    # the shared weight's gradient is the sum of both uses: compare with autograd directly
    model.zero_grad()
    x, y = make(torch.Generator().manual_seed(5))
    ce(model(x), y).backward()
    rec.record(10)
    expected = model.embed.weight.grad.double().norm().item()
    assert rec.snapshots().grads[-1, 0, F["l2_norm"]] == pytest.approx(expected, rel=1e-5)
    assert snaps.weights[1:, :8, F["cosine"]].min() > 0.5  # small steps: weights stay aligned


def test_truncated_to_the_schema_width_with_a_warning() -> None:
    deep = nn.Sequential(*[nn.Linear(3, 3) for _ in range(70)])
    with pytest.warns(UserWarning, match="70 layers.*first 65"):
        rec = SnapshotRecorder(deep, every=1)
    assert rec.n_layers_total == 70 and len(rec.layer_names) == 65
    deep(torch.randn(2, 3)).sum().backward()
    rec.maybe_record()
    snaps = rec.snapshots()
    assert snaps.mask.all() and snaps.n_layers == 65 and snaps.layer_names[-1] == "64"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = SnapshotRecorder(deep, every=1, max_layers=80)
    assert short.snapshots().mask.sum() == 70


def test_one_host_transfer_per_snapshot_of_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    model = TinyTransformer()
    rec = SnapshotRecorder(model, every=1, sample_size=64)
    ce(model(tokens()), tokens()).backward()
    rec.record(1)
    calls = {"cpu": 0, "item": 0, "tolist": 0}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in calls:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    rec.record(2)
    monkeypatch.undo()
    assert calls == {"cpu": 1, "item": 0, "tolist": 0}


class Empty(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_bad_input_raises_naming_it() -> None:
    with pytest.raises(ValueError, match="model Empty has no trainable weight"):
        SnapshotRecorder(Empty())
    frozen = nn.Linear(2, 2)
    frozen.requires_grad_(False)
    with pytest.raises(ValueError, match=r"Linear has no trainable weight.*2 parameters"):
        SnapshotRecorder(frozen)
    with pytest.raises(ValueError, match="every must be an int >= 1, got 0"):
        SnapshotRecorder(mlp(), every=0)
    with pytest.raises(ValueError, match="snapshot_every must be an int >= 1, got 0"):
        SnapshotRecorder(mlp(), snapshot_every=0)
    with pytest.raises(ValueError, match="same cadence"):
        SnapshotRecorder(mlp(), every=2, snapshot_every=3)
    with pytest.raises(ValueError, match="order must be one of"):
        SnapshotRecorder(mlp(), order="topological")
    with pytest.raises(ValueError, match="needs example_input"):
        SnapshotRecorder(mlp(), order="forward")
    with pytest.raises(ValueError, match="apply to a model"):
        SnapshotRecorder([("fc", nn.Linear(2, 2))], order="forward", example_input=1)


def test_maybe_record_counts_mini_batches_and_resumes() -> None:
    model = mlp()
    rec = SnapshotRecorder(model, every=3)
    model(torch.randn(2, 6)).sum().backward()
    assert [rec.maybe_record() for _ in range(7)] == [False, False, True] * 2 + [False]
    state = rec.state_dict()
    again = SnapshotRecorder(model, every=3)
    again.load_state_dict(state)
    assert again.maybe_record() is False and again.maybe_record() is True  # 8, then 9
    assert again.snapshots().steps.tolist() == [3, 6, 9]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_matches_cpu() -> None:
    torch.manual_seed(3)
    cpu = TinyTransformer()
    gpu = TinyTransformer().cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = tokens(4, torch.Generator().manual_seed(0))
    recs = []
    for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
        rec = SnapshotRecorder(model, every=1, sample_size=64)
        ce(model(x.to(dev)), x.roll(1, 1).to(dev)).backward()
        rec.maybe_record()
        recs.append(rec.snapshots())
    np.testing.assert_allclose(recs[1].weights, recs[0].weights, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(recs[1].grads, recs[0].grads, rtol=1e-3, atol=1e-6)
