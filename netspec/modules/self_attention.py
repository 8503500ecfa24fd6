"""Self-attention that replaces a convolution: BoTNet's bottleneck attention, HaloNet's blocked local attention
(both with relative position logits) and LambdaNets' lambda layer, with timm 1.0.31's module layout
(``timm/layers/bottleneck_attn.py``, ``halo_attn.py``, ``lambda_layer.py``: same children, same parameter order,
same arithmetic), so timm's weights load by architecture order.

Relative positions without a (tokens x tokens) position tensor: the logit of query i and key j is
``s q_i.k_j + q_i.R_h[h_j - h_i] + q_i.R_w[w_j - w_i]``. The two position terms depend on the key only through its
row h_j and its column w_j, so with ``a_i = (q_i.R_h[h - h_i])_h`` (H numbers) and ``b_i = (q_i.R_w[w - w_i])_w``
(W numbers) the logit is the dot product of ``[s q_i, a_i, b_i]`` with ``[k_j, onehot(h_j), onehot(w_j)]``: an
exact rewrite into plain softmax attention with H + W more query/key features; the narrower of the query/key and
value widths is zero-padded to the other (exact), and :func:`netspec.modules.attention.attend` runs it on SDPA's
fused kernels (flash attention on the CPU), so no (HW x HW) score or position matrix is kept for backward
(BoTNet). HaloNet's windows are small (a 64 x 196 score block per 8x8 tile): there the same position terms are
added to the scores in place and two GEMMs run (:func:`attend_in_windows`), which keeps less than the widened
copies would.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netspec.modules.attention import attend


def relative_to_absolute(query: torch.Tensor, table: torch.Tensor, keys: int) -> torch.Tensor:
    """Position logits along one axis: (..., Q, d) queries at 0..Q-1, a (2K-1, d) table -> (..., Q, K) with
    ``out[..., q, k] = query[..., q, :] . table[k - q + K - 1]`` (the skew of Attention Augmented Convolutional
    Networks, as timm's ``rel_logits_1d``)."""
    logits = query @ table.transpose(0, 1)  # (..., Q, 2K-1)
    length = query.size(-2)
    index = (torch.arange(keys, device=query.device)[None, :] - torch.arange(length, device=query.device)[:, None]
             + keys - 1)
    return torch.gather(logits, -1, index.expand(*logits.shape[:-1], keys))


def position_features(query: torch.Tensor, height_rel: torch.Tensor, width_rel: torch.Tensor, *, height: int,
                      width: int, key_height: int, key_width: int) -> torch.Tensor:
    """``[a_i, b_i]`` for queries (N, height*width, d) on a height x width grid against a key_height x key_width
    window: (N, height*width, key_height + key_width)."""
    grid = query.reshape(query.size(0), height, width, query.size(-1))
    along_w = relative_to_absolute(grid, width_rel, key_width)  # (N, h, w, key_w)
    along_h = relative_to_absolute(grid.transpose(1, 2), height_rel, key_height).transpose(1, 2)  # (N, h, w, key_h)
    return torch.cat([along_h, along_w], dim=-1).reshape(query.size(0), height * width, key_height + key_width)


def key_positions(key_height: int, key_width: int, like: torch.Tensor) -> torch.Tensor:
    """``[onehot(h_j), onehot(w_j)]`` for the keys of a key_height x key_width grid, row-major: (kh*kw, kh + kw)."""
    rows = torch.eye(key_height, dtype=like.dtype, device=like.device).repeat_interleave(key_width, dim=0)
    cols = torch.eye(key_width, dtype=like.dtype, device=like.device).repeat(key_height, 1)
    return torch.cat([rows, cols], dim=1)


def attend_with_positions(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, positions: torch.Tensor,
                          *, scale: float, scale_positions: bool, key_height: int, key_width: int) -> torch.Tensor:
    """softmax(s q.k + pos) @ v (or softmax(s (q.k + pos)) @ v with ``scale_positions``) for (N, L, d) queries,
    (N, S, d) keys, (N, S, e) values and (N, L, kh + kw) position features."""
    onehots = key_positions(key_height, key_width, key).expand(key.size(0), -1, -1)
    query = torch.cat([query if scale_positions else query * scale, positions], -1)
    key = torch.cat([key, onehots], -1)
    # equal query/key and value widths (zero features: exact), so that SDPA's fused kernels take it on the CPU
    # too (flash attention: neither the scores nor the probabilities are kept for backward)
    width, value_width = query.size(-1), value.size(-1)
    if value_width < width:
        value = F.pad(value, (0, width - value_width))
    elif width < value_width:
        query, key = F.pad(query, (0, value_width - width)), F.pad(key, (0, value_width - width))
    out = attend(query, key, value, scale=scale if scale_positions else 1.0)
    return out if out.size(-1) == value_width else out[..., :value_width]


def attend_in_windows(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, positions: torch.Tensor,
                      *, scale: float, scale_positions: bool, key_height: int, key_width: int) -> torch.Tensor:
    """:func:`attend_with_positions` for small windows (HaloNet's block x window scores): plain bmm + softmax, the
    position terms broadcast into the scores in place (``a_i`` along the key's row, ``b_i`` along its column), so
    no widened or padded query/key/value copies are made. At these sizes the scores are no larger than the
    widened copies SDPA would need (64 x 196 per block against (64 + 2 x 196) x 92), and two GEMMs beat the flash
    kernel's blocked loop: training memory about timm's layout's instead of 1.15x (benchmarks/self_attention.py)."""
    n, length, _ = query.shape
    logits = torch.bmm(query, key.transpose(1, 2))  # bmm keeps its inputs for backward, not its output: in place
    along_rows, along_cols = positions.split([key_height, key_width], dim=-1)
    grid = logits.view(n, length, key_height, key_width)
    if scale_positions:  # softmax(s (q.k + pos))
        grid.add_(along_rows.unsqueeze(-1)).add_(along_cols.unsqueeze(-2)).mul_(scale)
    else:  # softmax(s q.k + pos)
        grid.mul_(scale).add_(along_rows.unsqueeze(-1)).add_(along_cols.unsqueeze(-2))
    return torch.bmm(torch.softmax(logits, dim=-1), value)


def in_format_of(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``out`` in ``x``'s memory format: channels_last in, channels_last out (the heads' reshapes give NCHW)."""
    if x.dim() == 4 and x.size(1) > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


def half_pool() -> nn.Module:
    """timm's ``nn.AvgPool2d(2, 2)`` for stride 2, in ceil mode: the same on even sizes, and an odd size gives
    (size + 1) // 2 (the last row/column averaged alone), which the block's strided 1x1 shortcut also gives."""
    return nn.AvgPool2d(2, 2, ceil_mode=True)


class PositionTable(nn.Module):
    """Relative position embeddings along height and width (timm's ``PosEmbedRel``): (2K_h - 1, d), (2K_w - 1, d)."""

    def __init__(self, key_height: int, key_width: int, dim_head: int, *, scale: float) -> None:
        super().__init__()
        self.height_rel = nn.Parameter(torch.empty(2 * key_height - 1, dim_head))
        self.width_rel = nn.Parameter(torch.empty(2 * key_width - 1, dim_head))
        nn.init.trunc_normal_(self.height_rel, std=scale)
        nn.init.trunc_normal_(self.width_rel, std=scale)


class BottleneckAttention(nn.Module):
    """BoTNet's all-to-all multi-head self-attention with 2-D relative position logits over a fixed H x W map:
    1x1 qkv conv (no bias), softmax over the H*W keys, 2x2 average pool when ``stride`` is 2."""

    def __init__(self, in_channels: int, out_channels: int, *, size: tuple[int, int], heads: int, dim_head: int,
                 stride: int = 1, scale_positions: bool = False, bias: bool = False) -> None:
        super().__init__()
        self.heads, self.dim_head, self.dim_value = heads, dim_head, out_channels // heads
        self.size = size
        self.scale = dim_head ** -0.5
        self.scale_positions = scale_positions
        self.qkv = nn.Conv2d(in_channels, 2 * heads * dim_head + out_channels, 1, bias=bias)
        nn.init.trunc_normal_(self.qkv.weight, std=in_channels ** -0.5)
        self.pos_embed = PositionTable(size[0], size[1], dim_head, scale=self.scale)
        self.pool = half_pool() if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        if (height, width) != self.size:  # a guard under torch.compile (static shapes), not a graph break
            raise ValueError(f"bottleneck_attn's position tables cover {self.size[0]}x{self.size[1]} maps, "
                             f"got {height}x{width}: build the spec for this input size")
        qk = self.heads * self.dim_head
        q, k, v = torch.split(self.qkv(x), [qk, qk, self.heads * self.dim_value], dim=1)
        tokens = height * width
        q = q.reshape(batch * self.heads, self.dim_head, tokens).transpose(1, 2)
        k = k.reshape(batch * self.heads, self.dim_head, tokens).transpose(1, 2)
        v = v.reshape(batch * self.heads, self.dim_value, tokens).transpose(1, 2)
        positions = position_features(q, self.pos_embed.height_rel, self.pos_embed.width_rel, height=height,
                                      width=width, key_height=height, key_width=width)
        out = attend_with_positions(q, k, v, positions, scale=self.scale, scale_positions=self.scale_positions,
                                    key_height=height, key_width=width)
        out = out.transpose(1, 2).reshape(batch, self.heads * self.dim_value, height, width)
        if out.requires_grad and out._base is not None:
            # a view of the recomputing attention's (B, e, L) buffer: autograd forbids changing it in place, as a
            # residual block does with its last output (`out += shortcut`), so it gets its own storage
            out = out.clone()
        return in_format_of(self.pool(out), x)


class HaloAttention(nn.Module):
    """HaloNet's blocked local self-attention: queries in non-overlapping block x block tiles attend to the tile
    plus a ``halo`` border of keys (zero padded at the map's edges), with relative position logits over the
    window; stride 2 subsamples the queries (or average-pools the output when the block is odd / ``avg_down``)."""

    def __init__(self, in_channels: int, out_channels: int, *, heads: int, dim_head: int, block: int, halo: int,
                 stride: int = 1, avg_down: bool = False, scale_positions: bool = False, bias: bool = False) -> None:
        super().__init__()
        self.heads, self.dim_head, self.dim_value = heads, dim_head, out_channels // heads
        self.scale = dim_head ** -0.5
        self.scale_positions = scale_positions
        self.block, self.halo, self.window = block, halo, block + 2 * halo
        use_pool = stride > 1 and (avg_down or block % stride != 0)
        self.block_stride = stride if stride > 1 and not use_pool else 1
        self.query_block = block // self.block_stride
        self.q = nn.Conv2d(in_channels, heads * dim_head, 1, stride=self.block_stride, bias=bias)
        self.kv = nn.Conv2d(in_channels, heads * dim_head + out_channels, 1, bias=bias)
        std = in_channels ** -0.5
        nn.init.trunc_normal_(self.q.weight, std=std)
        nn.init.trunc_normal_(self.kv.weight, std=std)
        self.pos_embed = PositionTable(self.window, self.window, dim_head, scale=self.scale)
        self.pool = half_pool() if use_pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        if height % self.block or width % self.block:
            raise ValueError(f"halo_attn needs sizes divisible by its block {self.block}, got {height}x{width}")
        rows, cols = height // self.block, width // self.block
        blocks, qb, heads = rows * cols, self.query_block, self.heads
        # queries: (B*heads*blocks, qb*qb, d), block-major then row-major inside a block
        q = self.q(x).reshape(batch * heads, self.dim_head, rows, qb, cols, qb).permute(0, 2, 4, 3, 5, 1)
        q = q.reshape(batch * heads * blocks, qb * qb, self.dim_head)
        kv = F.pad(self.kv(x), [self.halo] * 4)
        kv = kv.unfold(2, self.window, self.block).unfold(3, self.window, self.block)  # (B, C, rows, cols, win, win)
        kv = kv.reshape(batch * heads, self.dim_head + self.dim_value, blocks, self.window * self.window)
        kv = kv.permute(0, 2, 3, 1).reshape(batch * heads * blocks, self.window * self.window, -1)
        k, v = torch.split(kv, [self.dim_head, self.dim_value], dim=-1)
        positions = position_features(q, self.pos_embed.height_rel, self.pos_embed.width_rel, height=qb, width=qb,
                                      key_height=self.window, key_width=self.window)
        # contiguous k and v: views would keep the whole unfolded kv alive for backward beside bmm's own copies
        out = attend_in_windows(q, k.contiguous(), v.contiguous(), positions, scale=self.scale,
                                scale_positions=self.scale_positions, key_height=self.window, key_width=self.window)
        # (B*heads*blocks, qb*qb, e) -> (B, heads*e, H/s, W/s)
        out = out.reshape(batch, heads, rows, cols, qb, qb, self.dim_value).permute(0, 1, 6, 2, 4, 3, 5)
        out = out.reshape(batch, heads * self.dim_value, rows * qb, cols * qb)
        return in_format_of(self.pool(out), x)


class LambdaLayer(nn.Module):
    """LambdaNets' lambda layer (intra-depth u = 1): a content lambda softmax(K) V^T shared by all positions plus
    local position lambdas from a 3-D conv of radius r over V (or, ``radius`` None, relative position lambdas from
    a (2H-1, 2W-1, k) embedding ``pos_emb`` over the ``size`` map), applied to multi-query heads; 2x2 average pool
    when ``stride`` is 2. Queries and values are batch-normalised, as timm's ``LambdaLayer``.

    The relative lambdas sum_n E[h_n - h_m, w_n - w_m] v_n are a cross-correlation of the value map with E (zero
    outside the map): run as a 3-D conv with E as its kernel, they need no (M, M, k) gathered table."""

    def __init__(self, in_channels: int, out_channels: int, *, heads: int, dim_head: int, radius: int | None,
                 size: tuple[int, int] = (1, 1), stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.heads, self.dim_head, self.dim_value = heads, dim_head, out_channels // heads
        self.qkv = nn.Conv2d(in_channels, heads * dim_head + dim_head + self.dim_value, 1, bias=bias)
        self.norm_q = nn.BatchNorm2d(heads * dim_head)
        self.norm_v = nn.BatchNorm2d(self.dim_value)
        self.size = size
        if radius is not None:
            self.conv_lambda: nn.Conv3d | None = nn.Conv3d(1, dim_head, (radius, radius, 1),
                                                           padding=(radius // 2, radius // 2, 0))
            self.pos_emb = None
        else:  # timm's relative variant: a parameter of the layer itself, as timm's (state-dict order unchanged)
            self.conv_lambda = None
            self.pos_emb = nn.Parameter(torch.empty(2 * size[0] - 1, 2 * size[1] - 1, dim_head))
            nn.init.trunc_normal_(self.pos_emb, std=0.02)
        nn.init.trunc_normal_(self.qkv.weight, std=in_channels ** -0.5)
        if self.conv_lambda is not None:
            nn.init.trunc_normal_(self.conv_lambda.weight, std=dim_head ** -0.5)
        self.pool = half_pool() if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        if self.pos_emb is not None and (height, width) != self.size:  # as timm's, which fails at another size
            raise ValueError(f"lambda's relative position table (r: null) covers {self.size[0]}x{self.size[1]} maps, "
                             f"got {height}x{width}: build the spec for this input size")
        tokens, heads, dk, dv = height * width, self.heads, self.dim_head, self.dim_value
        q, k, v = torch.split(self.qkv(x), [heads * dk, dk, dv], dim=1)
        q = self.norm_q(q).reshape(batch, heads, dk, tokens).transpose(-1, -2)  # (B, heads, M, k)
        v = self.norm_v(v).reshape(batch, dv, tokens).transpose(-1, -2)  # (B, M, v)
        k = torch.softmax(k.reshape(batch, dk, tokens), dim=-1)  # (B, k, M)
        content = q @ (k @ v).unsqueeze(1)  # (B, heads, M, v)
        values = v.reshape(batch, 1, height, width, dv)
        if self.conv_lambda is not None:
            position_lambdas = self.conv_lambda(values)  # (B, k, H, W, v)
        else:  # out[m] = sum_n E[n - m + (H-1, W-1)] v_n: a cross-correlation with E, zero-padded by H-1, W-1
            kernel = self.pos_emb.permute(2, 0, 1).unsqueeze(1).unsqueeze(-1)  # (k, 1, 2H-1, 2W-1, 1)
            position_lambdas = F.conv3d(values, kernel, padding=(self.size[0] - 1, self.size[1] - 1, 0))
        position_lambdas = position_lambdas.reshape(batch, 1, dk, tokens, dv).transpose(2, 3)  # (B, 1, M, k, v)
        position = (q.unsqueeze(-2) @ position_lambdas).squeeze(-2)  # (B, heads, M, v)
        out = (content + position).transpose(-1, -2).reshape(batch, heads * dv, height, width)
        return in_format_of(self.pool(out), x)
