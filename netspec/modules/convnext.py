"""ConvNeXt blocks (Liu et al. 2022, arXiv:2201.03545; V2: Woo et al. 2023, arXiv:2301.00808), in timm's layout.

Children in the order of timm's ``ConvNeXtBlock`` (layer scale ``gamma`` as the block's own parameter, then
``conv_dw``, ``norm``, ``mlp`` with ``fc1``, ``act``, [``grn``], ``fc2``), so timm's weights load by position.
"""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.stochastic_depth import StochasticDepth
from netspec.ops import make_act


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN on channels-last (N, H, W, C): x + bias + weight * x * (|x|_HW / mean_C |x|_HW)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norms = x.norm(p=2, dim=(1, 2), keepdim=True)
        ratio = norms / (norms.mean(dim=-1, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias, self.weight, x * ratio)


class ConvNeXtMlp(nn.Sequential):
    """fc1 (C -> hidden), act, optional GRN, fc2 (hidden -> C), on channels-last tensors."""

    def __init__(self, channels: int, hidden: int, *, act: str, grn: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = make_act(act)
        if grn:
            self.grn = GlobalResponseNorm(hidden)
        self.fc2 = nn.Linear(hidden, channels)


class ConvNeXtBlock(nn.Module):
    """x + drop_path(gamma * attention(mlp(norm(conv_dw(x))))): depthwise conv, LayerNorm and the MLP on channels
    last, the attention (if any) back on (N, C, H, W), then the layer scale."""

    def __init__(self, channels: int, *, kernel: int, hidden: int, act: str, grn: bool, ls_init: float | None,
                 attention: nn.Module | None, drop_path: float = 0.0) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), ls_init)) if ls_init else None
        self.conv_dw = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = ConvNeXtMlp(channels, hidden, act=act, grn=grn)
        self.attention = attention
        self.drop_path = StochasticDepth(drop_path) if drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(self.norm(self.conv_dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        if self.attention is not None:
            out = self.attention(out)
        if self.gamma is not None:
            out = out.mul(self.gamma.reshape(1, -1, 1, 1))
        if self.drop_path is not None:
            out = self.drop_path(out)
        return out + x
