"""Inverted residual blocks (MobileNetV2/V3, EfficientNet's MBConv) and stochastic depth, in torchvision's layout."""
from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Drop the residual branch of whole samples with probability ``p`` while training, rescaling the kept ones by
    1 / (1 - p); the identity in eval mode (Huang et al. 2016; torchvision's ``StochasticDepth(p, "row")``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


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
