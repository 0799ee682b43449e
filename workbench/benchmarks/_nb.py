"""The two bundled tables: NAS-Bench-101 (1k sample) and NAS-Bench-201 (all 15,625 cells)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from workbench.benchmarks._benchmark import Fidelity, TabularBenchmark, register_benchmark
from workbench.benchmarks._cost import NB201CostModel


@register_benchmark("nb101")
class NB101Benchmark(TabularBenchmark):
    """NAS-Bench-101, 1,000 uniformly sampled cells: CIFAR-10 validation accuracy at 4/12/36/108
    epochs (one run each). Cost: the measured TPU seconds of the 108-epoch run, pro rata."""

    name = "nb101"
    space_name = "nb101"
    id_column = "hash"
    id_pattern = "[0-9a-f]{32}"
    fidelities: ClassVar[tuple[Fidelity, ...]] = tuple(
        Fidelity("cifar10", e, "val", f"val_acc_{e}", 100.0) for e in (4, 12, 36, 108)
    )
    final: ClassVar[dict[str, Fidelity]] = {"cifar10": fidelities[-1]}

    def _cell_strings(self) -> np.ndarray:
        return (self.raw["matrix"] + "|" + self.raw["ops"]).to_numpy()

    def _params(self) -> np.ndarray:
        return self.raw["params"].to_numpy(dtype=np.int64)

    def _cost_row(self, row: pd.Series, *, dataset: str, epochs: float) -> float:
        return float(row["train_seconds_108"]) / 108.0 * epochs


_NB201_DS = {"cifar10": "c10", "cifar100": "c100", "ImageNet16-120": "in16"}


@register_benchmark("nb201")
class NB201Benchmark(TabularBenchmark):
    """NAS-Bench-201, all 15,625 cells on CIFAR-10, CIFAR-100 and ImageNet16-120: accuracy after
    the 12-epoch schedule (val and test) and test accuracy after 200 epochs (mean over seeds).

    Cost: :class:`NB201CostModel` (modelled from the cell's exact MACs; the table has no times).
    The published NASWOT score is available through :meth:`naswot`.
    """

    name = "nb201"
    space_name = "nb201"
    id_column = "index"
    id_pattern = "[0-9]+"
    fidelities: ClassVar[tuple[Fidelity, ...]] = tuple(
        Fidelity(ds, e, split, f"{p}_{split}_{e}", 1.0)
        for ds, p in _NB201_DS.items()
        for e, split in ((12, "val"), (12, "test"), (200, "test"))
    )
    final: ClassVar[dict[str, Fidelity]] = {
        ds: Fidelity(ds, 200, "test", f"{p}_test_200", 1.0) for ds, p in _NB201_DS.items()
    }

    def __init__(self, cost_model: NB201CostModel | None = None) -> None:
        super().__init__()
        self.cost_model = cost_model or NB201CostModel()

    def _cell_strings(self) -> np.ndarray:
        return self.raw["arch"].to_numpy()

    def _params(self) -> np.ndarray:
        return np.rint(self.raw["params_m"].to_numpy() * 1e6).astype(np.int64)

    def _cost_row(self, row: pd.Series, *, dataset: str, epochs: float) -> float:
        ops = self.space.parse(row["arch"]).ops
        return self.cost_model.seconds_per_epoch(ops, dataset=dataset) * epochs

    def naswot(self) -> pd.Series:
        """The published NASWOT score of each cell (NaN where not computed), by cell id."""
        return pd.Series(self.raw["naswot_score"].to_numpy(), index=self._ids, name="naswot")
