"""Benchmark `throughput`: our training loop against nasbench-pytorch's reference `trainer.train`.

Same network (NB101 and NB201 cells), same images, same batch size and optimizer family, one
process, interleaved repeats. The reference gets a standard `torch.utils.data.DataLoader` built
from our decoded tensors with per-image crop/flip/normalise transforms (what its torchvision
pipeline does; torchvision itself is unavailable), as a user of nasbench-pytorch would run it.
Ours keeps the split on the device and augments whole batches there, uses channels_last
(oneDNN's faster convolution layout on CPU), and records snapshots every 100 mini-batches.
The "limit" is the bare step on the same network and batch size: forward, loss, backward and
SGD step on one ready-made normalised channels_last batch; ours / limit is what the loop's data
handling, augmentation, clipping and bookkeeping leave of it. All arms use the same threads.

    python bench/throughput.py [--repeats 3] [--batches 60]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics

import torch
from _common import Timer, write_results
from nasbench_pytorch import trainer as nb_trainer
from torch.utils.data import DataLoader, Dataset

from workbench.data import CIFAR10_MEAN, CIFAR10_STD, ImageDataset, load_dataset
from workbench.spaces import get_space
from workbench.training import TrainConfig, Trainer, seeded

CELLS = {
    "nb101": ("0100110/0010000/0001001/0000010/0000010/0000001/0000000|input,conv3x3-bn-relu,"
              "maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output"),
    "nb201": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
              "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
}


class PerImageCifar(Dataset):
    """Per-sample augmentation as torchvision's RandomCrop(32, 4) + flip + Normalize would do."""

    def __init__(self, data: ImageDataset, n: int, seed: int = 0) -> None:
        self.x = torch.from_numpy(data.images[:n].copy())
        self.y = torch.from_numpy(data.labels[:n].copy())
        self.mean = torch.tensor(CIFAR10_MEAN).view(3, 1, 1)
        self.std = torch.tensor(CIFAR10_STD).view(3, 1, 1)
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = torch.nn.functional.pad(self.x[i].float() / 255.0, (4, 4, 4, 4))
        r, c = torch.randint(0, 9, (2,), generator=self.gen).tolist()
        img = img[:, r:r + 32, c:c + 32]
        if torch.rand((), generator=self.gen) < 0.5:
            img = img.flip(-1)
        return (img - self.mean) / self.std, self.y[i]


def _model(name: str) -> torch.nn.Module:
    space_name, preset = name.split(":")
    space = get_space(space_name)
    with seeded(0):
        return space.build(space.parse(CELLS[space_name]), **space.model_kwargs(preset))


def run_reference(data: ImageDataset, preset: str, batches: int, batch: int) -> float:
    """Mini-batches per second of nasbench-pytorch's trainer.train (one epoch of ``batches``)."""
    loader = DataLoader(PerImageCifar(data, batches * batch), batch_size=batch, shuffle=True,
                        num_workers=0, drop_last=True)
    net = _model(preset)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    with Timer() as t, contextlib.redirect_stdout(io.StringIO()):
        nb_trainer.train(net, loader, optimizer=opt, num_epochs=1, device="cpu",
                         print_frequency=10**9)
    return batches / t.seconds


def run_limit(data: ImageDataset, preset: str, batches: int, batch: int) -> float:
    """Mini-batches per second of the bare step: forward, loss, backward, SGD step on one
    ready-made normalised channels_last batch (no loader, no augmentation, no bookkeeping)."""
    net = _model(preset).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x = ((torch.from_numpy(data.images[:batch].copy()).float() / 255 - mean) / std)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(data.labels[:batch].copy())
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    with Timer() as t:
        for _ in range(batches):
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return batches / t.seconds


def run_ours(data: ImageDataset, preset: str, batches: int, batch: int) -> float:
    """Mini-batches per second of workbench's Trainer (snapshots every 100)."""
    cfg = TrainConfig(steps=batches, batch_size=batch, lr=0.05, snapshot_every=100,
                      device="cpu")
    trainer = Trainer(_model(preset), data, cfg)
    with Timer() as t:
        trainer.run()
    return batches / t.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--models", nargs="+", default=["nb101:small", "nb201:small", "nb101:paper"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch threads for every arm (default: torch's)")
    args = ap.parse_args()
    # The same thread count for all three arms (the Trainer would otherwise pick its own).
    os.environ["WORKBENCH_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    data = load_dataset("cifar10", "train")
    rows = []
    for preset in args.models:
        n = args.batches if not preset.endswith("paper") else max(4, args.batches // 10)
        ours, ref, limit = [], [], []
        for _ in range(args.repeats):
            ref.append(run_reference(data, preset, n, args.batch_size))
            ours.append(run_ours(data, preset, n, args.batch_size))
            limit.append(run_limit(data, preset, n, args.batch_size))
        rows.append({"model": preset, "batches": n, "batch_size": args.batch_size,
                     "ours_batches_per_s": statistics.median(ours),
                     "reference_batches_per_s": statistics.median(ref),
                     "limit_batches_per_s": statistics.median(limit),
                     "ratio": statistics.median(ours) / statistics.median(ref),
                     "ours_over_limit": statistics.median(ours) / statistics.median(limit)})
    path = write_results("throughput", {
        "repeats": args.repeats, "threads": args.threads, "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(), "rows": rows,
        "goal": "ours >= 1.5x reference mini-batches/s (CPU); ours / limit >= 0.95"})
    print("| network (32x32) | ours batches/s | nasbench-pytorch batches/s | ratio | "
          "limit batches/s | ours / limit |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['ours_batches_per_s']:.2f} | "
              f"{r['reference_batches_per_s']:.2f} | {r['ratio']:.2f}x | "
              f"{r['limit_batches_per_s']:.2f} | {r['ours_over_limit']:.2f} |")
    print(f"written {path}")


if __name__ == "__main__":
    main()
