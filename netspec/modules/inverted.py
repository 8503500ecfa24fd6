"""Inverted residual blocks (MobileNetV2/V3, EfficientNet's MBConv), in torchvision's layout."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.stochastic_depth import StochasticDepth


class InvertedResidual(nn.Module):
    """``block(x)`` (expand 1x1, depthwise, attention, linear 1x1 projection), plus ``x`` when ``residual``.

    Children as torchvision's ``InvertedResidual``/``MBConv`` (``block``, then ``stochastic_depth``), so its weights
    load by position; the projection has no activation and nothing follows the addition.
    """

    def __init__(self, block: nn.Sequential, *, residual: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.block = block
        self.residual = residual
        self.stochastic_depth = StochasticDepth(drop_path) if residual and drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.residual:
            out = self.stochastic_depth(out) + x
        return out
