"""timm's width rules, shared by the kinds that follow timm's modules."""
from __future__ import annotations

import math


def timm_divisible(value: float, divisor: int = 8, *, round_limit: float = 0.9, min_value: int | None = None) -> int:
    """timm's ``make_divisible``: the nearest multiple of ``divisor`` (at least ``min_value`` or ``divisor``), one
    more multiple when rounding down lost more than ``1 - round_limit`` (``round_limit=0``: never)."""
    least = min_value or divisor
    rounded = max(least, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def reduced_width(channels: int, reduction: int, least: int, rounding: str, *, divisor: int) -> int:
    """The hidden width of an attention's reducing fc (SK's d, ResNeSt's inter): ``max(channels // reduction,
    least)`` as the papers' code (``rounding: floor``), or timm's ``make_divisible(channels / reduction, divisor,
    min_value=least)`` (``rounding: timm``)."""
    if rounding == "timm":
        return timm_divisible(channels / reduction, divisor, min_value=least)
    return max(channels // reduction, least)


def timm_eca_kernel(channels: int, *, gamma: float = 2, beta: float = 1) -> int:
    """timm's EcaModule kernel: t = int(|log2 C + beta| / gamma), odd, at least 3."""
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)
