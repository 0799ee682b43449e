"""The training backend on Ray: a whole batch of evaluations (an SH rung) trains at once.

The driver ships each job's checkpoint state with its task, gets the new state back and saves
it as the sequential backend does, so nothing assumes a shared filesystem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from tqdm.auto import tqdm

from workbench.collect import (
    check_resources,
    import_ray,
    init_ray,
    remote_options,
    task_device,
    threads_for,
    to_cpu,
)
from workbench.search._base import Evaluation
from workbench.search._training_backend import (
    TrainingBackend,
    TrainingJob,
    TrainingOutput,
    run_job,
)
from workbench.training import build_trainer


class RayTrainingBackend(TrainingBackend):
    """A :class:`TrainingBackend` whose evaluations train as Ray tasks: the candidates of a
    Successive Halving rung (any batch a search evaluates at once) train in parallel on the
    cluster, with the same results as the sequential backend for the same seeds.

    The driver keeps every checkpoint (its folder or run store, as the sequential backend
    does): a promoted candidate's trainer state is shipped with its task and the new state
    comes back with the result, so a candidate continues wherever it is scheduled and the
    cluster needs no shared filesystem (only ``workbench`` and the data on every node).
    Each task reserves ``num_cpus`` CPUs and ``num_gpus`` GPUs (fractions share a GPU; None:
    one if the cluster has GPUs). A task whose worker dies is retried up to ``max_retries``
    times; then the evaluation raises RuntimeError naming the cell. Ray: an already
    initialised one, else ``ray.init(address=ray_address)`` on first use. Every other argument
    is :class:`TrainingBackend`'s; ``device="auto"`` means the task's reserved GPU, else CPU.
    """

    def __init__(self, *args: Any, ray_address: str | None = None, num_cpus: float = 1,
                 num_gpus: float | None = None, max_retries: int = 3, **kwargs: Any) -> None:
        check_resources(num_cpus, num_gpus, max_retries)
        import_ray("RayTrainingBackend")
        super().__init__(*args, **kwargs)
        self.ray_address = ray_address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries

    def __repr__(self) -> str:
        return "Ray" + super().__repr__()

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """:meth:`TrainingBackend.evaluate`, trained as one Ray task."""
        return self.evaluate_many([(cell, budget, previous)])[0]

    def evaluate_many(self, requests: Sequence[tuple[Any, float, Evaluation | None]]
                      ) -> list[Evaluation]:
        """Train every ``(cell, budget, previous)`` request as a concurrent Ray task; the
        Evaluations come back in request order, checkpoints saved here in that order."""
        every = [self._job(c, b, p) for c, b, p in requests]  # all validated before any runs
        jobs = [job for job in every if job.reused is None]
        outs = self._train(jobs) if jobs else []
        trained = iter([self._finish(job, out) for job, out in zip(jobs, outs, strict=True)])
        return [job.reused if job.reused is not None else next(trained) for job in every]

    def _train(self, jobs: Sequence[TrainingJob]) -> list[TrainingOutput]:
        """Run ``jobs`` as Ray tasks and return their outputs in order (cancelling the rest
        when one fails or the driver is interrupted)."""
        ray = init_ray(self.ray_address)
        task = ray.remote(**remote_options(ray, self.num_cpus, self.num_gpus,
                                           self.max_retries))(_candidate_task)
        recipe = ray.put({"space": self.space, "model_kwargs": self.model_kwargs,
                          "config": self.config, "dataset": self.dataset, "data": self.data})
        threads = threads_for(self.num_cpus)
        # The worker needs neither the previous Evaluation nor its frames: only the state.
        refs = [task.remote(recipe, replace(job, previous=None), threads) for job in jobs]
        pending = list(refs)
        try:
            with tqdm(total=len(refs), disable=not self.progress, desc="train (ray)",
                      leave=False) as bar:
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1)
                    bar.update(len(ready))
            outs = []
            for job, ref in zip(jobs, refs, strict=True):
                try:
                    outs.append(ray.get(ref))
                except ray.exceptions.RayTaskError:
                    raise  # the training itself raised: the same error as sequentially
                except ray.exceptions.RayError as exc:
                    raise RuntimeError(
                        f"training {self.format(job.cell)!r} to {job.steps} mini-batches on "
                        f"Ray failed (worker deaths are retried up to max_retries="
                        f"{self.max_retries} times): {type(exc).__name__}: {exc}") from exc
        except BaseException:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
            raise
        return outs


def _candidate_task(recipe: dict[str, Any], job: TrainingJob, threads: int) -> TrainingOutput:
    """The body of a Ray evaluation task: build the candidate's trainer on this worker (its
    data decoded once per worker), continue the shipped state, return the new state on CPU."""
    torch.set_num_threads(threads)
    config = recipe["config"]
    config = config.replace(device=task_device(config.device))
    trainer = build_trainer(recipe["space"], job.cell, config, dataset=recipe["dataset"],
                            data=recipe["data"], model=recipe["model_kwargs"])
    out = run_job(trainer, job)
    return TrainingOutput(state=to_cpu(out.state), result=out.result,
                          wall_before=out.wall_before)
