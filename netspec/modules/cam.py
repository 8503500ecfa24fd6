"""Channel attention module, CAM (Fu et al., CVPR 2019; official DANet ``CAM_Module`` in ``da_att.py``)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.attention import attend, chunked_attention


class ChannelAttention(nn.Module):
    """x + gamma * (softmax(rowmax(E) - E) X) with E = X X^T over channels (C x C); gamma starts at 0.

    The official code subtracts the energy from its row maximum before the softmax; softmax is invariant to
    a per-row shift, so that is softmax(-E), which SDPA computes from query, key and value X with scale -1
    (its online softmax subtracts the row maximum of -E, so it is as stable as the official two-step form).
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        features = x.reshape(n, c, h * w).contiguous()  # (N, C, HW): channels are the tokens, pixels the features
        training = features.requires_grad and torch.is_grad_enabled() and not torch.compiler.is_exporting()
        if training and features.device.type == "cpu":
            # training on the CPU: the C x C probabilities are small to keep for backward, and two GEMMs
            # backpropagate 5-10% faster than the CPU flash kernel (whose forward is the faster one)
            out = chunked_attention(features, features, features, scale=-1.0)
        else:
            out = attend(features, features, features, scale=-1.0)  # softmax(-1 * X X^T) X
        out = out.reshape(n, c, h, w)
        return torch.addcmul(x, self.gamma, out)  # x + gamma * out, in x's memory format


def reference(module: ChannelAttention, x: torch.Tensor) -> torch.Tensor:
    """``CAM_Module.forward`` of the official code, literally: softmax(rowmax(E) - E) over the whole matrix."""
    n, c, h, w = x.shape
    proj_query = x.reshape(n, c, -1)
    proj_key = x.reshape(n, c, -1).permute(0, 2, 1)
    energy = torch.bmm(proj_query, proj_key)
    energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
    attention = torch.softmax(energy_new, dim=-1)
    out = torch.bmm(attention, x.reshape(n, c, -1)).reshape(n, c, h, w)
    return module.gamma * out + x
