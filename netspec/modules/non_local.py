"""Non-local block, embedded Gaussian (Wang et al., CVPR 2018; facebookresearch/video-nonlocal-net, 2-D).

Parameter names follow AlexHex7/Non-local_pytorch (``theta``, ``phi``, ``g``, ``W``), the common PyTorch port.
"""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.attention import attend, gemm_convs_apply, pointwise_from_tokens, pointwise_tokens
from netspec.ops import make_norm


class NonLocal2d(nn.Module):
    """z = x + norm(W y), y = softmax(theta(x)^T phi(x')) g(x'); x' = x, or x max-pooled 2x2 with ``subsample``.

    theta, phi, g are 1x1 convs C -> ``inter`` and W a 1x1 conv ``inter`` -> C, all with bias. The norm after W
    has its weight and bias zero-initialised (or W itself when ``norm="none"``), so the block starts as the
    identity. ``scale`` multiplies the logits by 1/sqrt(inter) (the released video models do; the paper's
    formula does not; ``scale_dim`` sets the square root's argument instead, timm's NonLocalAttn uses C).
    As in the official code the pooling comes before the phi and g convs (the paper's text
    and AlexHex7's port pool after them; same parameters, 4x cheaper convs).
    """

    def __init__(self, channels: int, inter: int, *, scale: bool = False, subsample: bool = False,
                 norm: str = "batch", scale_dim: int | None = None) -> None:
        super().__init__()
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.pool = nn.MaxPool2d(2) if subsample else nn.Identity()
        self.W = nn.Sequential(nn.Conv2d(inter, channels, 1))
        if norm != "none":
            self.W.append(make_norm(norm, channels))
        for tensor in (self.W[-1].weight, self.W[-1].bias):  # the last of W: the norm's affine, or the conv
            if tensor is not None:
                nn.init.zeros_(tensor)
        self.scale = (scale_dim or inter) ** -0.5 if scale else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if gemm_convs_apply(x, self.theta, self.phi, self.g, self.W[0], containers=(self.W,)):
            return x + self._project_out(self._attend_tokens(x), x)
        return x + self.W(self.attend(x))

    def _attend_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """y = softmax(theta(x)^T phi(x')) g(x') token-major, (N, HW, inter), the 1x1 convs as one GEMM.

        On the CPU: theta, phi and g come out of one GEMM as token-major views with unit feature stride, which
        the attention reads as they are (no channels_last copy of x, no copies of theta, phi, g, no transient
        input copies of the convolution library); forward+backward at 64x64, 512 channels ran 0.7x the convs'
        time for these projections.
        """
        if isinstance(self.pool, nn.Identity):
            theta, phi, g = pointwise_tokens(x, self.theta, self.phi, self.g)
        else:
            (theta,) = pointwise_tokens(x, self.theta)
            phi, g = pointwise_tokens(self.pool(x), self.phi, self.g)
        return attend(theta, phi, g, scale=self.scale)

    def _project_out(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """W y (conv, then its norm) from the token-major y, in x's memory format."""
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        out = pointwise_from_tokens(y, self.W[0], x.shape[2:], channels_last=channels_last)
        for module in self.W[1:]:
            out = module(out)
        return out

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """y = softmax(theta(x)^T phi(x')) g(x') as an (N, inter, H, W) map."""
        n, _, h, w = x.shape
        nchw = x.is_contiguous()
        # The fused kernels want token-major (N, HW, inter) inputs with unit stride in the features: a free view
        # of a channels_last conv output. So in inference an NCHW input is copied once to channels_last (C values
        # per pixel) rather than copying theta, phi and g (3 * C/2) after the convs. Under autograd the convs
        # would keep that copy for backward (C values per pixel for the whole step): there they run on x as it
        # is and theta, phi, g are copied instead, which frees each conv output (forward+backward peak at 64x64,
        # 512 channels: 0.24 of the straightforward code's instead of 0.29).
        keeps_copy = torch.is_grad_enabled() and (x.requires_grad or self.theta.weight.requires_grad)
        x_cl = x if keeps_copy else x.contiguous(memory_format=torch.channels_last)
        pooled = self.pool(x_cl)
        theta = self.theta(x_cl).flatten(2).transpose(1, 2).contiguous()  # contiguous(): no copy unless H or W is 1
        phi = self.phi(pooled).flatten(2).transpose(1, 2).contiguous()
        g = self.g(pooled).flatten(2).transpose(1, 2).contiguous()
        del x_cl, pooled  # the channels_last copy is not needed past the convs (in inference it is freed here)
        y = attend(theta, phi, g, scale=self.scale).transpose(1, 2).reshape(n, -1, h, w)  # channels_last strides
        # an NCHW input gets an NCHW map (one copy, as the official code's .contiguous()): W, its norm and the
        # residual addition then run in one layout instead of mixing NCHW and channels_last (2-8x slower on CPU)
        return y.contiguous() if nchw else y


def reference(module: NonLocal2d, x: torch.Tensor) -> torch.Tensor:
    """The block as the official code computes it (bmm + softmax over the whole matrix), with ``module``'s weights."""
    n, _, h, w = x.shape
    pooled = module.pool(x)
    theta = module.theta(x).reshape(n, module.theta.out_channels, -1).permute(0, 2, 1)
    phi = module.phi(pooled).reshape(n, module.phi.out_channels, -1)
    g = module.g(pooled).reshape(n, module.g.out_channels, -1).permute(0, 2, 1)
    f = torch.matmul(theta, phi)
    if module.scale != 1.0:
        f = f * module.scale
    y = torch.matmul(torch.softmax(f, dim=-1), g).permute(0, 2, 1).reshape(n, -1, h, w)
    return module.W(y) + x
