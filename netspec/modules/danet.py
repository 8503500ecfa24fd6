"""Dual attention (Fu et al., CVPR 2019): PAM and CAM side by side on the same input, outputs summed."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.cam import ChannelAttention
from netspec.modules.pam import PositionAttention


class DualAttention(nn.Module):
    """``sa(x) + sc(x)``: the position (``sa``) and channel (``sc``) attention modules, named as in DANetHead.

    Each branch keeps its own residual (PAM(x) = x + gamma_p * ..., CAM(x) = x + gamma_c * ...), as the official
    head sums the two branch outputs; at initialisation (both gammas 0) the result is 2x.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.sa = PositionAttention(channels, hidden)
        self.sc = ChannelAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sa(x) + self.sc(x)
