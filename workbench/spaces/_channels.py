"""A plain CNN whose layer widths are the architecture: candidates, exact costs and networks.

Not a cell space (no benchmark table, not in ``list_spaces()``): LayerNAS searches it layer by
layer (``workbench.search.channel_space``), one width per conv layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import nn

from workbench._checks import check_int


class ChannelSpace:
    """A plain CNN: ``n_layers`` 3x3 conv-BN-ReLU layers whose widths are chosen from
    ``widths``, then global average pooling and a linear classifier. Stride 2 on every second
    layer by default. A candidate is a tuple of one width per layer.

    ``params`` (exact parameter count) and ``madds`` (multiply-adds of the convolutions and
    the classifier; BN, ReLU and pooling omitted as usual) are computed analytically.
    """

    #: The default width options of every layer.
    DEFAULT_WIDTHS: ClassVar[tuple[int, ...]] = (8, 16, 24, 32, 40, 48, 56, 64)

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, n_layers: int = 5, *,
                 in_channels: int = 3, num_classes: int = 10, resolution: int = 32,
                 strides: Sequence[int] | None = None) -> None:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
            raise ValueError(f"widths must be a non-empty list of ints, got {widths!r}")
        widths = tuple(check_int("each width", w, minimum=1) for w in widths)
        if len(set(widths)) != len(widths):
            raise ValueError(f"widths must not repeat a value, got {widths!r}")
        self.widths = widths
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.resolution = check_int("resolution", resolution, minimum=1)
        if strides is None:
            strides = tuple(2 if i % 2 else 1 for i in range(self.n_layers))
        if isinstance(strides, (str, bytes)) or not isinstance(strides, Sequence) or len(
                strides) != self.n_layers:
            raise ValueError(f"strides must be a list of n_layers={self.n_layers} ints, "
                             f"got {strides!r}")
        self.strides = tuple(check_int("each stride", s, minimum=1) for s in strides)

    def __repr__(self) -> str:
        return (f"ChannelSpace(widths={list(self.widths)}, n_layers={self.n_layers}, "
                f"strides={list(self.strides)}, num_classes={self.num_classes}, "
                f"resolution={self.resolution})")

    def check(self, candidate: Sequence[int]) -> tuple[int, ...]:
        """``candidate`` as a tuple of ints after checking it has one allowed width per layer."""
        if isinstance(candidate, (str, bytes)) or not isinstance(candidate, Sequence):
            raise ValueError(f"a candidate must be a sequence of {self.n_layers} widths, "
                             f"got {candidate!r}")
        if len(candidate) != self.n_layers:
            raise ValueError(f"candidate {candidate!r} has {len(candidate)} widths; the space "
                             f"has {self.n_layers} layers")
        for i, w in enumerate(candidate, start=1):
            if isinstance(w, bool) or w not in self.widths:
                raise ValueError(f"candidate {candidate!r}: width {w!r} of layer {i} is not one "
                                 f"of {list(self.widths)}")
        return tuple(int(w) for w in candidate)

    def sizes(self) -> list[int]:
        """Output resolution of each conv layer (3x3, padding 1)."""
        h, out = self.resolution, []
        for s in self.strides:
            h = (h - 1) // s + 1
            out.append(h)
        return out

    def params(self, candidate: Sequence[int]) -> int:
        """Trainable parameters: conv weights (no bias), BN scale and shift, classifier."""
        c_in, total = self.in_channels, 0
        for w in self.check(candidate):
            total += 9 * c_in * w + 2 * w
            c_in = w
        return total + c_in * self.num_classes + self.num_classes

    def madds(self, candidate: Sequence[int]) -> int:
        """Multiply-adds of one image: 9 x c_in x c_out per output pixel, plus the classifier."""
        c_in, total = self.in_channels, 0
        for w, h in zip(self.check(candidate), self.sizes(), strict=True):
            total += 9 * c_in * w * h * h
            c_in = w
        return total + c_in * self.num_classes

    def build(self, candidate: Sequence[int]) -> nn.Module:
        """A freshly initialised network for ``candidate`` (one width per layer)."""
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for w, s in zip(self.check(candidate), self.strides, strict=True):
            layers += [nn.Conv2d(c_in, w, 3, stride=s, padding=1, bias=False),
                       nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c_in = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, self.num_classes)]
        return nn.Sequential(*layers)
