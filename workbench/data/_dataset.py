"""The immutable image-dataset container and its class-stratified train/validation split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench._checks import check_int, check_real


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with integer labels, class names and where they came from; read-only.

    ``images`` is uint8 NCHW ``[N, 3, H, W]`` (the layout of the official CIFAR rows, and what
    torch models take), ``labels`` int64 ``[N]`` in ``range(len(classes))``. Both are read-only
    views. ``source`` names the file or folder read, ``description`` what the data is.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str
    description: str = field(default="")

    def __post_init__(self) -> None:
        images = np.ascontiguousarray(self.images)
        labels = np.asarray(self.labels)
        classes = tuple(str(c) for c in self.classes)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"images must be uint8 [N, C, H, W] with C in (1, 3), got {images.dtype} "
                f"{images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(
            labels.dtype, np.integer
        ):
            raise ValueError(
                f"labels must be integers [N] with N={len(images)}, got {labels.dtype} "
                f"{labels.shape}"
            )
        if not classes:
            raise ValueError("classes must name at least one class")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(
                f"labels must lie in [0, {len(classes)}), got [{labels.min()}, {labels.max()}]"
            )
        object.__setattr__(self, "images", _read_only(images))
        object.__setattr__(self, "labels", _read_only(labels.astype(np.int64, copy=False)))
        object.__setattr__(self, "classes", classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape={tuple(self.images.shape[1:])}, classes={len(self.classes)}, "
            f"source={self.source!r})"
        )

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``), whether or not all occur in this split."""
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """Samples per class, int64 ``[num_classes]``."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices: np.ndarray, *, split: str | None = None,
               description: str | None = None) -> ImageDataset:
        """A new dataset holding the samples at ``indices`` (copied, in the order given)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            name=self.name,
            split=self.split if split is None else split,
            images=self.images[idx],
            labels=self.labels[idx],
            classes=self.classes,
            source=self.source,
            description=self.description if description is None else description,
        )


def _stratified_counts(counts: np.ndarray, n_val: int) -> np.ndarray:
    """Validation samples per class: proportional to ``counts``, summing to ``n_val`` exactly."""
    quota = counts * (n_val / counts.sum())
    take = np.floor(quota).astype(np.int64)
    # Largest remainders get the leftover samples (ties: lower class index first).
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n_val - take.sum()]] += 1
    return np.minimum(take, counts)


def train_val_split(dataset: ImageDataset, *, val_fraction: float | None = None,
                    val_size: int | None = None, seed: int = 0
                    ) -> tuple[ImageDataset, ImageDataset]:
    """Split ``dataset`` into (train, val), class-stratified and deterministic for ``seed``.

    Give exactly one of ``val_fraction`` (in (0, 1)) or ``val_size`` (in [1, N-1]). Each class
    contributes in proportion to its size; both parts keep the original sample order.
    """
    n = len(dataset)
    if (val_fraction is None) == (val_size is None):
        raise ValueError("give exactly one of val_fraction or val_size")
    if val_fraction is not None:
        n_val = round(check_real("val_fraction", val_fraction, minimum=0, maximum=1,
                                 inclusive="neither") * n)
    else:
        n_val = check_int("val_size", val_size)
    if not 1 <= n_val <= n - 1:
        raise ValueError(
            f"the split would leave {n_val} validation and {n - n_val} training samples out "
            f"of {n}; both must be at least 1"
        )
    check_int("seed", seed, minimum=0)

    rng = np.random.default_rng(seed)
    counts = dataset.class_counts()
    take = _stratified_counts(counts, n_val)
    is_val = np.zeros(n, dtype=bool)
    for c in range(dataset.num_classes):
        if take[c]:
            members = np.flatnonzero(dataset.labels == c)
            is_val[rng.choice(members, size=int(take[c]), replace=False)] = True
    note = f"stratified split (seed={seed}, {int(is_val.sum())} val of {n})"
    desc = f"{dataset.description}; {note}" if dataset.description else note
    train = dataset.subset(np.flatnonzero(~is_val), description=desc)
    val = dataset.subset(np.flatnonzero(is_val), split="val", description=desc)
    return train, val
