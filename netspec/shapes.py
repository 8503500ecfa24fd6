"""Static shapes and costs: what a layer outputs, how many parameters it has and its MACs per sample."""
from __future__ import annotations

from dataclasses import dataclass

MAX_COUNT = 2**31 - 1
"""Largest value of any count-like param (channels, sizes, kernels, strides, ...): what torch's int32 kernels hold."""


@dataclass(frozen=True)
class Shape:
    """A tensor shape without the batch dimension: (C, H, W) for feature maps, (C,) once flat, (C, A) for a
    ``sequence`` (a detection head's outputs over its A anchor points: ``height`` holds A, ``width`` is unused).

    ``height``/``width`` are ``None`` when the spec gives no ``input.size`` (channels are still known).
    A sequence ends a network: only kinds with ``reads_sequences`` take one (none built in), and it can be listed
    in ``outputs:``.
    """

    channels: int
    height: int | None = None
    width: int | None = None
    flat: bool = False
    sequence: bool = False

    @classmethod
    def of_length(cls, channels: int, length: int | None) -> "Shape":
        """A (C, A) sequence, e.g. a detection head's (4 + classes, anchors)."""
        return cls(channels, length, None, sequence=True)

    @property
    def length(self) -> int | None:
        """A of a (C, A) sequence."""
        return self.height if self.sequence else None

    @property
    def spatial(self) -> bool:
        return not self.flat and not self.sequence

    @property
    def sized(self) -> bool:
        return self.flat or (self.height is not None and (self.sequence or self.width is not None))

    @property
    def pixels(self) -> int | None:
        """H*W of a feature map (1 for a flat tensor, A for a sequence), ``None`` when unknown."""
        if self.flat:
            return 1
        if self.sequence:
            return self.height
        if self.height is None or self.width is None:
            return None
        return self.height * self.width

    def dims(self) -> tuple[int | None, ...]:
        """Dimensions after the batch: ``(C,)``, ``(C, A)`` or ``(C, H, W)``."""
        if self.sequence:
            return (self.channels, self.height)
        return (self.channels,) if self.flat else (self.channels, self.height, self.width)

    def __str__(self) -> str:
        return "(N, " + ", ".join("?" if d is None else str(d) for d in self.dims()) + ")"


@dataclass(frozen=True)
class LayerInfo:
    """The static result of a shape rule: output shape, parameter count, multiply-accumulates per sample."""

    shape: Shape
    params: int = 0
    macs: int | None = 0

    def then(self, other: "LayerInfo") -> "LayerInfo":
        """This layer followed by ``other``: ``other``'s shape, summed costs."""
        return LayerInfo(other.shape, self.params + other.params, add_macs(self.macs, other.macs))


def add_macs(*counts: int | None) -> int | None:
    """Sum MAC counts; unknown (``None``) if any is unknown."""
    total = 0
    for count in counts:
        if count is None:
            return None
        total += count
    return total


def scale_macs(per_pixel: int, shape: Shape) -> int | None:
    """MACs of an operation costing ``per_pixel`` at every position of ``shape``."""
    pixels = shape.pixels
    return None if pixels is None else per_pixel * pixels


def conv_out_size(size: int | None, *, kernel: int, stride: int, padding: int, dilation: int = 1) -> int | None:
    """Output length of a convolution or pooling window along one axis (PyTorch's floor rule)."""
    if size is None:
        return None
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def fitting_kernels(x: Shape, sizes: tuple[int, ...], *, padded: bool = True) -> list[int]:
    """The kernel sizes among ``sizes`` whose window fits in ``x``'s map (a side the spec leaves unknown counts as
    64), with padding (k - 1) // 2 on each side when ``padded`` (a conv's, a max pool's default), else none: what a
    kind's hypothesis strategy may draw for input ``x``."""
    smallest = min(size for size in (x.height, x.width, 64) if size is not None)
    return [k for k in sizes if k <= smallest + (2 * ((k - 1) // 2) if padded else 0)]


def common_divisors(x: Shape) -> list[int]:
    """The block sides that tile a sized map exactly: every b dividing both its height and its width (blocked
    attention, HaloNet's and BAT's windows)."""
    assert x.height is not None and x.width is not None
    return [b for b in range(1, min(x.height, x.width) + 1) if x.height % b == 0 and x.width % b == 0]


def broadcast_size(a: int | None, b: int | None) -> tuple[bool, int | None]:
    """Whether sizes ``a`` and ``b`` broadcast (equal, or one is 1; unknown fits anything), and the result."""
    if a == 1:
        return True, b
    if b == 1 or a == b:
        return True, a
    return a is None or b is None, None
