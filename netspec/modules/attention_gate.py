"""Attention gate (Oktay et al., Attention U-Net, MIDL 2018; layout of LeeJunHyun/Image_Segmentation's Attention_block)."""
from __future__ import annotations

import torch
from torch import nn


class AttentionGate(nn.Module):
    """``x * psi``, psi = sigmoid(BN(conv(ReLU(BN(W_g g) + BN(W_x x))))): the skip ``x`` gated by the signal ``g``.

    Children in the official order (W_g, W_x, psi, relu), so weights copy by order; ``forward(g, x)`` as the official.
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter: int) -> None:
        super().__init__()
        self.W_g = nn.Sequential(nn.Conv2d(gate_channels, inter, 1, bias=True), nn.BatchNorm2d(inter))
        self.W_x = nn.Sequential(nn.Conv2d(skip_channels, inter, 1, bias=True), nn.BatchNorm2d(inter))
        self.psi = nn.Sequential(nn.Conv2d(inter, 1, 1, bias=True), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.psi(self.relu(self.W_g(g) + self.W_x(x)))
