"""Setting up the training of one cell: its splits, its seeded network and its Trainer, the one
implementation behind collect's workers, the training backends, the widgets and LayerNAS."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from workbench.data import DataCache, num_classes, process_cache
from workbench.spaces import SearchSpace, get_space
from workbench.training._config import TrainConfig
from workbench.training._trainer import Callback, Trainer, seeded


def build_trainer(space: str | SearchSpace | Any, cell: Any, config: TrainConfig, *,
                  dataset: str = "cifar10", data: Mapping[str, Any] | None = None,
                  model: str | Mapping[str, Any] | None = None, cache: DataCache | None = None,
                  callbacks: Sequence[Callback] = (), progress: bool = False) -> Trainer:
    """A fresh :class:`Trainer` for ``cell`` (a cell or cell string), ready to :meth:`~Trainer.run`.

    The network is built under ``seeded(config.seed)``, so it has the same weights wherever it
    is built; for a :class:`~workbench.spaces.SearchSpace` (or its name) with ``dataset``'s
    classes and the builder arguments of ``model`` (a preset name or a dict; None: ``"small"``),
    for any other object with ``build(cell) -> nn.Module`` (a LayerNAS channel space) as it
    builds it (``model`` must then be None). The data are ``dataset``'s training splits as the
    data config ``data`` describes them (see :class:`~workbench.data.DataCache`; None: the whole
    training set, no held-out split), from ``cache`` (default: this process's cache).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {config!r}")
    sp = get_space(space) if isinstance(space, str) else space
    build: Callable[[], nn.Module]
    if isinstance(sp, SearchSpace):
        obj = sp.parse(cell) if isinstance(cell, str) else cell
        kwargs = sp.model_kwargs("small" if model is None else dict(model)
                                 if isinstance(model, Mapping) else model)
        classes = num_classes(dataset)

        def build() -> nn.Module:
            return sp.build(obj, num_classes=classes, **kwargs)
    elif callable(getattr(sp, "build", None)):
        if model is not None:
            raise ValueError(f"model={model!r}: builder arguments apply to a SearchSpace; "
                             f"{sp!r} builds its networks itself (pass model=None)")

        def build() -> nn.Module:
            return sp.build(cell)
    else:
        raise ValueError(f"space must be a space name, a SearchSpace or an object with "
                         f"build(cell), got {space!r}")
    train, val = (process_cache() if cache is None else cache).get(dataset, data)
    with seeded(config.seed):
        net = build()
    return Trainer(net, train, config, val=val, callbacks=callbacks, progress=progress)
