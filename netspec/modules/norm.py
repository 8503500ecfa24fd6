"""LayerNorm over the channels of a (N, C, H, W) map (ConvNeXt, Liu et al. 2022, arXiv:2201.03545).

As timm's ``LayerNorm2d``: an ``nn.LayerNorm`` over C (weight and bias of C values, eps 1e-6 by default) applied
at every position, by moving the channels last and back. On (N, C) it is the plain ``nn.LayerNorm``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over C at each position of (N, C, H, W) (or over C of (N, C)): timm's ``LayerNorm2d``."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
