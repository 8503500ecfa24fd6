"""Issue 22: bottleneck_attn, halo_attn and lambda against timm 1.0.31's layers written out in timm's layout
(tests/official_self_attention.py): parameter counts, equal outputs in eval and train mode, equal input gradients,
the located size errors, and the byoanet specs (botnet26t, halonet26t, lambda_resnet26t, sebotnet33ts) with the
reference networks' weights loaded by netspec.load_weights."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
import official_self_attention as official
from netspec.layers import BottleneckAttn, Context, HaloAttn, Lambda, Stage
from netspec.shapes import Shape

SPECS = Path(__file__).resolve().parent.parent / "specs"


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_same_function(reference: torch.nn.Module, mine: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Copy ``reference``'s random weights by architecture order, then equal outputs and input gradients in train
    and eval mode."""
    assert numel(mine) == numel(reference)
    netspec.load_weights(mine, reference.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.randn(*shape)
    for training in (True, False):
        reference.train(training), mine.train(training)
        inputs = [x.clone().requires_grad_() for _ in range(2)]
        expected, got = reference(inputs[0]), mine(inputs[1])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        grad = torch.randn_like(expected)
        expected.backward(grad), got.backward(grad)
        torch.testing.assert_close(inputs[1].grad, inputs[0].grad, rtol=1e-4, atol=1e-5)


def test_bottleneck_attn_params_at_512_channels_16x16() -> None:
    layer, x = BottleneckAttn(), Shape(512, 16, 16)
    assert layer.infer(x, Context()).params == 794_368  # DESIGN.md 6c: qkv 512 x 1536 + (31 + 31) x 128
    assert numel(layer.build(x, Context())) == 794_368
    assert numel(official.BottleneckAttn(512, feat_size=(16, 16))) == 794_368


@pytest.mark.parametrize("channels, size, heads, scale_pos, dim_head", [
    (64, (8, 8), 4, False, None), (32, (6, 5), 2, True, None), (48, (4, 7), 3, False, 8),
])
def test_bottleneck_attn_equals_timm_layout(channels: int, size: tuple[int, int], heads: int, scale_pos: bool,
                                            dim_head: int | None) -> None:
    layer = BottleneckAttn(heads=heads, scale_pos=scale_pos, dim_head=dim_head)
    x = Shape(channels, *size)
    reference = official.BottleneckAttn(channels, feat_size=size, num_heads=heads, scale_pos_embed=scale_pos,
                                        dim_head=dim_head)
    assert layer.infer(x, Context()).params == numel(reference)
    assert_same_function(reference, layer.build(x, Context()), (2, channels, *size))


def test_bottleneck_attn_strided_in_a_block_equals_timm_layout() -> None:
    x = Shape(32, 8, 6)
    module = BottleneckAttn(heads=4).build_attention(x, out=32, stride=2)
    assert_same_function(official.BottleneckAttn(32, feat_size=(8, 6), num_heads=4, stride=2), module, (2, 32, 8, 6))


def test_bottleneck_attn_keeps_no_token_by_token_matrix_for_backward() -> None:
    """The relative positions folded into SDPA (flash attention on the CPU): what a training step saves for
    backward is at most the padded queries/keys/values, never the (HW x HW) scores or probabilities of each head,
    which timm's layout keeps."""
    def largest_saved(module: torch.nn.Module, x: torch.Tensor) -> int:
        saved: list[int] = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            module(x)
        return max(saved)

    x = torch.randn(2, 64, 16, 16, requires_grad=True)
    scores = 2 * 4 * 256 * 256  # batch x heads x tokens x tokens
    mine = BottleneckAttn(heads=4).build(Shape(64, 16, 16), Context()).train()
    assert largest_saved(official.BottleneckAttn(64, feat_size=(16, 16), num_heads=4), x) >= scores
    assert largest_saved(mine, x) <= scores // 4


@pytest.mark.parametrize("block, halo, stride, avg_down, heads", [
    (4, 1, 1, False, 4), (4, 2, 2, False, 2), (3, 1, 2, False, 4), (4, 1, 2, True, 8), (2, 0, 1, False, 1),
])
def test_halo_attn_equals_timm_layout(block: int, halo: int, stride: int, avg_down: bool, heads: int) -> None:
    x = Shape(32, 12, 12) if block == 3 else Shape(32, 8, 12)
    layer = HaloAttn(heads=heads, block_size=block, halo_size=halo, avg_down=avg_down)
    reference = official.HaloAttn(32, stride=stride, num_heads=heads, block_size=block, halo_size=halo,
                                  avg_down=avg_down)
    info = layer.block_conv_info(x, Context(norm="none", act="none"), out=32, stride=stride)
    assert info.params == numel(reference)
    assert_same_function(reference, layer.build_attention(x, out=32, stride=stride), (2, *x.dims()))


@pytest.mark.parametrize("heads, dim_head, r, stride", [(4, 16, 9, 1), (2, 8, 3, 2), (4, 4, 5, 1), (4, 16, None, 1),
                                                     (2, 8, None, 2)])
def test_lambda_equals_timm_layout(heads: int, dim_head: int, r: int | None, stride: int) -> None:
    """r: null is timm's relative-position variant (lambda_resnet26rpt): its gathered (M, M, k) table against
    netspec's convolution with the embedding."""
    x = Shape(32, 7, 6) if stride == 1 else Shape(32, 8, 6)  # stride 2: even sizes, where timm's block works
    layer = Lambda(heads=heads, dim_head=dim_head, r=r)
    reference = official.LambdaLayer(32, stride=stride, num_heads=heads, dim_head=dim_head, r=r,
                                     feat_size=(x.height, x.width))
    assert layer.params_at(x, 32) == numel(reference)
    assert_same_function(reference, layer.build_attention(x, out=32, stride=stride), (2, *x.dims()))


def problems(text: str) -> list[str]:
    with pytest.raises(netspec.SpecError) as error:
        netspec.summary(netspec.loads(text))
    return [str(problem) for problem in error.value.problems]


def test_a_fixed_position_table_is_a_located_error_naming_the_size_it_needs() -> None:
    found = problems("input: {channels: 16, size: 8}\nlayers:\n  - bottleneck_attn: {size: 16}\n")
    assert found == ["3:29: layers[0].bottleneck_attn.size: the position tables cover 16x16 maps, but the input "
                     "here is 8x8: set `size: [8, 8]` or leave it out"]
    found = problems("input: {channels: 16}\nlayers:\n  - bottleneck_attn\n")
    assert "needs a static input size" in found[0] and found[0].startswith("3:5: layers[0]")


def test_relative_lambdas_without_a_static_size_are_a_located_error() -> None:
    found = problems("input: {channels: 16}\nlayers:\n  - lambda: {r: null}\n")
    assert found == ["3:17: layers[0].lambda.r: null (relative position lambdas) needs a static input size for the "
                     "position table: give the spec `input: {size: ...}`, or set r for local lambdas"]
    spec = netspec.loads("input: {channels: 16, size: [6, 5]}\nlayers:\n  - lambda: {r: null}\n")
    assert netspec.summary(spec).params == numel(official.LambdaLayer(16, r=None, feat_size=(6, 5)))


def test_relative_lambdas_refuse_a_map_of_another_size_at_run_time() -> None:
    """As timm's LambdaLayer (its table gathers fail) and bottleneck_attn: never a silent zero-padded table."""
    model = netspec.build(netspec.loads("input: {channels: 16, size: 8}\nlayers:\n  - lambda: {r: null, heads: 4}\n"))
    assert model(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)
    with pytest.raises(ValueError, match="covers 8x8 maps, got 16x16"):
        model(torch.randn(1, 16, 16, 16))


def test_halo_divisibility_and_heads_are_located_errors() -> None:
    found = problems("input: {channels: 12, size: [16, 12]}\nlayers:\n  - halo_attn: {heads: 8}\n")
    assert found == [
        "3:24: layers[0].halo_attn.heads: must divide the output channels (12): each head gets out / heads value "
        "channels",
        "3:16: layers[0].halo_attn.block_size: must divide the input's width (12): the map is cut into 8x8 query tiles",
    ]


def test_self_attention_as_a_stage_conv_counts_the_post_attention_norm() -> None:
    stage = Stage(out=64, depth=1, stride=2, conv=BottleneckAttn())
    plain = Stage(out=64, depth=1, stride=2)
    x = Shape(32, 8, 8)
    conv3x3 = 16 * 9 * 16 + 2 * 16
    attention = numel(official.BottleneckAttn(16, feat_size=(8, 8))) + 2 * 16
    got, base = stage.infer(x, Context()), plain.infer(x, Context())
    assert got.shape == base.shape == Shape(64, 4, 4)
    assert got.params == base.params - conv3x3 + attention == numel(stage.build(x, Context()))


def test_odd_sizes_at_stride_2_round_up_as_the_strided_shortcut() -> None:
    # timm's 2x2 floor pool would give 3 rows where the block's strided 1x1 shortcut gives 4 (its sum fails);
    # netspec's pool runs in ceil mode: equal on even sizes, 4 here, the last row averaged alone
    spec = netspec.loads("input: {channels: 16, size: [7, 8]}\nlayers:\n"
                         "  - stage: {out: 32, stride: 2, conv: lambda}\n")
    assert netspec.summary(spec).rows[0].info.shape == Shape(32, 4, 4)
    assert netspec.build(spec)(torch.randn(1, 16, 7, 8)).shape == (1, 32, 4, 4)


# --- the byoanet specs -------------------------------------------------------------------------------------

NETWORKS = {  # timm 1.0.31 counts (DESIGN.md 6c)
    "botnet26t": 12_488_672, "halonet26t": 12_480_288, "lambda_resnet26t": 10_958_272, "sebotnet33ts": 13_701_984,
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_byoanet_specs_have_timm_counts(name: str) -> None:
    assert netspec.summary(netspec.load(SPECS / f"{name}.yaml")).params == NETWORKS[name]
    assert numel(official.byoanet(name, 256)) == NETWORKS[name]


def test_a_byobnet_block_with_its_shortcut_first_loads_strictly_into_a_stage() -> None:
    """timm's byobnet registers a block's shortcut before its body; netspec after: load_weights reads both body
    first, so timm's state dict loads as it is (no renaming, no reordering by the user)."""
    torch.manual_seed(0)
    block = official.Block(16, 32, 2, 8, torch.nn.ReLU, self_attn=lambda c, s: official.BottleneckAttn(
        c, feat_size=(8, 8), num_heads=2, stride=s))
    reference = torch.nn.Sequential(block)  # inside a network, as in timm (the root's children never move)
    assert next(iter(reference.state_dict())).startswith("0.shortcut.")
    spec = netspec.loads("input: {channels: 16, size: 8}\nlayers:\n"
                         "  - stage: {block: bottleneck, out: 32, width: 8, stride: 2, conv: {bottleneck_attn: {heads: 2}}}\n")
    model = netspec.build(spec)
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1), module.running_var.uniform_(0.8, 1.2)
            module.weight.data.uniform_(0.8, 1.2), module.bias.data.uniform_(-0.1, 0.1)
    report = netspec.load_weights(model, reference.state_dict(), strict=True)
    assert [source.name for _, source in report.matched][-2:] == ["0.shortcut.conv", "0.shortcut.bn"]
    x = torch.randn(2, 16, 8, 8)
    for training in (False, True):
        model.train(training), reference.train(training)
        with torch.no_grad():
            torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


SMALL = {"botnet26t": 64, "halonet26t": 256, "lambda_resnet26t": 64, "sebotnet33ts": 64}
"""The smallest inputs each network takes (halonet26t's 8x8 halo blocks on the last stage need 256)."""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_byoanet_specs_compute_the_reference_function(name: str) -> None:
    torch.manual_seed(0)
    size = SMALL[name]
    spec = netspec.load(SPECS / f"{name}.yaml")
    spec = spec.model_copy(update={"input": spec.input.model_copy(update={"size": (size, size)})})
    model, reference = netspec.build(spec), official.byoanet(name, size)
    for module in reference.modules():  # away from BN's identity initialisation, so every statistic matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1), module.running_var.uniform_(0.8, 1.2)
            module.weight.data.uniform_(0.8, 1.2), module.bias.data.uniform_(-0.1, 0.1)
    report = netspec.load_weights(model, reference.state_dict(), strict=True)  # timm's order: shortcut first
    assert report.complete
    x = torch.randn(1, 3, size, size)
    for training in (False, True):
        model.train(training), reference.train(training)
        with torch.no_grad():
            torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)
