"""The recorded NAP2 feature maps of one training run, and their array / DataFrame forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from workbench.features._schema import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    FEATURE_SOURCES,
    LAYER_KINDS,
    check_schema,
)

if TYPE_CHECKING:
    import pandas as pd

_ARRAY_KEYS = (
    "weights",
    "grads",
    "mask",
    "steps",
    "layer_names",
    "layer_kinds",
    "feature_names",
    "schema_version",
    "snapshot_every",
    "sample_size",
)


@dataclass(frozen=True, eq=False)
class Snapshots:
    """Per-layer weight and gradient features over time, zero-padded to ``max_layers`` layers.

    ``weights`` / ``grads``: float32 [S, max_layers, F]; ``mask``: bool [max_layers], true for the
    ``len(layer_names)`` real (leading) layers; ``steps``: int64 [S], the mini-batch of each
    snapshot (1-based, as passed to the recorder).
    """

    weights: np.ndarray
    grads: np.ndarray
    mask: np.ndarray
    steps: np.ndarray
    layer_names: tuple[str, ...]
    layer_kinds: tuple[str, ...]
    snapshot_every: int
    sample_size: int
    schema_version: int = FEATURE_SCHEMA_VERSION
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __post_init__(self) -> None:
        check_schema(self.schema_version, self.feature_names)
        n_snap, n_feat = self.steps.shape[0], len(self.feature_names)
        max_layers = self.mask.shape[0]
        for name in ("weights", "grads"):
            shape = getattr(self, name).shape
            if shape != (n_snap, max_layers, n_feat):
                raise ValueError(
                    f"{name} has shape {shape}, expected {(n_snap, max_layers, n_feat)} "
                    "(snapshots, max_layers, features)"
                )
        n_real = len(self.layer_names)
        if len(self.layer_kinds) != n_real or not np.array_equal(
            self.mask, np.arange(max_layers) < n_real
        ):
            raise ValueError(
                f"mask must mark the first {n_real} of {max_layers} layers and layer_kinds must "
                f"have {n_real} entries, got mask sum {int(self.mask.sum())} and "
                f"{len(self.layer_kinds)} kinds"
            )
        bad = sorted(set(self.layer_kinds) - set(LAYER_KINDS))
        if bad:
            raise ValueError(f"unknown layer kinds {bad}; expected some of {LAYER_KINDS}")

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    @property
    def max_layers(self) -> int:
        """The padded layer dimension (65 in NAP2)."""
        return int(self.mask.shape[0])

    @property
    def n_layers(self) -> int:
        """The number of real (unpadded) layers."""
        return len(self.layer_names)

    def truncate(self, step: int) -> Snapshots:
        """Only the snapshots taken at or before mini-batch ``step`` (what is known by then)."""
        keep = self.steps <= step
        return replace(
            self, weights=self.weights[keep], grads=self.grads[keep], steps=self.steps[keep]
        )

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Plain numpy arrays (names as fixed-width unicode, no object arrays) for ``.npz``."""
        arrays = {
            "weights": np.asarray(self.weights, dtype=np.float32),
            "grads": np.asarray(self.grads, dtype=np.float32),
            "mask": np.asarray(self.mask, dtype=bool),
            "steps": np.asarray(self.steps, dtype=np.int64),
            "layer_names": _unicode(self.layer_names),
            "layer_kinds": _unicode(self.layer_kinds),
            "feature_names": _unicode(self.feature_names),
            "schema_version": np.asarray(self.schema_version, dtype=np.int64),
            "snapshot_every": np.asarray(self.snapshot_every, dtype=np.int64),
            "sample_size": np.asarray(self.sample_size, dtype=np.int64),
        }
        return {prefix + key: value for key, value in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> Snapshots:
        """The inverse of ``to_arrays`` (also takes an open ``np.load`` file); checks the schema."""
        missing = [prefix + key for key in _ARRAY_KEYS if prefix + key not in arrays]
        if missing:
            raise ValueError(f"snapshot arrays are missing {missing}")
        get = {key: np.asarray(arrays[prefix + key]) for key in _ARRAY_KEYS}
        check_schema(int(get["schema_version"]), [str(n) for n in get["feature_names"]])
        return cls(
            weights=get["weights"].astype(np.float32, copy=False),
            grads=get["grads"].astype(np.float32, copy=False),
            mask=get["mask"].astype(bool, copy=False),
            steps=get["steps"].astype(np.int64, copy=False),
            layer_names=tuple(str(n) for n in get["layer_names"]),
            layer_kinds=tuple(str(k) for k in get["layer_kinds"]),
            snapshot_every=int(get["snapshot_every"]),
            sample_size=int(get["sample_size"]),
            schema_version=int(get["schema_version"]),
            feature_names=tuple(str(n) for n in get["feature_names"]),
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy long table (one row per step, source, layer, feature) of the real layers."""
        import pandas as pd  # lazy: training processes that only record need no pandas

        n_snap, n_real, n_feat = len(self), self.n_layers, len(self.feature_names)
        values = np.stack([self.weights[:, :n_real], self.grads[:, :n_real]], axis=1)
        s, src, layer, feat = (
            idx.ravel() for idx in np.indices((n_snap, len(FEATURE_SOURCES), n_real, n_feat))
        )
        names = np.asarray(self.layer_names, dtype=object)
        kinds = np.asarray(self.layer_kinds, dtype=object)
        return pd.DataFrame(
            {
                "step": self.steps[s],
                "layer": layer.astype(np.int64),
                "layer_name": names[layer],
                "kind": kinds[layer],
                "source": np.asarray(FEATURE_SOURCES, dtype=object)[src],
                "feature": np.asarray(self.feature_names, dtype=object)[feat],
                "value": values.ravel().astype(np.float64),
            }
        )


def _unicode(items: tuple[str, ...]) -> np.ndarray:
    """A fixed-width unicode array (``<U1`` when empty) of ``items``."""
    return np.asarray(list(items), dtype=str) if items else np.zeros(0, dtype="<U1")
