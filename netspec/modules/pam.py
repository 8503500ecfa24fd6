"""Position attention module, PAM (Fu et al., CVPR 2019; official DANet ``PAM_Module`` in ``da_att.py``).

Parameter names follow the official code (``query_conv``, ``key_conv``, ``value_conv``, ``gamma``), so its
weights load as they are.
"""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.attention import CHUNK_SCORES, gated_residual_attention, gemm_convs_apply, pointwise_channels, pointwise_tokens


class PositionAttention(nn.Module):
    """x + gamma * (V softmax(Q^T K)^T): every position attends to all positions; gamma starts at 0.

    Q, K are 1x1 convs C -> ``hidden`` (C/8) and V a 1x1 conv C -> C, all with bias; the softmax is over the
    keys and unscaled. The attention runs through :func:`~netspec.modules.attention.attend` (fused SDPA, or
    query chunks of at most ``chunk_scores`` scores on the CPU), never holding the whole (HW x HW) matrix.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, hidden, 1)
        self.key_conv = nn.Conv2d(channels, hidden, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.chunk_scores = CHUNK_SCORES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if gemm_convs_apply(x, self.query_conv, self.key_conv, self.value_conv):
            # CPU: query and key as one token-major GEMM; the value as a GEMM in x's layout, (N, C, HW) for NCHW
            # (the attention then writes its result in NCHW, as the official code's bmm(V, A^T)), else (N, HW, C)
            query, key = pointwise_tokens(x, self.query_conv, self.key_conv)
            if x.is_contiguous():
                value = pointwise_channels(x, self.value_conv).transpose(1, 2)
            else:
                (value,) = pointwise_tokens(x, self.value_conv)
        else:
            query = self.query_conv(x).flatten(2).transpose(1, 2)  # (N, HW, C/8): free views when channels_last
            key = self.key_conv(x).flatten(2).transpose(1, 2)
            value = self.value_conv(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        return gated_residual_attention(x, self.gamma, query, key, value, scale=1.0, budget=self.chunk_scores)


def reference(module: PositionAttention, x: torch.Tensor) -> torch.Tensor:
    """``PAM_Module.forward`` of the official code (bmm + softmax over the whole matrix), with ``module``'s weights."""
    n, c, h, w = x.shape
    proj_query = module.query_conv(x).reshape(n, -1, h * w).permute(0, 2, 1)
    proj_key = module.key_conv(x).reshape(n, -1, h * w)
    energy = torch.bmm(proj_query, proj_key)
    attention = torch.softmax(energy, dim=-1)
    proj_value = module.value_conv(x).reshape(n, -1, h * w)
    out = torch.bmm(proj_value, attention.permute(0, 2, 1)).reshape(n, c, h, w)
    return module.gamma * out + x
