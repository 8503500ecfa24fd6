"""Width and depth scaling as Ultralytics does it: ``scale: {width: 0.5, depth: 0.33, max_channels: 1024}``.

Which params scale is data on each kind's params model, never a branch in the compiler: a field typed
:data:`Channels` is a channel count, multiplied by ``width`` after capping it at ``max_channels`` and rounded
up to a multiple of 8 (``make_divisible(min(c, max_channels) * width, 8)``); a field typed :data:`Depth` is a
repeat count, multiplied by ``depth`` and rounded (``max(round(n * depth), 1)``; a count of 1 stays 1, as in
Ultralytics). ``round: torchvision`` rounds channels to the nearest multiple of 8 instead, as torchvision's
``width_mult`` (``_make_divisible``); a conv with ``widen_only: true`` keeps its count under a width below 1
(MobileNetV2's last channel). Everything else is left alone: kernel sizes, reductions, a linear layer's ``out`` (the number of
classes). Attention kinds need nothing: they take their channels from the (scaled) layer before them.
"""
from __future__ import annotations

import math
from fractions import Fraction
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from netspec.shapes import MAX_COUNT

if TYPE_CHECKING:
    from netspec.layers.base import Layer

ScaledBy = Literal["channels", "depth"]


@dataclass(frozen=True)
class Scaled:
    """Field metadata: the param is a channel count (``"channels"``, scaled by width) or a repeat count (``"depth"``)."""

    by: ScaledBy


Channels = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT), Scaled("channels")]
"""A channel count that ``scale.width`` multiplies (e.g. ``conv.out``, ``stage.out``, ``stage.width``)."""

Depth = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT), Scaled("depth")]
"""A repeat count that ``scale.depth`` multiplies (e.g. ``stage.depth``)."""

MAX_MULTIPLIER = 1000.0
"""Largest width or depth multiplier (Ultralytics' largest scale is 1.25): keeps every scaled count a finite int."""
Multiplier = Annotated[float, Strict(), Field(gt=0, le=MAX_MULTIPLIER, allow_inf_nan=False)]


def _times(count: int, multiplier: float) -> float | Fraction:
    """``count * multiplier`` as a float, exactly (a Fraction) for counts too large for a float (no OverflowError)."""
    try:
        return count * multiplier
    except OverflowError:
        return Fraction(count) * Fraction(multiplier)


def make_divisible(value: float, divisor: int = 8) -> int:
    """The smallest multiple of ``divisor`` that is >= ``value`` (Ultralytics' ``make_divisible``)."""
    return math.ceil(value / divisor) * divisor


def make_divisible_nearest(value: float | Fraction, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor`` (at least ``divisor``), one more
    multiple when rounding down lost over 10% (MobileNetV2 width 0.5: 32 -> 16, 24 -> 16, 96 -> 48)."""
    rounded = max(divisor, int(value + Fraction(divisor, 2)) // divisor * divisor)
    return rounded + divisor if rounded < Fraction(9, 10) * value else rounded


ROUNDING = {"ultralytics": make_divisible, "torchvision": make_divisible_nearest}
"""How ``scale.round`` rounds a scaled channel count to a multiple of 8."""


ScaleName = Annotated[str, Strict(), Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)]
"""A row of a spec's ``scales:`` table (Ultralytics' n, s, m, l, x)."""

ULTRALYTICS_C3K_SCALES = frozenset({"m", "l", "x"})
"""Scale names at which Ultralytics' ``parse_model`` makes every C3k2 use C3k blocks (``c3k: true``)."""


class Scale(BaseModel):
    """Width/depth multipliers for the whole network, as Ultralytics' model scales (n/s/m/l/x)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: ScaleName | None = Field(
        None, description="the scale's name in Ultralytics' tables (n/s/m/l/x; a `scales:` row gets its key): kinds "
                          "may follow Ultralytics' per-name rules (c3k2 uses C3k blocks at m, l and x)"
    )
    width: Multiplier = Field(
        1.0, description="multiplies every channel count (conv/stage `out`, stage `width`), rounded up to a multiple of 8"
    )
    depth: Multiplier = Field(1.0, description="multiplies every repeat count (stage `depth`): max(round(n * depth), 1)")
    max_channels: Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT)] | None = Field(
        None, description="cap applied to each channel count before `width` multiplies it"
    )
    round: Literal[tuple(ROUNDING)] = Field(  # type: ignore[valid-type]
        "ultralytics", description="`ultralytics`: round scaled channels up to a multiple of 8; `torchvision`: to the "
                                   "nearest multiple of 8 as torchvision's width_mult (_make_divisible)"
    )

    def channels(self, count: int, *, widen_only: bool = False) -> int:
        """``min(count, max_channels) * width`` rounded to a multiple of 8 by ``round``.

        ``widen_only``: a width below 1 leaves the count as written (torchvision MobileNetV2's last channel).
        """
        capped = count if self.max_channels is None else min(count, self.max_channels)
        width = max(self.width, 1.0) if widen_only else self.width
        return ROUNDING[self.round](_times(capped, width), 8)

    def repeats(self, count: int) -> int:
        """``max(round(count * depth), 1)``; a single block stays single (Ultralytics: ``if n > 1 else n``)."""
        return max(round(_times(count, self.depth)), 1) if count > 1 else count

    def apply(self, layer: "Layer") -> "Layer":
        """``layer`` with its :data:`Channels` and :data:`Depth` params scaled, nested entries included."""
        from netspec.layers.base import Layer

        updates: dict[str, object] = {}
        widen_only = getattr(layer, "widen_only", False) is True  # a kind's opt-out of narrowing (conv.widen_only)
        for name, by in scaled_fields(type(layer)).items():
            value = getattr(layer, name)
            if isinstance(value, int) and not isinstance(value, bool):
                updates[name] = self.channels(value, widen_only=widen_only) if by == "channels" else self.repeats(value)
        for name in type(layer).model_fields:
            nested = getattr(layer, name)
            if isinstance(nested, Layer):
                updates[name] = self.apply(nested)
        return (layer.model_copy(update=updates) if updates else layer).rescaled(self)

    def describe(self) -> str:
        """``n (depth 0.33, width 0.25, max_channels 1024)``, for the summary."""
        numbers = f"depth {self.depth:g}, width {self.width:g}" + (
            f", max_channels {self.max_channels}" if self.max_channels is not None else "")
        return f"{self.name} ({numbers})" if self.name else numbers


def scaled_fields(cls: type[BaseModel]) -> dict[str, ScaledBy]:
    """Params of ``cls`` that scaling touches, with what scales them (from :class:`Scaled` field metadata)."""
    result: dict[str, ScaledBy] = {}
    for name, info in cls.model_fields.items():
        markers = list(info.metadata)
        for member in typing.get_args(info.annotation):  # `Channels | None`: the marker sits on a union member
            markers += getattr(member, "__metadata__", ())
        for marker in markers:
            if isinstance(marker, Scaled):
                result[name] = marker.by
    return result
