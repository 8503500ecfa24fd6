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

    On the CPU, when the C x C matrix is no larger than X (C <= HW, the usual case), it is computed whole:
    gamma is folded into it and one ``baddbmm`` gives x + (gamma A) X, so the only (C x HW) tensor made is the
    output (half the peak memory of attention + residual as two steps), in x's memory format.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        exporting = torch.compiler.is_exporting()
        if x.device.type == "cpu" and c <= h * w and not exporting:
            return self._residual_by_gemm(x)
        features = x.reshape(n, c, h * w).contiguous()  # (N, C, HW): channels are the tokens, pixels the features
        training = features.requires_grad and torch.is_grad_enabled() and not exporting
        if training and features.device.type == "cpu":
            # training on the CPU: the C x C probabilities are small to keep for backward, and two GEMMs
            # backpropagate 5-10% faster than the CPU flash kernel (whose forward is the faster one)
            out = chunked_attention(features, features, features, scale=-1.0)
        else:
            out = attend(features, features, features, scale=-1.0)  # softmax(-1 * X X^T) X
        out = out.reshape(n, c, h, w)
        return torch.addcmul(x, self.gamma, out)  # x + gamma * out, in x's memory format

    def _residual_by_gemm(self, x: torch.Tensor) -> torch.Tensor:
        """x + gamma * softmax(-X X^T) X with the C x C matrix whole, as one ``baddbmm`` into the output."""
        n, c, h, w = x.shape
        if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
            features = x.reshape(n, c, h * w).contiguous()  # X: (N, C, HW)
            # one expression, so E and softmax(-E) are freed as soon as used: only gamma A is alive with the output
            weights = flush_subnormals_(torch.softmax(torch.bmm(features, features.transpose(1, 2)).neg_(), dim=-1)
                                        * self.gamma)
            return torch.baddbmm(features, weights, features).view(n, c, h, w)
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # X^T: (N, HW, C), a free view of channels_last x
        weights = flush_subnormals_(torch.softmax(torch.bmm(pixels.transpose(1, 2), pixels).neg_(), dim=-1)
                                    * self.gamma)
        # (x + gamma A X)^T = X^T + X^T (gamma A)^T: channels_last out, no transposing copy
        return torch.baddbmm(pixels, pixels, weights.transpose(1, 2)).view(n, h, w, c).permute(0, 3, 1, 2)


def flush_subnormals_(weights: torch.Tensor) -> torch.Tensor:
    """Set the weights below the smallest normal float to zero, in place.

    CAM's energies are unscaled sums over every pixel, so its softmax is sharp and many probabilities underflow
    to subnormal floats; a GEMM over subnormal operands runs up to 50x slower on Intel CPUs (a microcode assist
    per operation), and what they add is below the result's float resolution.
    """
    return weights.masked_fill_(weights.abs() < torch.finfo(weights.dtype).tiny, 0.0)


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
