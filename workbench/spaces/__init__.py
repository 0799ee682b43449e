"""Search spaces: NAS-Bench-101 and NAS-Bench-201 cells, their validation, encodings and networks.

Use :func:`get_space` (``"nb101"`` or ``"nb201"``) for the common :class:`SearchSpace` interface,
or the cell classes directly.
:class:`ChannelSpace` is a plain CNN whose layer widths are searched (not a registered cell space).
"""

from workbench.spaces._base import (
    RngLike,
    SearchSpace,
    as_rng,
    get_space,
    list_spaces,
    register_space,
)
from workbench.spaces._channels import ChannelSpace
from workbench.spaces._layers import count_parameters, parameterised_layers, trainable_parameters
from workbench.spaces._nb101 import NB101_OPS, NB101Cell, NB101Space
from workbench.spaces._nb201 import (
    NB201_EDGES,
    NB201_OPS,
    NB201Cell,
    NB201Network,
    NB201Space,
    count_nb201_params,
)

__all__ = [
    "NB101_OPS",
    "NB201_EDGES",
    "NB201_OPS",
    "ChannelSpace",
    "NB101Cell",
    "NB101Space",
    "NB201Cell",
    "NB201Network",
    "NB201Space",
    "RngLike",
    "SearchSpace",
    "as_rng",
    "count_nb201_params",
    "count_parameters",
    "get_space",
    "list_spaces",
    "parameterised_layers",
    "register_space",
    "trainable_parameters",
]
