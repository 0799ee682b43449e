"""The training loop: curves, held-out evaluation, snapshots, divergence and resumable state."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from workbench._checks import check_int, check_real
from workbench._device import resolve_device
from workbench._threads import training_threads, use_threads
from workbench.data import DeviceLoader, ImageDataset
from workbench.features import SnapshotRecorder, Snapshots
from workbench.spaces import parameterised_layers, trainable_parameters
from workbench.training._config import TrainConfig
from workbench.training._optim import LeanSGD

TRAIN_STATUSES = ("running", "done", "diverged", "stopped")
#: A run whose mean training loss over a curve interval, or whose held-out loss, exceeds this
#: counts as diverged (cross-entropy at chance is ln(classes): 2.3 for CIFAR-10, 4.8 for
#: ImageNet16-120; healthy runs stay within a few times that). Non-finite losses and non-finite
#: snapshot statistics also count as divergence.
DIVERGE_LOSS = 100.0


class Callback:
    """Hooks called by :class:`Trainer` (override what you need): live plots, logging, stop."""

    def on_curve(self, trainer: Trainer, row: dict[str, float]) -> None:
        """A new point of the training curve (every ``curve_every`` mini-batches)."""

    def on_eval(self, trainer: Trainer, row: dict[str, float]) -> None:
        """A held-out evaluation finished."""

    def on_snapshot(self, trainer: Trainer, step: int) -> None:
        """A weight/gradient snapshot was recorded at ``step``."""

    def on_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Training stopped (budget reached, diverged or stop requested)."""


@dataclass
class TrainResult:
    """What a training run produced; ``curves``/``evals`` are DataFrames, one row per point."""

    status: str
    steps: int
    total_steps: int
    wall_seconds: float
    curves: pd.DataFrame
    evals: pd.DataFrame
    snapshots: Snapshots | None
    metrics: dict[str, float] = field(default_factory=dict)
    #: Why a ``diverged`` run was stopped (None otherwise).
    reason: str | None = None

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """The run's arrays as a run store keeps them: ``curves``, ``evals`` and (when
        recorded) ``snapshots``, each a dict of column -> array (steps int64, the rest float64)."""
        out = {name: {c: frame[c].to_numpy(dtype=np.int64 if c == "step" else np.float64)
                      for c in frame.columns}
               for name, frame in (("curves", self.curves), ("evals", self.evals))}
        if self.snapshots is not None:
            out["snapshots"] = self.snapshots.to_arrays()
        return out


def _make_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    # No weight decay on BN/bias parameters (1-D), as usual for CNNs.
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        # torch's SGD, minus its first-call import of torch._dynamo (cold start, _optim.py).
        return LeanSGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                       nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=0.9, eps=1.0, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _lr_factor(cfg: TrainConfig, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        span = max(1, total - cfg.warmup_steps)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


class Trainer:
    """Trains ``model`` on ``train`` with ``config``; call :meth:`run` (again, to continue).

    The loader is a pure function of (seed, epoch), so a resumed trainer sees exactly the batches
    an uninterrupted one would. It uses channels_last on CUDA and CPU, bf16 autocast on CUDA; it is
    deterministic for a seed on CPU (build the model under :func:`seeded` for identical weights).
    """

    def __init__(self, model: nn.Module, train: ImageDataset, config: TrainConfig, *,
                 val: ImageDataset | None = None, callbacks: Sequence[Callback] = (),
                 progress: bool = False, diverge_loss: float = DIVERGE_LOSS) -> None:
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.diverge_loss = check_real("diverge_loss", diverge_loss)
        if self.diverge_loss <= 0:
            raise ValueError(f"diverge_loss must be positive, got {diverge_loss!r}")
        self.reason: str | None = None  # why the run diverged
        self.device = resolve_device(config.device)
        cuda = self.device.type == "cuda"
        self.amp = bool(config.amp and cuda)
        # channels_last: faster convolutions with cuDNN and with oneDNN on CPU (1.1-1.7x on the
        # reduced networks here, bench/throughput.py); MPS keeps the default layout.
        cl = bool(config.channels_last and self.device.type in ("cuda", "cpu"))
        self.model = model.to(self.device)
        if cl:
            # Module.to takes memory_format at run time; torch's typed overloads leave it out.
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.loader = DeviceLoader(train, config.batch_size, device=self.device, seed=config.seed,
                                   augment=config.augment, resize=config.resize,
                                   channels_last=cl)
        self.val_loader = None if val is None else DeviceLoader(
            val, config.eval_batch_size, device=self.device, train=False, resize=config.resize,
            channels_last=cl)
        self.total_steps = config.total_steps(len(self.loader))
        self.params = [p for _, p in trainable_parameters(self.model)]
        self.optimizer = _make_optimizer(config, self.params)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_factor(config, self.total_steps))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.recorder: SnapshotRecorder | None = None
        if config.snapshot_every is not None:
            example = torch.zeros(1, *self.loader.image_shape, device=self.device)
            layers = parameterised_layers(self.model, example)
            self.recorder = SnapshotRecorder(layers, snapshot_every=config.snapshot_every,
                                             max_layers=config.snapshot_layers,
                                             sample_size=config.snapshot_sample,
                                             seed=config.seed)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.step = 0
        self.status = "running"
        self.wall_seconds = 0.0
        self._curves: list[dict[str, float]] = []
        self._evals: list[dict[str, float]] = []
        self._stop = False
        self._run_start: float | None = None  # perf_counter at the start of the run in progress
        self._eval_steps = set(config.eval_at)
        self._acc_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self._acc = torch.zeros(3, dtype=self._acc_dtype, device=self.device)
        #: torch CPU threads while :meth:`run` trains (see ``workbench._threads``; None: torch's
        #: own setting, as when the user set ``$WORKBENCH_THREADS`` or called set_num_threads).
        self.threads = training_threads()
        #: torch CPU threads the last :meth:`run` actually trained with (recorded in the
        #: result's metrics as ``threads``: CPU reruns are bit-identical only with the same count).
        self.threads_used: int | None = None

    # -- control --------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask a running :meth:`run` to stop after the current mini-batch (e.g. a Stop button)."""
        self._stop = True

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        per_epoch = len(self.loader)
        epoch, offset = divmod(self.step, per_epoch)
        while True:
            yield from self.loader.epoch(epoch, start=offset)
            epoch, offset = epoch + 1, 0

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- the loop ---------------------------------------------------------------------------
    def run(self, until: int | None = None) -> TrainResult:
        """Train up to mini-batch ``until`` (default: the whole budget) and return the result.

        Trains with :attr:`threads` torch CPU threads (restored afterwards), so that a busy
        machine's cores are not oversubscribed.
        """
        with use_threads(self.threads):
            self.threads_used = torch.get_num_threads()
            return self._run(until)

    def _run(self, until: int | None) -> TrainResult:
        target = self.total_steps if until is None else until
        target = check_int("until", target, minimum=1)
        if target > self.total_steps:
            raise ValueError(f"until={target} exceeds the budget of {self.total_steps} "
                             "mini-batches (the cosine schedule is planned over the budget)")
        if self.status == "diverged":
            return self.result()
        self.status, self._stop = "running", False
        cfg, model = self.config, self.model
        model.train()
        acc = self._acc  # [loss sum, correct, seen] since the last curve point, on the device
        start = time.perf_counter()
        self._run_start = start
        bar = tqdm(total=target, initial=self.step, disable=not self.progress, desc="train",
                   leave=False)
        batches = self._batches()
        try:
            while self.step < target and not self._stop:
                x, y = next(batches)
                with self._autocast():
                    out = model(x)
                    loss = self.criterion(out.float(), y)
                if not torch.isfinite(loss):
                    self._diverge(f"non-finite training loss at mini-batch {self.step + 1}")
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
                self.step += 1
                if self.recorder is not None and self.recorder.maybe_record(self.step):
                    for cb in self.callbacks:
                        cb.on_snapshot(self, self.step)
                lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                acc += torch.stack([loss.detach() * y.numel(),
                                    (out.detach().argmax(1) == y).sum().float(),
                                    torch.tensor(float(y.numel()), device=self.device)])
                bar.update(1)
                if self.step % cfg.curve_every == 0 or self.step == self.total_steps:
                    self._log_curve(lr)
                    if self._exploded("training", self._curves):
                        break
                if self.val_loader is not None and self._due_eval():
                    self.evaluate()
                    model.train()
                    if self._exploded("held-out", self._evals):
                        break
        finally:
            bar.close()
            self.wall_seconds += time.perf_counter() - start
            self._run_start = None
        if self.status == "running" and self.recorder is not None:
            self._check_snapshots()
        if self.status == "running":
            self.status = "stopped" if self.step < self.total_steps else "done"
            if self.val_loader is not None and (not self._evals
                                                or self._evals[-1]["step"] != self.step):
                self.evaluate()
        res = self.result()
        for cb in self.callbacks:
            cb.on_end(self, res)
        return res

    def _diverge(self, reason: str) -> None:
        self.status, self.reason = "diverged", reason

    def _exploded(self, which: str, rows: list[dict[str, float]]) -> bool:
        """Mark the run diverged if the last ``which`` loss is non-finite or above the limit."""
        if not rows:
            return False
        key = "train_loss" if which == "training" else "val_loss"
        value = rows[-1].get(key, 0.0)
        if math.isfinite(value) and value <= self.diverge_loss:
            return False
        self._diverge(f"{which} loss {value:.4g} at mini-batch {self.step} exceeds "
                      f"diverge_loss={self.diverge_loss:g}")
        return True

    def _check_snapshots(self) -> None:
        """Mark the run diverged if any snapshot statistic is NaN or infinite."""
        assert self.recorder is not None
        snaps = self.recorder.snapshots()
        for name, arr in snaps.to_arrays().items():
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                self._diverge(f"snapshot statistics {name!r} hold "
                              f"{int((~np.isfinite(arr)).sum())} NaN or inf values")
                return

    def _due_eval(self) -> bool:
        every = self.config.eval_every
        return self.step in self._eval_steps or bool(every and self.step % every == 0)

    def _log_curve(self, lr: float) -> None:
        loss_sum, correct, seen = self._acc.tolist()  # one sync per curve point
        self._acc.zero_()
        if not seen:
            return
        row = {"step": self.step, "epoch": self.step / len(self.loader), "lr": lr,
               "train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen}
        self._curves.append(row)
        for cb in self.callbacks:
            cb.on_curve(self, row)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and accuracy (%) on the held-out split; appended to ``evals`` with the wall
        seconds trained so far (so a search reusing this run can charge an earlier step exactly)."""
        if self.val_loader is None:
            raise ValueError("no validation data: pass val= to the Trainer")
        wall = self.wall_seconds + (0.0 if self._run_start is None
                                    else time.perf_counter() - self._run_start)
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for x, y in self.val_loader.epoch(0):
            with self._autocast():
                out = self.model(x).float()
            loss_sum += nn.functional.cross_entropy(out, y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
        n = self.val_loader.num_samples
        stats = torch.stack([loss_sum, correct.float()]).cpu()
        row = {"step": self.step, "val_loss": float(stats[0]) / n,
               "val_acc": 100.0 * float(stats[1]) / n, "wall_seconds": wall}
        self._evals.append(row)
        for cb in self.callbacks:
            cb.on_eval(self, row)
        return row

    # -- results and state --------------------------------------------------------------------
    def result(self) -> TrainResult:
        """The run so far as a :class:`TrainResult`."""
        curves = pd.DataFrame(self._curves, columns=["step", "epoch", "lr", "train_loss",
                                                     "train_acc"])
        evals = pd.DataFrame(self._evals, columns=["step", "val_loss", "val_acc", "wall_seconds"])
        metrics: dict[str, float] = {"steps": float(self.step)}
        if self.threads_used is not None:
            metrics["threads"] = float(self.threads_used)
        if len(curves):
            metrics["train_loss"] = float(curves["train_loss"].iloc[-1])
            metrics["train_acc"] = float(curves["train_acc"].iloc[-1])
        if len(evals):
            metrics["val_loss"] = float(evals["val_loss"].iloc[-1])
            metrics["val_acc"] = float(evals["val_acc"].iloc[-1])
        snaps = self.recorder.snapshots() if self.recorder is not None else None
        return TrainResult(self.status, self.step, self.total_steps, self.wall_seconds, curves,
                           evals, snaps, metrics, self.reason if self.status == "diverged"
                           else None)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this run is (tensors and plain types)."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "status": self.status,
            "wall_seconds": self.wall_seconds,
            "curves": [dict(r) for r in self._curves],
            "evals": [dict(r) for r in self._evals],
            "partial_curve": self._acc.cpu(),
            "config": self.config.to_dict(),
        }
        if self.recorder is not None:
            state["recorder"] = self.recorder.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the config's budget-defining fields must match."""
        saved = TrainConfig.from_dict(state["config"])
        for name in ("batch_size", "optimizer", "schedule", "seed", "snapshot_every",
                     "resize", "augment"):
            if getattr(saved, name) != getattr(self.config, name):
                raise ValueError(f"checkpoint was made with {name}={getattr(saved, name)!r}, "
                                 f"this trainer has {getattr(self.config, name)!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.status = str(state["status"])
        self.wall_seconds = float(state["wall_seconds"])
        self._curves = [dict(r) for r in state["curves"]]
        self._evals = [dict(r) for r in state["evals"]]
        self._acc = state["partial_curve"].to(self.device, self._acc_dtype)
        if self.recorder is not None and "recorder" in state:
            self.recorder.load_state_dict(state["recorder"])


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (e.g. building a model) with torch's RNG seeded, restoring it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
