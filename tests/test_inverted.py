"""Inverted residual stages (MobileNetV2/V3, EfficientNet-B0): torchvision's counts and functions, block behaviour,
the SE/ECA/CBAM variants these networks use, stochastic depth, the heads and torchvision's width multiplier."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import Phase, find, given, settings
from torch import nn

import netspec
from netspec import strategies as nst
from netspec.layers import CBAM, ECA, SE, Context, Stage
from netspec.modules.inverted import InvertedResidual
from netspec.modules.stochastic_depth import StochasticDepth
from netspec.scaling import Scale
from netspec.shapes import Shape
from torchvision_mobilenets import EfficientNetB0, MobileNetV2, MobileNetV3

SPECS = Path(__file__).resolve().parent.parent / "specs"

TORCHVISION_COUNTS = {  # torchvision's published num_params (DESIGN.md section 6b)
    "mobilenet_v2.yaml": 3_504_872,
    "mobilenet_v3_large.yaml": 5_483_032,
    "mobilenet_v3_small.yaml": 2_542_856,
    "efficientnet_b0.yaml": 5_288_548,
}
MOBILENET_V2_HALF = 1_968_680  # torchvision mobilenet_v2(width_mult=0.5)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def half_width_v2() -> netspec.Spec:
    return netspec.load(SPECS / "mobilenet_v2.yaml").with_scale(width=0.5).model_copy(
        update={"scale": Scale(width=0.5, round="torchvision")})


REFERENCES = {
    "mobilenet_v2.yaml": lambda: MobileNetV2(),
    "mobilenet_v3_large.yaml": lambda: MobileNetV3("large"),
    "mobilenet_v3_small.yaml": lambda: MobileNetV3("small"),
    "efficientnet_b0.yaml": lambda: EfficientNetB0(),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_COUNTS))
def test_specs_have_torchvision_counts(name: str) -> None:
    spec = netspec.load(SPECS / name)
    assert netspec.summary(spec).params == TORCHVISION_COUNTS[name]
    assert params(netspec.build(spec)) == TORCHVISION_COUNTS[name]
    assert params(REFERENCES[name]()) == TORCHVISION_COUNTS[name]  # the reference itself is torchvision's model


def test_mobilenet_v2_half_width_as_torchvision_width_mult() -> None:
    spec = half_width_v2()
    assert netspec.summary(spec).params == MOBILENET_V2_HALF
    assert params(MobileNetV2(width_mult=0.5)) == MOBILENET_V2_HALF
    # the rules differ where rounding up and to the nearest part: 34 * 0.5 = 17 is 16 for torchvision, 24 rounded up;
    # at width 0.35 that changes MobileNetV2's count (torchvision's reference agrees with round: torchvision only)
    assert Scale(width=0.5, round="torchvision").channels(34) == 16
    assert Scale(width=0.5).channels(34) == 24
    narrow = netspec.load(SPECS / "mobilenet_v2.yaml").model_copy(update={"scale": Scale(width=0.35, round="torchvision")})
    assert netspec.summary(narrow).params == params(MobileNetV2(width_mult=0.35)) == 1_677_128
    assert netspec.summary(narrow.model_copy(update={"scale": Scale(width=0.35)})).params == 1_706_056
    assert Scale(width=1.4, round="torchvision").channels(1280, widen_only=True) == 1792


# ---------------------------------------------------------------------------------------------
# Faithfulness: torchvision's layout, weights copied by state-dict order, the same outputs


def randomize(model: nn.Module, seed: int) -> None:
    """Random weights everywhere, BN running statistics included (so eval mode exercises them)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2)


def copy_by_order(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s state dict into ``target`` position by position, as review loads torchvision's weights."""
    theirs, ours = list(source.state_dict().values()), target.state_dict()
    assert len(theirs) == len(ours)
    for (name, mine), value in zip(ours.items(), theirs):
        assert mine.shape == value.shape, name
        mine.copy_(value)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCES) + ["mobilenet_v2 width 0.5"])
def test_same_function_as_torchvision(name: str) -> None:
    if name == "mobilenet_v2 width 0.5":
        reference, spec = MobileNetV2(width_mult=0.5), half_width_v2()
    else:
        reference, spec = REFERENCES[name](), netspec.load(SPECS / name)
    randomize(reference, seed=7)
    model = netspec.build(spec)
    copy_by_order(reference, model)
    reference.eval()
    model.eval()
    x = torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))  # 40: odd map sizes (5x5, 3x3)
    with torch.no_grad():
        expected = reference(x)
        got = model(x)
    assert got.shape == expected.shape == (2, 1000)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    if "v3" in name:  # MobileNetV3's norm settings
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert {(m.eps, m.momentum) for m in norms} == {(0.001, 0.01)}


@pytest.mark.slow
def test_efficientnet_b0_training_step_matches_torchvision() -> None:
    """In training mode too: stochastic depth at the same rates and places, drawing the same random numbers."""
    reference, model = EfficientNetB0(), netspec.build(netspec.load(SPECS / "efficientnet_b0.yaml"))
    randomize(reference, seed=3)
    copy_by_order(reference, model)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))  # ~4 dropped branches at seed 11
    torch.manual_seed(11)
    expected = reference.train()(x)
    torch.manual_seed(11)
    got = model.train()(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_efficientnet_b0_stochastic_depth_schedule() -> None:
    """0.2 * i / 16 over all 16 blocks (0 ... 0.1875), on the residual blocks only."""
    model = netspec.build(netspec.load(SPECS / "efficientnet_b0.yaml"))
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 16
    rates = [block.stochastic_depth.p if block.residual else None for block in blocks]
    expected = [0.2 * i / 16 if block.residual else None for i, block in enumerate(blocks)]
    assert rates == pytest.approx(expected)
    assert rates[-2] == pytest.approx(0.175) and [b.residual for b in blocks].count(True) == 9
    assert EfficientNetB0().rates[-1] == pytest.approx(0.1875)
    assert all(isinstance(b.stochastic_depth, nn.Identity) for b in blocks if not b.residual)


# ---------------------------------------------------------------------------------------------
# The block's behaviour


def one_stage(stage: str, channels: int = 8, size: int = 8, extra: str = "") -> netspec.Spec:
    return netspec.loads(f"input: {{channels: {channels}, size: {size}}}\n{extra}layers:\n  - stage: {stage}\n")


def project_to(model: nn.Module, value: float) -> None:
    """Make every block's projection (its last ConvNormAct) output the constant ``value``."""
    for block in (m for m in model.modules() if isinstance(m, InvertedResidual)):
        norm = block.block[-1].norm
        nn.init.zeros_(norm.weight)
        nn.init.constant_(norm.bias, value)


@pytest.mark.parametrize(("stage", "residual"), [
    ("{block: inverted, out: 8}", True),
    ("{block: inverted, out: 8, stride: 2}", False),
    ("{block: inverted, out: 16}", False),
    ("{block: inverted, out: 16, stride: 2, act: relu6}", False),
])
def test_residual_only_at_stride_one_with_the_same_channels(stage: str, residual: bool) -> None:
    model = netspec.build(one_stage(stage)).eval()
    project_to(model, -5.0)  # a negative constant: any activation after the projection or the sum would change it
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        y = model(x)
    assert [m.residual for m in model.modules() if isinstance(m, InvertedResidual)] == [residual]
    expected = x - 5.0 if residual else torch.full_like(y, -5.0)  # no conv shortcut, no act after the projection
    torch.testing.assert_close(y, expected)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3  # expand, depthwise, project: nothing on the shortcut


def test_expansion_layout_and_widths() -> None:
    model = netspec.build(one_stage("{block: inverted, out: 8, depth: 2, expand: 4, kernel: 5, stride: 2}"))
    first, second = (m for m in model.modules() if isinstance(m, InvertedResidual))
    expand, depthwise, project = (unit.conv for unit in first.block)
    assert (expand.in_channels, expand.out_channels, expand.kernel_size) == (8, 32, (1, 1))
    assert (depthwise.groups, depthwise.kernel_size, depthwise.stride, depthwise.padding) == (32, (5, 5), (2, 2), (2, 2))
    assert (project.in_channels, project.out_channels) == (32, 8)
    assert not hasattr(first.block[-1], "act")  # linear bottleneck
    assert second.block[0].conv.out_channels == 32 and second.residual
    # expand 1 (or width = the input channels): no expansion conv, as torchvision
    plain = netspec.build(one_stage("{block: inverted, out: 8, expand: 1}"))
    assert len([m for m in plain.modules() if isinstance(m, nn.Conv2d)]) == 2


def test_width_sets_each_stages_expanded_channels() -> None:
    """MobileNetV3 writes every block's expanded width; the first block of a stage expands its own input."""
    spec = one_stage("{block: inverted, out: 16, width: 40, depth: 2}")
    first, second = (m for m in netspec.build(spec).modules() if isinstance(m, InvertedResidual))
    assert first.block[0].conv.in_channels == 8 and first.block[0].conv.out_channels == 40
    assert second.block[0].conv.in_channels == 16 and second.block[0].conv.out_channels == 40


def test_attention_sits_after_the_depthwise_conv() -> None:
    spec = one_stage("{block: inverted, out: 8, expand: 3, attention: {se: {reduction: 4}}}")
    model = netspec.build(spec).eval()
    block = next(m for m in model.modules() if isinstance(m, InvertedResidual))
    kinds = [type(unit).__name__ for unit in block.block]
    assert kinds == ["ConvNormAct", "ConvNormAct", "SqueezeExcite", "ConvNormAct"]
    seen = {}
    block.block[1].register_forward_hook(lambda m, i, o: seen.update(depthwise=o.clone()))
    block.block[2].register_forward_hook(lambda m, i, o: seen.update(se_in=i[0].clone(), se_out=o.clone()))
    block.block[3].register_forward_hook(lambda m, i, o: seen.update(project_in=i[0].clone()))
    with torch.no_grad():
        model(torch.randn(2, 8, 8, 8))
    assert torch.equal(seen["se_in"], seen["depthwise"]) and seen["se_in"].shape[1] == 24
    assert torch.equal(seen["project_in"], seen["se_out"])
    assert netspec.summary(spec).params == params(model)


def test_stochastic_depth_identity_in_eval_drops_whole_samples_in_training() -> None:
    drop = StochasticDepth(0.5)
    x = torch.ones(256, 3, 4, 4)
    assert drop.eval()(x) is x
    torch.manual_seed(0)
    y = drop.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # kept samples rescaled by 1 / (1 - p)
    assert torch.equal(per_sample.amin(1), per_sample.amax(1))  # each sample all dropped or all kept
    assert 64 < int((per_sample[:, 0] == 0).sum()) < 192
    # in a network: eval output does not depend on drop_path; training drops some samples' branches
    spec = one_stage("{block: inverted, out: 8, depth: 3}", extra="drop_path: 0.9\n")
    model, plain = netspec.build(spec), netspec.build(spec.model_copy(update={"drop_path": 0.0}))
    plain.load_state_dict(model.state_dict())
    x = torch.randn(16, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x))
    assert [m.p for m in model.modules() if isinstance(m, StochasticDepth)] == pytest.approx([0.3, 0.6])  # block 0: rate 0, no module


def test_drop_path_counts_blocks_across_stages_and_round_trips() -> None:
    text = ("input: {channels: 8, size: 8}\ndrop_path: 0.4\nlayers:\n  - stage: {block: inverted, out: 8, depth: 2}\n"
            "  - conv: {out: 8}\n  - stage: {block: inverted, out: 8, depth: 2}\n")
    spec = netspec.loads(text)
    rates = [m.p for m in netspec.build(spec).modules() if isinstance(m, StochasticDepth)]
    assert rates == pytest.approx([0.1, 0.2, 0.3])  # blocks 1, 2, 3 of 4 (block 0 has rate 0: no module)
    assert netspec.loads(spec.to_yaml()) == spec and "drop_path: 0.4" in spec.to_yaml()
    assert spec.with_scale(depth=2.0).scaled_layers()[0].block_count() == 4


@pytest.mark.parametrize(("stage", "where", "message"), [
    ("{block: inverted, out: 8, expand: 2, width: 16}", "expand", "not both"),
    ("{block: inverted, out: 8, groups: 2}", "groups", "depthwise"),
    ("{block: inverted, out: 8, conv: sk}", "conv", "no conv to replace"),
    ("{block: inverted, out: 8, dilation: 2}", "dilation", "only for block: bottleneck"),
    ("{block: bottleneck, out: 8, kernel: 5}", "kernel", "only for block: inverted"),
    ("{block: basic, out: 8, expand: 4}", "expand", "only for block: inverted"),
    ("{block: inverted, out: 8, expand: 0}", "expand", "greater than 0"),
    ("{block: inverted, out: 8, expand: 100}", "expand", "less than or equal to 64"),
    ("{block: inverted, out: 8, kernel: 4}", "kernel", "odd"),
])
def test_bad_inverted_params_are_located_errors(stage: str, where: str, message: str) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(one_stage(stage, channels=64))
    problems = caught.value.problems
    assert any(where in str(p) and message in str(p) for p in problems), [str(p) for p in problems]
    assert all(p.line == 3 for p in problems)  # the stage's line


# ---------------------------------------------------------------------------------------------
# SE as MobileNetV3 and EfficientNet use it; ECA and CBAM gates


def test_se_variants_hidden_widths_and_counts() -> None:
    ctx = Context()
    v3 = SE(reduction=4, divisor=8, gate="hardsigmoid")
    assert [v3.hidden(c) for c in (16, 72, 120, 240, 480, 672, 960, 88, 96, 144, 288, 576)] == \
        [8, 24, 32, 64, 120, 168, 240, 24, 24, 40, 72, 144]  # torchvision's _make_divisible(c // 4, 8)
    assert v3.count(72, ctx) == 2 * 72 * 24 + 24 + 72
    effnet = SE(reduction=4, base="block_input", act="silu")
    assert effnet.hidden(96, Context(block_input=16)) == 4 and effnet.hidden(32, Context(block_input=32)) == 8
    assert effnet.hidden(96) == 24  # outside a block: the attended channels
    assert effnet.count(96, Context(block_input=16)) == 2 * 96 * 4 + 4 + 96
    assert SE(bias=False).count(256, ctx) == 2 * 256 * 16
    # in a ResNet block too, block_input is the block's input: 64 -> bottleneck(256) with SE on 256 channels
    resnet = netspec.loads("input: {channels: 64, size: 4}\nlayers:\n"
                           "  - stage: {out: 256, attention: {se: {reduction: 16, base: block_input}}}\n")
    se_module = next(m for m in netspec.build(resnet).modules() if type(m).__name__ == "SqueezeExcite")
    assert se_module.fc1.out_channels == 4 and netspec.summary(resnet).params == params(netspec.build(resnet))
    assert SE().count(256, ctx) == 8_464  # the default is SENet's, unchanged


def test_se_gate_and_inner_act_compute_torchvision_squeeze_excitation() -> None:
    from torchvision_mobilenets import SqueezeExcitation

    x = torch.randn(2, 24, 5, 5)
    for layer, reference in [
        (SE(reduction=4, divisor=8, gate="hardsigmoid"), SqueezeExcitation(24, 8, scale_activation=nn.Hardsigmoid)),
        (SE(reduction=4, base="block_input", act="silu"), SqueezeExcitation(24, 2, activation=nn.SiLU)),
    ]:
        module = layer.build(Shape(24, 5, 5), Context(block_input=8))
        randomize(reference, seed=5)
        copy_by_order(reference, module)
        torch.testing.assert_close(module(x), reference(x))
    bias_free = SE(bias=False).build(Shape(32, 4, 4), Context())
    assert bias_free.fc1.bias is None and bias_free.fc2.bias is None


def test_eca_and_cbam_gates_as_timm() -> None:
    eca = ECA(gate="hardsigmoid").build(Shape(64, 4, 4), Context())
    assert isinstance(eca.gate, nn.Hardsigmoid) and isinstance(ECA().build(Shape(64, 4, 4), Context()).gate, nn.Sigmoid)
    cbam = CBAM(gate="hardsigmoid", act="silu").build(Shape(64, 4, 4), Context())
    assert isinstance(cbam.channel.gate, nn.Hardsigmoid) and isinstance(cbam.spatial.gate, nn.Hardsigmoid)
    assert isinstance(cbam.channel.act, nn.SiLU)
    x = torch.randn(2, 64, 4, 4)
    with torch.no_grad():
        weights = torch.nn.functional.hardsigmoid(eca.conv(x.mean((2, 3)).unsqueeze(1))).transpose(1, 2).unsqueeze(-1)
        torch.testing.assert_close(eca(x), x * weights)
    assert CBAM(gate="hardsigmoid", act="silu").count(256, Context()) == 8_564  # gates have no parameters


# ---------------------------------------------------------------------------------------------
# Heads, scaling, strategies


def test_linear_act_is_mobilenet_v3s_classifier_order() -> None:
    model = netspec.build(netspec.load(SPECS / "mobilenet_v3_large.yaml"))
    head = list(model.children())[-3:]
    assert [type(m).__name__ for m in head] == ["LinearAct", "Dropout", "Linear"]
    assert isinstance(head[0].act, nn.Hardswish) and head[0].linear.out_features == 1280
    spec = netspec.loads("input: {channels: 4}\nlayers:\n  - avgpool\n  - linear: {out: 3, act: relu}\n")
    assert netspec.summary(spec).params == 15
    assert (netspec.build(spec)(-torch.ones(2, 4, 3, 3)) >= 0).all()


def test_widen_only_keeps_mobilenet_v2s_last_channel() -> None:
    spec = half_width_v2()
    convs = [m for m in netspec.build(spec).modules() if isinstance(m, nn.Conv2d)]
    assert convs[-1].out_channels == 1280 and convs[0].out_channels == 16
    wide = netspec.load(SPECS / "mobilenet_v2.yaml").model_copy(update={"scale": Scale(width=1.4, round="torchvision")})
    assert [m for m in netspec.build(wide).modules() if isinstance(m, nn.Conv2d)][-1].out_channels == 1792


# A search, not a property: the first example found is enough (shrinking it took 25-100 s), drawn deterministically
# from enough examples to find one (the ci profile's 25 sometimes were not).
SEARCH = settings(max_examples=500, phases=[Phase.generate], derandomize=True, database=None)


def test_the_stage_strategy_draws_inverted_stages() -> None:
    x, stage = find(nst.layer_cases("stage", sized=True),
                    lambda case: case[1].block == "inverted" and case[1].attention is not None, settings=SEARCH)
    assert isinstance(stage, Stage)
    find(nst.specs(kinds=["stage", "conv"]),
         lambda spec: any(getattr(layer, "block", None) == "inverted" for layer in spec.layers) and spec.drop_path > 0,
         settings=SEARCH)


@given(nst.layer_cases("stage", sized=True))
def test_inverted_stage_static_shape_and_params_match_runtime(case: tuple[Shape, Stage]) -> None:
    x, stage = case
    info = stage.infer(x, Context())
    module = stage.build(x, Context()).eval()
    with torch.no_grad():
        y = module(torch.randn(2, *x.dims()))
    assert tuple(y.shape[1:]) == info.shape.dims()
    assert params(module) == info.params


def test_drop_path_also_drops_resnet_blocks_branches() -> None:
    """Spec-wide: ResNet stages' residual blocks drop their branch before the addition (timm's ResNet drop_path)."""
    from netspec.modules.residual import ResidualBlock

    text = ("input: {channels: 8, size: 8}\ndrop_path: 0.5\nlayers:\n  - stage: {block: basic, out: 8, depth: 2}\n"
            "  - stage: {block: plain, out: 8, depth: 2}\n")
    spec = netspec.loads(text)
    model = netspec.build(spec)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert [None if b.drop_path is None else b.drop_path.p for b in blocks] == [None, 0.125, None, None]  # plain: none
    plain = netspec.build(spec.model_copy(update={"drop_path": 0.0}))
    plain.load_state_dict(model.state_dict())
    x = torch.randn(4, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x))
