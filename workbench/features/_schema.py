"""The versioned NAP2 feature schema: feature names, their order and the fixed constants.

Bump ``FEATURE_SCHEMA_VERSION`` whenever a name, the order or a definition below changes, so that
stored snapshots computed under another definition are refused instead of silently mixed.

Per layer, two tensors are described: its *weights* (the module's ``weight`` only; a bias is left
out so that every kind means the same thing and batch-norm gamma ~1 is not mixed with beta ~0)
and its *gradients* (``weight.grad``). A recorder given a whole model takes every trainable
non-bias parameter as a layer (``in_proj_weight`` of attention, a bare ``nn.Parameter``), which
for convolution, norm and linear layers is again their ``weight``. Definitions (x = the tensor):

- ``mean``, ``std``, ``min``, ``max``, ``abs_mean``, ``q05`` ... ``q95``, ``frac_near_zero``,
  ``skew``, ``kurtosis``: of a fixed, seeded sample of at most ``sample_size`` values of x (all
  of x when it is smaller). ``std`` is the population one (ddof=0, numpy's default); quantiles
  interpolate linearly (numpy's default method); ``skew`` = m3 / m2**1.5 and ``kurtosis`` =
  m4 / m2**2 - 3 (excess, biased: scipy.stats' defaults); ``std``, ``skew`` and ``kurtosis`` are
  0 when the sample is constant (spread below float32 resolution of its largest |value|).
  ``frac_near_zero`` is the fraction of sampled values with |v| <= NEAR_ZERO_REL * rms(x), rms of
  the full tensor (so an all-zero tensor gives 1).
- ``l2_norm``: ||x||_2 of the full tensor.
- ``diff_norm`` = ||x - x_prev||_2, ``rel_change`` = diff_norm / ||x_prev||_2 and ``cosine`` =
  <x, x_prev> / (||x|| ||x_prev||), full tensors, x_prev = the same tensor at the previous
  snapshot (weights vs weights, gradients vs gradients). All three are 0 when undefined: at the
  first snapshot, when the previous gradient was missing, or when a norm in a denominator is 0.
- A gradient that is ``None`` (no backward yet, or the layer got none) gives all-zero features.
"""

from __future__ import annotations

from collections.abc import Sequence

FEATURE_SCHEMA_VERSION: int = 1
QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
NEAR_ZERO_REL: float = 0.1
SAMPLE_FEATURES: tuple[str, ...] = (
    "mean",
    "std",
    "min",
    "max",
    "abs_mean",
    "q05",
    "q25",
    "q50",
    "q75",
    "q95",
    "frac_near_zero",
    "skew",
    "kurtosis",
)
NORM_FEATURES: tuple[str, ...] = ("l2_norm", "diff_norm", "rel_change", "cosine")
FEATURE_NAMES: tuple[str, ...] = SAMPLE_FEATURES + NORM_FEATURES
FEATURE_SOURCES: tuple[str, ...] = ("weights", "grads")
#: Layer kinds (metadata, not features; adding one leaves stored snapshots valid): NAS cells have
#: the first three; any model's recorder adds norms, attention, embeddings, recurrent and other.
LAYER_KINDS: tuple[str, ...] = ("conv", "bn", "linear", "norm", "attention", "embedding",
                                "recurrent", "other")


def check_schema(version: int, feature_names: Sequence[str] | None = None) -> None:
    """Raise ValueError unless ``version`` (and ``feature_names`` if given) match this schema."""
    if int(version) != FEATURE_SCHEMA_VERSION:
        raise ValueError(
            f"feature schema version {int(version)} does not match the current version "
            f"{FEATURE_SCHEMA_VERSION}; recompute the snapshots with this workbench version"
        )
    if feature_names is not None and tuple(str(n) for n in feature_names) != FEATURE_NAMES:
        raise ValueError(
            f"feature names {tuple(str(n) for n in feature_names)} do not match schema version "
            f"{FEATURE_SCHEMA_VERSION}: expected {FEATURE_NAMES}"
        )
