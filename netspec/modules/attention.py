"""Memory-efficient softmax attention shared by Non-local, PAM and CAM (and the straightforward reference).

``attend(query, key, value, scale=s)`` is ``softmax(s * query @ key^T) @ value`` over token-major tensors
(batch, tokens, features). It calls ``torch.nn.functional.scaled_dot_product_attention`` whenever a fused kernel
fits, so the (tokens x tokens) score matrix is never materialised whole. The one case where none fits is on the
CPU when the value's feature size differs from the query's (PAM: C/8 vs C; the CPU flash kernel needs equal
sizes, and SDPA's math fallback materialises everything, with extra masking passes): there the queries are
processed in chunks of at most ``budget`` scores each, with the same bmm + softmax arithmetic as the official
code, so forward memory stays bounded. Chunk sizes come from shapes only, so ``torch.compile(fullgraph=True)``
traces it without graph breaks.

On the CPU the same bmm + softmax path also serves when the score matrix is no larger than the value tensor
(Non-local on small maps; CAM, C x C scores for C x HW features at C <= HW, applies the same rule itself,
so it can fold its residual into the second GEMM): materialising it then costs less
memory than the inputs already take, and two plain GEMMs beat the flash kernel, whose online softmax rescales
a long (features-wide) output accumulator at every key block (CAM at 64x64: 1.15x slower than bmm).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHUNK_SCORES = 1 << 21
"""Default most score-matrix elements held at once on the chunked path (8 MiB in float32)."""

_CPU_FUSED_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def fused_kernel_fits(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> bool:
    """Whether SDPA can run these shapes without materialising the whole score matrix.

    On the CPU the flash kernel needs equal query/key/value feature sizes and a float dtype; on accelerators
    SDPA picks a fused kernel itself (flash, or memory-efficient attention, which allows a larger value size).
    """
    if query.device.type != "cpu":
        return True
    return query.dtype in _CPU_FUSED_DTYPES and query.size(-1) == key.size(-1) == value.size(-1)


def scores_are_small(key: torch.Tensor, value: torch.Tensor) -> bool:
    """On the CPU: whether a score row (S keys) is no longer than a value row (e features), so the whole score
    matrix is no larger than the value tensor and plain bmm + softmax is both cheap in memory and faster."""
    return key.device.type == "cpu" and key.size(1) <= value.size(-1)


def attend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, scale: float, budget: int = CHUNK_SCORES
) -> torch.Tensor:
    """``softmax(scale * query @ key^T, dim=-1) @ value``: (B, L, d), (B, S, d), (B, S, e) -> (B, L, e)."""
    # torch.export / ONNX: one SDPA op, so the program holds for every batch size (chunk sizes depend on it)
    if torch.compiler.is_exporting() or (fused_kernel_fits(query, key, value) and not scores_are_small(key, value)):
        if scale < 0 and torch.compiler.is_exporting():
            # ONNX's SDPA applies sqrt(scale) to the query and to the key: a negative scale becomes a negated query
            query, scale = query.neg(), -scale
        # fused kernels want unit stride in the feature dim (else SDPA falls back to the math kernel)
        query, key, value = (t if t.stride(-1) == 1 else t.contiguous() for t in (query, key, value))
        width = value.size(-1)
        if needs_aligned_features(query) and not torch.compiler.is_exporting():
            query, key, value = pad_features(query, key, value)
        out = F.scaled_dot_product_attention(query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1), scale=scale)
        out = out.squeeze(1)
        return out if out.size(-1) == width else out[..., :width]
    return chunked_attention(query, key, value, scale=scale, budget=budget)


FEATURE_ALIGNMENT = 8
"""The GPU's fused SDPA kernels (flash, memory-efficient) take feature sizes that are multiples of 8 only."""


def needs_aligned_features(query: torch.Tensor) -> bool:
    """Whether SDPA on this device needs feature sizes that are multiples of :data:`FEATURE_ALIGNMENT`."""
    return query.device.type != "cpu"


def pad_features(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad the feature sizes to multiples of :data:`FEATURE_ALIGNMENT` (CAM at 14x14 has 196), so that a fused
    kernel takes them instead of the math fallback. Exact: zero query/key features add nothing to the scores
    (the scale is always passed explicitly), and zero value features give output columns the caller drops."""

    def padded(t: torch.Tensor) -> torch.Tensor:
        extra = -t.size(-1) % FEATURE_ALIGNMENT
        return F.pad(t, (0, extra)) if extra else t

    padded_query = padded(query)
    padded_key = padded_query if key is query else padded(key)  # CAM: one tensor is query, key and value
    return padded_query, padded_key, padded_key if value is key else padded(value)


def chunked_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, scale: float, budget: int = CHUNK_SCORES
) -> torch.Tensor:
    """:func:`attend` by bmm + softmax over chunks, at most ``budget`` scores alive at a time.

    Chunks are whole samples when one sample's scores fit the budget (as fast as one bmm over the batch, and
    each chunk's result is a contiguous block of the output), else chunks of queries across the batch.
    When ``value`` is a transposed view of a (B, e, S) tensor (a 1x1 conv output in NCHW), the result is
    computed as ``value^T @ probs^T`` into a (B, e, L) buffer, as the official PAM code does, and returned as
    its (B, L, e) view: the caller's NCHW output is then contiguous without a transposing copy.
    """
    batch, length, _ = query.shape
    per_sample = max(1, length * key.size(1))
    # Chunk results go into one output buffer in inference (one chunk alive at a time). Under autograd, when one
    # sample's scores exceed the budget, the probabilities are recomputed in backward instead of kept; smaller
    # ones are concatenated (the probabilities are kept for backward, and the backward of cat is views, where
    # writing into a buffer adds copies of the gradient)
    concatenate = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    if concatenate and per_sample > budget:
        return RecomputedAttention.apply(query, key, value, scale, budget)
    scale_scores = scale != 1.0 and key.size(1) < query.size(-1)  # scale the smaller of the scores and the queries
    if scale != 1.0 and not scale_scores:
        query = query * scale
    channel_major = value.stride(-1) != 1 and value.stride(-2) == 1

    def scores_of(queries: torch.Tensor, keys_t: torch.Tensor) -> torch.Tensor:
        scores = torch.bmm(queries, keys_t)
        return scores * scale if scale_scores else scores

    def weighted(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(b, l, e), or its (b, e, l) buffer when ``channel_major`` (returned as is: the caller transposes)."""
        probs = torch.softmax(scores_of(queries, keys.transpose(1, 2)), dim=-1)
        if channel_major:
            return torch.bmm(values.transpose(1, 2), probs.transpose(1, 2))
        return torch.bmm(probs, values)

    if per_sample <= budget:
        # whole samples per chunk, a power of two: batched GEMMs split the batch across threads, and 3 samples
        # on 2 threads ran 25% slower than 2 + 2 or 4
        samples = 1 << (max(1, budget // per_sample).bit_length() - 1)
        if samples >= batch:
            out = weighted(query, key, value)
        elif concatenate:
            # split, not slicing: the backward of split is one cat of the chunk gradients, where each slice's
            # backward would fill a whole zero tensor and autograd would sum them
            out = torch.cat([
                weighted(*chunk) for chunk in zip(query.split(samples), key.split(samples), value.split(samples))
            ])
        else:
            shape = (batch, value.size(-1), length) if channel_major else (batch, length, value.size(-1))
            out = query.new_empty(shape)
            for start in range(0, batch, samples):
                end = start + samples
                out[start:end] = weighted(query[start:end], key[start:end], value[start:end])
        return out.transpose(1, 2) if channel_major else out
    rows = min(length, max(1, budget // (batch * key.size(1))))
    key_t = key.transpose(1, 2)
    value_t = value.transpose(1, 2)
    if channel_major:
        out_t = query.new_empty(batch, value.size(-1), length)  # (B, e, L): the caller's NCHW layout
        out = out_t.transpose(1, 2)
    else:
        out = query.new_empty(batch, length, value.size(-1))
    if torch.compiler.is_compiling():
        # traced: plain ops (Dynamo graph-breaks on out= into a strided view); the compiler plans the buffers

        def weighted_rows(queries: torch.Tensor) -> torch.Tensor:
            probs = torch.softmax(scores_of(queries, key_t), dim=-1)
            if channel_major:
                return torch.bmm(value_t, probs.transpose(1, 2)).transpose(1, 2)
            return torch.bmm(probs, value)

        for start in range(0, length, rows):
            out[:, start : start + rows] = weighted_rows(query[:, start : start + rows])
        return out
    # Eager: one score buffer and one result buffer for every chunk, the softmax in place. Allocating and freeing
    # a score and a probability buffer per chunk (mid-size blocks that glibc serves from its heap once its mmap
    # threshold has risen) fragmented the heap: the process's peak RSS grew by up to a chunk per chunk, where the
    # live tensors did not. Each chunk's GEMM writes a contiguous buffer that is then copied into the output: a
    # GEMM writing straight into the strided output slice ran 1.5x slower on the CPU (it leaves the BLAS path).
    scores_size, width = batch * rows * key.size(1), value.size(-1)
    workspace = query.new_empty(scores_size + batch * rows * width)
    for start in range(0, length, rows):
        end = min(start + rows, length)
        probs = workspace[: batch * (end - start) * key.size(1)].view(batch, end - start, key.size(1))
        torch.bmm(query[:, start:end], key_t, out=probs)
        if scale_scores:
            probs.mul_(scale)
        torch.ops.aten._softmax.out(probs, -1, False, out=probs)  # in place, row by row
        result = workspace[scores_size : scores_size + batch * (end - start) * width]
        if channel_major:
            out_t[:, :, start:end] = torch.bmm(value_t, probs.transpose(1, 2),
                                               out=result.view(batch, width, end - start))
        else:
            out[:, start:end] = torch.bmm(probs, value, out=result.view(batch, end - start, width))
    return out


class RecomputedAttention(torch.autograd.Function):
    """:func:`chunked_attention` under autograd without keeping the (L x S) probabilities for backward.

    The forward is the inference path (query chunks of at most ``budget`` scores into one output buffer) and
    keeps only query, key and value. The backward recomputes each query chunk's probabilities, as flash
    attention does (Dao et al., 2022): P = softmax(scale q_c k^T), dV += P^T dO_c, dS = softmax'(dO_c v^T)
    (the fused softmax backward), dQ_c = scale dS k, dK += scale dS^T q_c. Peak memory is a few chunks of
    scores instead of the whole matrix twice (probabilities and their gradient); the price is one q k^T GEMM
    and one softmax per chunk, offset by the chunks' softmax and its backward running in cache (the whole
    matrix's softmax backward is memory-bound).

    When ``value`` is a transposed view of a (B, e, S) buffer (a 1x1 conv output in NCHW), the value's gradient
    is made in that layout, so the conv's backward gets a contiguous gradient.
    """

    @staticmethod
    def forward(ctx, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,  # type: ignore[override]
                budget: int) -> torch.Tensor:
        ctx.save_for_backward(query, key, value)
        ctx.scale, ctx.budget = scale, budget
        return chunked_attention(query, key, value, scale=scale, budget=budget)  # autograd is off in here

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        query, key, value = ctx.saved_tensors
        grad_query, grad_key, grad_value = recomputed_backward(query, key, value, grad_out, budget=ctx.budget,
                                                               scale=ctx.scale)
        if ctx.scale != 1.0:
            grad_query.mul_(ctx.scale), grad_key.mul_(ctx.scale)
        return grad_query, grad_key, grad_value, None, None


def recomputed_backward(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, grad_out: torch.Tensor, *,
                        scale: float, budget: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of :func:`chunked_attention` recomputing each query chunk's probabilities (see
    :class:`RecomputedAttention`); the query's and key's gradients are returned without the factor ``scale``
    (the caller applies it once, with any other factor). The value's gradient is made in the value's layout."""
    batch, length, _ = query.shape
    grad_query = torch.empty_like(query, memory_format=torch.contiguous_format)
    grad_key = torch.zeros_like(key, memory_format=torch.contiguous_format)
    if value.stride(-1) != 1 and value.stride(-2) == 1:  # channel-major value: a (B, e, S) gradient buffer
        grad_value_t = value.new_zeros(batch, value.size(2), value.size(1))
    else:
        grad_value_t = value.new_zeros(value.shape).transpose(1, 2)
    key_t, value_t = key.transpose(1, 2), value.transpose(1, 2)
    # twice the forward's chunk: two score buffers are alive (in-place softmax and its backward), and the
    # accumulating dV GEMM (inner size: the chunk's rows) runs closer to full speed. Both buffers are made once
    # and reused by every chunk (as in the forward: no per-chunk allocations to fragment the heap)
    rows = min(length, max(1, 2 * budget // (batch * key.size(1))))
    size = batch * rows * key.size(1)
    workspace = query.new_empty(2 * size)
    grad_rows = query.new_empty(batch * rows * query.size(-1))  # each chunk's dQ, then copied into place
    for start in range(0, length, rows):
        end = min(start + rows, length)
        shape = (batch, end - start, key.size(1))
        used = batch * (end - start) * key.size(1)
        used_rows = batch * (end - start) * query.size(-1)
        probs, grad_probs = workspace[:used].view(shape), workspace[size : size + used].view(shape)
        queries, grads = query[:, start:end], grad_out[:, start:end]
        torch.bmm(queries, key_t, out=probs)
        if scale != 1.0:
            probs.mul_(scale)
        torch.ops.aten._softmax.out(probs, -1, False, out=probs)  # in place, row by row
        grad_value_t.baddbmm_(grads.transpose(1, 2), probs)  # dV^T += dO_c^T P
        torch.bmm(grads, value_t, out=grad_probs)
        grad_scores = torch.ops.aten._softmax_backward_data.out(
            grad_probs, probs, -1, probs.dtype, grad_input=grad_probs)
        grad_query[:, start:end] = torch.bmm(grad_scores, key, out=grad_rows[: used_rows].view(*shape[:2], -1))
        grad_key.baddbmm_(grad_scores.transpose(1, 2), queries)
    return grad_query, grad_key, grad_value_t.transpose(1, 2)


def gated_residual_attention(x: torch.Tensor, gamma: torch.Tensor, query: torch.Tensor, key: torch.Tensor,
                             value: torch.Tensor, *, scale: float, budget: int = CHUNK_SCORES) -> torch.Tensor:
    """``x + gamma * attend(query, key, value)`` for an (N, C, H, W) ``x`` whose HW tokens the attention runs over
    (PAM): the attention's (N, HW, C) result is read as x's shape, in x's memory format when the value is.

    Without autograd the attention's own buffer becomes the result (scaled and added to in place: no second
    map-sized tensor). Under autograd on the CPU's chunked path, :class:`GatedResidualAttention` recomputes the
    probabilities in backward and keeps neither the attention's result nor a gamma-scaled copy of the gradient.
    """
    n, c, h, w = x.shape
    special = torch.compiler.is_exporting() or torch.compiler.is_compiling()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, gamma, query, key, value)):
        if (not special and query.device.type == "cpu" and not fused_kernel_fits(query, key, value)
                and query.size(1) * key.size(1) > budget
                and x.dtype == gamma.dtype == query.dtype == key.dtype == value.dtype):  # not under autocast
            return GatedResidualAttention.apply(x, gamma, query, key, value, scale, budget)
        return torch.addcmul(x, gamma, attend(query, key, value, scale=scale, budget=budget).transpose(1, 2)
                             .reshape(n, c, h, w))  # x + gamma * out, in x's memory format
    out = attend(query, key, value, scale=scale, budget=budget).transpose(1, 2).reshape(n, c, h, w)
    if special or not _in_place_residual_fits(out, x, gamma):
        return torch.addcmul(x, gamma, out)
    return out.mul_(gamma).add_(x)


def _in_place_residual_fits(out: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor) -> bool:
    """Whether ``out.mul_(gamma).add_(x)`` equals ``addcmul(x, gamma, out)``: the same layout and one dtype (under
    autocast ``out`` may be bfloat16 or float16, and addcmul promotes to x's dtype)."""
    return out.stride() == x.stride() and out.dtype == x.dtype == gamma.dtype


def _flat(t: torch.Tensor) -> torch.Tensor | None:
    """A (B, S, e) tensor's elements as a 1-D view in memory order, if it is dense in either (S, e) order."""
    if t.is_contiguous():
        return t.view(-1)
    if t.transpose(1, 2).is_contiguous():
        return t.transpose(1, 2).view(-1)
    return None


class GatedResidualAttention(torch.autograd.Function):
    """``x + gamma * softmax(scale q k^T) v`` (PAM's output) on the chunked path, recomputing in backward.

    Saves query, key, value and gamma, nothing map-sized besides. Backward: dx = dO; the attention's
    gradients are :func:`recomputed_backward` of dO, times gamma; and d gamma = <dO, P v> = <P^T dO, v>, the
    inner product of the unscaled value gradient with the value, so the attention's result need not be kept.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: torch.Tensor, query: torch.Tensor, key: torch.Tensor,  # type: ignore[override]
                value: torch.Tensor, scale: float, budget: int) -> torch.Tensor:
        ctx.save_for_backward(gamma, query, key, value)
        ctx.scale, ctx.budget = scale, budget
        n, c, h, w = x.shape
        out = chunked_attention(query, key, value, scale=scale, budget=budget).transpose(1, 2).reshape(n, c, h, w)
        if not _in_place_residual_fits(out, x, gamma):
            return torch.addcmul(x, gamma, out)
        return out.mul_(gamma).add_(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        gamma, query, key, value = ctx.saved_tensors
        grad_out = grad.flatten(2).transpose(1, 2)  # (N, HW, C), a view in either memory format
        grad_query, grad_key, grad_value = recomputed_backward(query, key, value, grad_out, budget=ctx.budget,
                                                               scale=ctx.scale)
        flat_grad, flat_value = _flat(grad_value), _flat(value)
        if flat_grad is not None and flat_value is not None and grad_value.stride() == value.stride():
            grad_gamma = torch.dot(flat_grad, flat_value).view(gamma.shape)
        else:
            grad_gamma = (grad_value * value).sum().view(gamma.shape)
        factor = gamma * ctx.scale if ctx.scale != 1.0 else gamma
        grad_query.mul_(factor), grad_key.mul_(factor), grad_value.mul_(gamma)
        return grad, grad_gamma, grad_query, grad_key, grad_value, None, None


def reference_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, scale: float) -> torch.Tensor:
    """The straightforward version (the whole score matrix at once), as the papers' official code computes it."""
    scores = torch.bmm(query, key.transpose(1, 2))
    if scale != 1.0:
        scores = scores * scale
    return torch.bmm(torch.softmax(scores, dim=-1), value)


def _hooked(module: nn.Module) -> bool:
    """Whether calling ``module`` would run a hook of its own (forward, forward-pre, backward, backward-pre)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def _global_module_hooks() -> bool:
    """Whether a hook registered for every module (``register_module_forward_hook`` and the like) is active."""
    registry = nn.modules.module
    return any(getattr(registry, name, None) for name in (
        "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks", "_global_backward_pre_hooks"))


def gemm_convs_apply(x: torch.Tensor, *convs: nn.Conv2d, containers: tuple[nn.Module, ...] = ()) -> bool:
    """Whether :func:`pointwise_tokens` may stand for these convs on ``x``: plain 1x1 convs (stride 1, no padding
    or groups) on a CPU tensor, outside export (ONNX keeps the convs), with no hook that calling them (or the
    ``containers`` that hold them) would run: forward or backward, their own or global (Grad-CAM, torchinfo)."""
    if x.device.type != "cpu" or x.dim() != 4 or torch.compiler.is_exporting() or _global_module_hooks():
        return False
    return all(
        type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0)
        and conv.dilation == (1, 1) and conv.groups == 1 and not _hooked(conv)
        for conv in convs
    ) and not any(_hooked(container) for container in containers)


def pointwise_tokens(x: torch.Tensor, *convs: nn.Conv2d) -> tuple[torch.Tensor, ...]:
    """The 1x1 convs of ``x`` (N, C, H, W) as one GEMM, token-major: a (N, HW, out) view per conv.

    The same function as calling the convs (the weights concatenated, one ``baddbmm`` with the biases), and what
    the attention wants as input: unit stride in the features, no transposing copy. ``x``'s (HW, C) matrices are
    read in place in either layout (NCHW: column-major, channels_last: row-major). On the CPU this also avoids
    the convolution library's per-call copies of the input into its blocked layout (a transient input-sized
    buffer per conv and per backward), and it runs faster: one GEMM with a wide output instead of several.
    """
    n, c = x.shape[:2]
    tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C): a view in both layouts
    weight = torch.cat([conv.weight.view(conv.out_channels, c) for conv in convs]) if len(convs) > 1 else \
        convs[0].weight.view(convs[0].out_channels, c)
    weight_t = weight.t().expand(n, c, weight.size(0))
    biases = [conv.bias for conv in convs]
    if all(bias is None for bias in biases):
        out = torch.bmm(tokens, weight_t)
    else:
        bias = torch.cat([b if b is not None else x.new_zeros(conv.out_channels) for b, conv in zip(biases, convs)])
        out = torch.baddbmm(bias, tokens, weight_t)
    # split, not slicing: its backward is one cat of the three gradients
    return out.split([conv.out_channels for conv in convs], dim=-1) if len(convs) > 1 else (out,)


def pointwise_channels(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The 1x1 ``conv`` of an NCHW ``x`` as one GEMM, channel-major: (N, out, HW), contiguous."""
    n, c = x.shape[:2]
    weight = conv.weight.view(conv.out_channels, c)
    weights = weight.expand(n, *weight.shape)
    pixels = x.flatten(2)
    return torch.bmm(weights, pixels) if conv.bias is None else torch.baddbmm(conv.bias[:, None], weights, pixels)


def pointwise_from_tokens(tokens: torch.Tensor, conv: nn.Conv2d, size: tuple[int, int], *,
                          channels_last: bool) -> torch.Tensor:
    """The 1x1 ``conv`` of a token-major (N, HW, d) map, as an (N, out, H, W) tensor in NCHW or channels_last
    memory format (one GEMM that reads ``tokens`` in place and writes the chosen layout directly)."""
    n = tokens.size(0)
    weight = conv.weight.view(conv.out_channels, -1)
    if channels_last:  # (N, HW, out) = tokens W^T (+ b)
        weight_t = weight.t().expand(n, *weight.t().shape)
        out = torch.bmm(tokens, weight_t) if conv.bias is None else torch.baddbmm(conv.bias, tokens, weight_t)
        return out.view(n, *size, -1).permute(0, 3, 1, 2)
    weights = weight.expand(n, *weight.shape)  # (N, out, HW) = W tokens^T (+ b)
    tokens_t = tokens.transpose(1, 2)
    out = torch.bmm(weights, tokens_t) if conv.bias is None else torch.baddbmm(conv.bias[:, None], weights, tokens_t)
    return out.view(n, -1, *size)
