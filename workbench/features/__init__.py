"""NAP2 white-box features: per-layer weight and gradient statistics recorded during training.

:class:`SnapshotRecorder` records them cheaply on the device, in any training loop of any
``nn.Module`` (``SnapshotRecorder(model, every=10)``, then ``maybe_record()`` after each
backward); :class:`Snapshots` holds the
result (arrays, ``.npz`` round trip, tidy DataFrame). Definitions: ``workbench.features._schema``.
"""

from workbench.features._recorder import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_SAMPLE_SIZE,
    ORDERS,
    SnapshotRecorder,
    layer_kind,
    model_layers,
)
from workbench.features._schema import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    FEATURE_SOURCES,
    LAYER_KINDS,
    NEAR_ZERO_REL,
    QUANTILES,
    check_schema,
)
from workbench.features._snapshots import Snapshots

__all__ = [
    "DEFAULT_MAX_LAYERS",
    "DEFAULT_SAMPLE_SIZE",
    "FEATURE_NAMES",
    "FEATURE_SCHEMA_VERSION",
    "FEATURE_SOURCES",
    "LAYER_KINDS",
    "NEAR_ZERO_REL",
    "ORDERS",
    "QUANTILES",
    "SnapshotRecorder",
    "Snapshots",
    "check_schema",
    "layer_kind",
    "model_layers",
]
