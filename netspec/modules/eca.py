"""Efficient Channel Attention module (Wang et al., CVPR 2020; official code BangguWu/ECANet)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling
from netspec.ops import make_act


class EfficientChannelAttention(nn.Module):
    """x * gate(conv1d_k(mean_hw(x))): a 1-D conv across channels, no bias, padding (k-1)/2 (zeros or circular);
    gate sigmoid by default."""

    def __init__(self, *, kernel: int, circular: bool = False, gate: str = "sigmoid") -> None:
        super().__init__()
        # circular: timm's CecaModule, which pads with F.pad(mode="circular") before an unpadded conv: the same
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False,
                              padding_mode="circular" if circular else "zeros")
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, 1, C): channels are the sequence. Made as a transposed (N, C, 1) view, whose unit stride on the
        # size-1 dim lets oneDNN pick its fast Conv1d path (a plain unsqueeze(1) of (N, C) runs 1.6x slower).
        # One expression, so no pooled temporary outlives its use
        weights = self.gate(self.conv(pooling.mean(x, (2, 3), keepdim=False).unsqueeze(-1).transpose(1, 2)))
        return x * weights.transpose(1, 2).unsqueeze(-1)  # (N, C, 1, 1)
