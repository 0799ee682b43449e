"""Benchmark `overhead`: cost of weight/gradient snapshots during training.

The same model and data are trained with snapshots never, every 100 mini-batches and every
mini-batch, the three modes interleaved over repeats in one process (so drift in machine load hits
all of them alike); the median ratio to plain training is reported. Two configurations: the
reduced CPU one (NB101 'small' preset: stem 16, one cell per stack, 16x16 inputs) trained end to
end, and the paper-size NB101 network (stem 128, 3x3 cells, 32x32) for a few steps, where the
every-100 cost is also derived from the measured per-snapshot cost (1 + t_record / (100 t_step)).

    python bench/overhead.py [--repeats 5] [--steps 200] [--paper-steps 4]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import Timer, write_results

from workbench.data import load_dataset
from workbench.features import SnapshotRecorder
from workbench.spaces import get_space, parameterised_layers
from workbench.training import TrainConfig, Trainer, seeded

# A cell from the NB101 table with all three op types.
CELL = ("0100110/0010000/0001001/0000010/0000010/0000001/0000000|input,conv3x3-bn-relu,"
        "maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output")
MODES = {"never": None, "every_100": 100, "every_step": 1}


def _run(data, preset: str, steps: int, snapshot_every: int | None, resize: int | None,
         batch: int) -> float:
    space = get_space("nb101")
    with seeded(0):
        model = space.build(space.parse(CELL), **space.model_kwargs(preset))
    cfg = TrainConfig(steps=steps, batch_size=batch, resize=resize,
                      snapshot_every=snapshot_every, curve_every=10)
    trainer = Trainer(model, data, cfg)
    trainer.run(until=1)  # warm-up step excluded from the timing
    with Timer() as t:
        trainer.run()
    return t.seconds / (steps - 1)


def _interleaved(data, preset, steps, resize, batch, repeats) -> dict[str, float]:
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(repeats):
        for mode, every in MODES.items():
            times[mode].append(_run(data, preset, steps, every, resize, batch))
    return {m: statistics.median(v) for m, v in times.items()}


def _record_cost(data, batch: int) -> tuple[float, float]:
    """(seconds per training step, seconds per snapshot) of the paper-size network."""
    space = get_space("nb101")
    with seeded(0):
        model = space.build(space.parse(CELL), **space.model_kwargs("paper"))
    cfg = TrainConfig(steps=10, batch_size=batch, snapshot_every=None)
    trainer = Trainer(model, data, cfg)
    trainer.run(until=2)
    with Timer() as t_step:
        trainer.run(until=5)
    # Gradients of the last step are still in .grad: record them with a fresh recorder.
    example = torch.zeros(1, 3, 32, 32)
    rec = SnapshotRecorder(parameterised_layers(trainer.model, example), snapshot_every=1)
    rec.record(1)  # first call builds the index (once per run)
    with Timer() as t_rec:
        for i in range(2, 5):
            rec.record(i)
    return t_step.seconds / 3, t_rec.seconds / 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--paper-steps", type=int, default=4)
    ap.add_argument("--paper-batch", type=int, default=64)
    args = ap.parse_args()
    data = load_dataset("cifar10", "train")
    rows = []
    small = _interleaved(data, "small", args.steps, 16, 64, args.repeats)
    rows.append({"config": "reduced (NB101 small, 16x16, batch 64)", "steps": args.steps,
                 **{f"s_per_step_{m}": v for m, v in small.items()},
                 "ratio_every_100": small["every_100"] / small["never"],
                 "ratio_every_step": small["every_step"] / small["never"]})
    paper = _interleaved(data, "paper", args.paper_steps + 1, None, args.paper_batch,
                         max(1, args.repeats // 2))
    step_s, rec_s = _record_cost(data, args.paper_batch)
    rows.append({"config": f"paper (NB101 stem 128, 3x3 cells, 32x32, batch {args.paper_batch})",
                 "steps": args.paper_steps,
                 **{f"s_per_step_{m}": v for m, v in paper.items()},
                 "ratio_every_100": paper["every_100"] / paper["never"],
                 "ratio_every_step": paper["every_step"] / paper["never"],
                 "s_per_record": rec_s, "s_per_step_isolated": step_s,
                 "ratio_every_100_derived": 1 + rec_s / (100 * step_s),
                 "ratio_every_step_derived": 1 + rec_s / step_s})
    path = write_results("overhead", {"repeats": args.repeats, "rows": rows,
                                      "goal": "every_100 <= 1.01x, every_step <= 1.25x"})
    print("| config | never s/step | every-100 | every-step |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['s_per_step_never']:.4f} | {r['ratio_every_100']:.3f}x | "
              f"{r['ratio_every_step']:.3f}x |")
    print(f"paper-size derived: every-100 {rows[1]['ratio_every_100_derived']:.4f}x, "
          f"every-step {rows[1]['ratio_every_step_derived']:.3f}x "
          f"(record {rec_s * 1e3:.1f} ms, step {step_s * 1e3:.0f} ms)")
    print(f"written {path}; torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
