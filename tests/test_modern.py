"""Issue 20: modern CNN families on the block registry (ConvNeXt V1/V2, RegNetY, EfficientNetV2), at timm 1.0.31's
parameter counts and computing what timm's models compute (references in timm's layout: tests/timm_references.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
import timm_references as timm_ref
from netspec.layers.cbam import CBAM
from netspec.modules.norm import LayerNorm2d

SPECS = Path(__file__).resolve().parent.parent / "specs"

TIMM_COUNTS = {  # sum(p.numel() for p in timm.create_model(name).parameters()), timm 1.0.31
    "convnext_tiny.yaml": 28_589_128,
    "convnext_atto.yaml": 3_695_520,
    "convnextv2_tiny.yaml": 28_635_496,
    "regnety_016.yaml": 11_202_430,
    "regnety_032.yaml": 19_436_338,
}


@pytest.mark.parametrize(("file", "count"), sorted(TIMM_COUNTS.items()))
def test_spec_has_timms_parameter_count(file: str, count: int) -> None:
    assert netspec.summary(SPECS / file).params == count


def compare(spec: netspec.Spec | Path, reference: torch.nn.Module, size: int = 32) -> torch.nn.Module:
    """Random weights in ``reference``, loaded into netspec's model with ``netspec.load_weights`` (every tensor
    matched, strict), the same outputs in eval mode in float64."""
    model = netspec.build(spec)
    timm_ref.randomize_all(reference)
    report = netspec.load_weights(model, reference.state_dict(), strict=True)
    assert report.complete
    model, reference = model.double().eval(), reference.double().eval()
    x = torch.randn(2, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 1e-2  # the weights reach the output: the comparison can fail
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    return model


# --- ConvNeXt ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_convnext_atto_computes_what_timms_computes() -> None:
    compare(SPECS / "convnext_atto.yaml", timm_ref.convnext_atto())  # timm's atto: 1x1 convs + LayerNorm2d


@pytest.mark.slow
def test_convnext_tiny_computes_what_timms_computes() -> None:
    model = compare(SPECS / "convnext_tiny.yaml", timm_ref.convnext_tiny())
    block = model.stage3.block9
    assert [name for name, _ in block.named_parameters()][:3] == ["gamma", "conv_dw.weight", "conv_dw.bias"]


@pytest.mark.slow
def test_convnext_v2_with_grn_computes_what_timms_computes() -> None:
    text = (SPECS / "convnextv2_tiny.yaml").read_text()
    atto = text.replace("out: 96", "out: 40").replace("out: 192", "out: 80").replace("out: 384", "out: 160")
    atto = atto.replace("out: 768", "out: 320").replace("depth: 9", "depth: 6").replace("depth: 3", "depth: 2")
    compare(netspec.loads(atto), timm_ref.ConvNeXt((2, 2, 6, 2), (40, 80, 160, 320), grn=True, ls_init=None))


def test_convnext_tiny_cbam_adds_cbams_count_in_every_block() -> None:
    def cbam(channels: int) -> int:  # MLP C -> C/16 -> C with biases, spatial 7x7 conv 2 -> 1 and BN(1)
        hidden = channels // 16
        return 2 * channels * hidden + hidden + channels + 2 * 7 * 7 + 2

    blocks = {96: 3, 192: 3, 384: 9, 768: 3}
    expected = TIMM_COUNTS["convnext_tiny.yaml"] + sum(depth * cbam(c) for c, depth in blocks.items())
    assert expected == 29_002_318
    assert netspec.summary(SPECS / "convnext_tiny_cbam.yaml").params == expected
    model = netspec.build(SPECS / "convnext_tiny_cbam.yaml")
    assert sum(p.numel() for p in model.parameters()) == expected
    block = model.stage4.block3
    assert sum(p.numel() for p in block.attention.parameters()) == cbam(768)
    names = [name for name, _ in block.named_children()]
    assert names.index("attention") == names.index("mlp") + 1  # after the MLP, before the residual addition


def test_attention_in_a_convnext_block_runs_after_the_mlp_before_the_layer_scale() -> None:
    spec = netspec.loads("input: {channels: 8, size: 6}\ndefaults: {norm: layer, act: gelu}\nlayers:\n"
                         "  - stage: {block: convnext, out: 8, ls_init: 0.5, attention: {cbam: {reduction: 2}}}\n")
    block = netspec.build(spec, seed=0)[0].block1.eval()
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        mlp = block.mlp(block.norm(block.conv_dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        expected = x + 0.5 * block.attention(mlp)
        torch.testing.assert_close(block(x), expected)
    assert netspec.summary(spec).params == sum(p.numel() for p in block.parameters())
    assert CBAM(reduction=2).count(8, netspec.Context()) == sum(p.numel() for p in block.attention.parameters())


@pytest.mark.parametrize(("stage", "where", "message"), [
    ("{block: convnext, out: 16, stride: 2}", "stride", "keeps its input's size"),
    ("{block: convnext, out: 32}", "out", "must equal the stage's input channels (16)"),
    ("{block: convnext, out: 16, norm: batch}", "norm", "set `norm: layer`"),
    ("{block: convnext, out: 16, groups: 2}", "groups", "only for block: plain, basic or bottleneck"),
    ("{block: basic, out: 16, grn: true}", "grn", "only for block: convnext"),
    ("{block: convnext, out: 16, ls_init: -1.0}", "ls_init", "greater than or equal to 0"),
])
def test_bad_convnext_stages_are_located_errors(stage: str, where: str, message: str) -> None:
    text = f"input: {{channels: 16, size: 8}}\ndefaults: {{norm: layer, act: gelu}}\nlayers:\n  - stage: {stage}\n"
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(text, name="bad.yaml"))
    problems = [str(p) for p in caught.value.problems]
    assert any(f"layers[0].stage.{where}: " in p and message in p and p.startswith("bad.yaml:4:") for p in problems), \
        problems


def test_layer_norm_is_over_the_channels_on_maps_and_flat_tensors() -> None:
    spec = netspec.loads("input: {channels: 6, size: 5}\nlayers:\n  - conv: {out: 8, norm: layer, act: none}\n"
                         "  - layernorm\n  - avgpool\n  - layernorm: {eps: 1.0e-5}\n")
    summary = netspec.summary(spec)
    assert [row.info.params for row in summary.rows] == [6 * 9 * 8 + 16, 16, 0, 16]  # no conv bias before a norm
    model = netspec.build(spec, seed=0).eval()
    assert isinstance(model.conv1.norm, LayerNorm2d) and model.conv1.norm.eps == 1e-6 and model.layernorm2.eps == 1e-5
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        y = model.conv1.conv(x)
        expected = torch.nn.functional.layer_norm(y.permute(0, 2, 3, 1), (8,), eps=1e-6).permute(0, 3, 1, 2)
        torch.testing.assert_close(model.conv1(x), expected)
        pooled = model.layernorm1(model.conv1(x)).mean((2, 3))
        torch.testing.assert_close(model(x), torch.nn.functional.layer_norm(pooled, (8,), eps=1e-5))


# --- RegNetY ----------------------------------------------------------------------------------------------


def test_regnety_widths_in_the_specs_are_timms_generated_ones() -> None:
    for file, config in (("regnety_016.yaml", (48, 20.71, 2.65, 27, 24)), ("regnety_032.yaml", (80, 42.63, 2.66, 21, 24))):
        stages = [layer for layer in netspec.load(SPECS / file).layers if layer.kind == "stage"]
        assert ([s.out for s in stages], [s.depth for s in stages]) == timm_ref.generate_regnet(*config)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["regnety_016", "regnety_032"])
def test_regnety_computes_what_timms_computes(name: str) -> None:
    model = compare(SPECS / f"{name}.yaml", getattr(timm_ref, name)())
    block = model.stage2.block1
    assert [name for name, _ in block.body.named_children()] == ["conv1", "conv2", "attention", "conv3"]
    assert block.body.conv2.conv.groups == block.body.conv2.conv.out_channels // 24
    assert block.body.attention.fc1.out_channels == block.body.conv1.conv.in_channels // 4  # SE on the block input


def test_regnet_groups_are_group_width_channels_each() -> None:
    spec = netspec.loads("input: {channels: 8, size: 8}\nlayers:\n"
                         "  - stage: {block: regnet, out: 16, width: 12, group_width: 4, stride: 2}\n")
    block = netspec.build(spec)[0].block1
    assert block.body.conv2.conv.groups == 3 and block.body.conv1.conv.out_channels == 12
    assert netspec.summary(spec).params == sum(p.numel() for p in block.parameters())
    with pytest.raises(netspec.SpecError) as caught:  # one problem: no second one about the groups it would give
        netspec.summary(netspec.loads(spec.to_yaml().replace("group_width: 4", "group_width: 5")))
    assert [str(problem) for problem in caught.value.problems] == [
        "5:70: layers[0].stage.group_width: must divide the block's width (12 channels)"]
    with pytest.raises(netspec.SpecError, match=r"stage.avd: only for block: plain, basic or bottleneck \(block: regnet does not use it\)"):
        netspec.summary(netspec.loads(spec.to_yaml().replace("group_width: 4", "group_width: 4, avd: true")))


# --- EfficientNetV2 (TF port): Fused-MBConv, padding: same ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tf_efficientnetv2_b0", "tf_efficientnetv2_s"])
def test_efficientnetv2_computes_what_timms_tf_port_computes(name: str) -> None:
    file = SPECS / f"{name.removeprefix('tf_')}.yaml"
    assert netspec.summary(file).params == {"tf_efficientnetv2_b0": 7_139_704, "tf_efficientnetv2_s": 21_458_488}[name]
    model = compare(file, getattr(timm_ref, name)(), size=35)  # odd sizes: TF's SAME pads strided convs unevenly
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 for m in norms)
    assert type(model.conv1.conv).__name__ == "Conv2dSame" and type(model.stage2.block2.block[0].conv) is torch.nn.Conv2d


def test_same_padding_is_tensorflows() -> None:
    spec = netspec.loads("input: {channels: 2, size: [7, 8]}\nlayers:\n"
                         "  - conv: {out: 3, kernel: 3, stride: 2, padding: same, norm: none, act: none}\n"
                         "  - conv: {out: 3, kernel: 5, padding: same, norm: none, act: none}\n"
                         "  - stage: {block: fused, out: 4, expand: 2, stride: 2, padding: same}\n")
    summary = netspec.summary(spec)
    assert [row.info.shape.dims() for row in summary.rows] == [(3, 4, 4), (3, 4, 4), (4, 2, 2)]
    model = netspec.build(spec, seed=0).eval()
    x = torch.randn(1, 2, 7, 8)
    first = model.conv1.conv
    with torch.no_grad():  # 7 rows, 4 out at stride 2: 2 pad rows, 1 each side; 8 columns: 1, at the right
        expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 1, 1)), first.weight, first.bias, 2)
        torch.testing.assert_close(model.conv1(x), expected)
    assert model.conv2.conv.padding == (2, 2)  # stride 1: TF's SAME is symmetric, a static padding
    assert netspec.summary(spec).params == sum(p.numel() for p in model.parameters())


def test_fused_block_is_one_full_conv_then_a_projection_or_a_single_conv_at_expand_1() -> None:
    spec = netspec.loads("input: {channels: 8, size: 8}\nlayers:\n"
                         "  - stage: {block: fused, out: 8, depth: 2, attention: {se: {reduction: 4, base: block_input}}}\n"
                         "  - stage: {block: fused, out: 8, expand: 1}\n"
                         "  - stage: {block: fused, out: 16, expand: 1, kernel: 5, stride: 2}\n")
    model = netspec.build(spec, seed=0).eval()
    block = model.stage1.block1
    assert [type(m).__name__ for m in block.block] == ["ConvNormAct", "SqueezeExcite", "ConvNormAct"]
    assert block.block[0].conv.weight.shape == (32, 8, 3, 3) and block.block[0].conv.groups == 1
    assert block.block[1].fc1.out_channels == 2 and not hasattr(block.block[2], "act") and block.residual
    single = model.stage2.block1
    assert len(single.block) == 1 and single.block[0].conv.weight.shape == (8, 8, 3, 3) and single.residual
    assert hasattr(single.block[0], "act")  # timm's ConvBnAct: the conv keeps its act
    strided = model.stage3.block1
    assert strided.block[0].conv.weight.shape == (16, 8, 5, 5) and not strided.residual
    assert netspec.summary(spec).params == sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(single(x), single.block(x) + x)


@pytest.mark.parametrize(("stage", "where", "message"), [
    ("{block: fused, out: 8, expand: 2, width: 16}", "expand", "not both"),
    ("{block: fused, out: 8, groups: 2}", "groups", "only for block: plain, basic or bottleneck"),
    ("{block: basic, out: 8, padding: same}", "padding", "only for block: inverted or fused"),
    ("{block: fused, out: 8, padding: valid}", "padding", "input should be 'same'"),
])
def test_bad_fused_stages_are_located_errors(stage: str, where: str, message: str) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(f"input: {{channels: 8, size: 8}}\nlayers:\n  - stage: {stage}\n"))
    problems = [str(p) for p in caught.value.problems]
    assert any(f"layers[0].stage.{where}: " in p and message in p for p in problems), problems


@pytest.mark.parametrize(("padding", "got"), [("-1", "-1"), ("sam", "'sam'"), ("1.5", "1.5"), ("[1, 2]", "[1, 2]"),
                                            ("true", "True")])
def test_a_bad_conv_padding_is_one_located_error(padding: str, got: str) -> None:
    """`padding` is a number or `same`: a wrong one is one message, not one per alternative of the union."""
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(f"input: {{channels: 3, size: 8}}\nlayers:\n  - conv: {{out: 8, padding: "
                                      f"{padding}}}\n", name="net.yaml"))
    assert [str(p) for p in caught.value.problems] == [
        f"net.yaml:3:29: layers[0].conv.padding: input should be a whole number >= 0 (zeros on each side) or 'same' "
        f"(TensorFlow's SAME) (got {got})"]


def test_convnext_and_regnet_drop_paths_are_timms_linspace_to_the_rate() -> None:
    """timm's convnext.py and regnet.py: linspace(0, drop_path_rate, N) over all N blocks, the last at the full rate
    (EfficientNet's blocks keep rate * i / N: tests/test_inverted.py)."""
    from netspec.modules.stochastic_depth import StochasticDepth

    for stages, kinds in [("  - stage: {block: convnext, out: 8, depth: 2, norm: layer}\n"
                           "  - stage: {block: convnext, out: 8, depth: 3, norm: layer}\n", "ConvNeXtBlock"),
                          ("  - stage: {block: regnet, out: 8, depth: 2, stride: 2}\n"
                           "  - stage: {block: regnet, out: 16, depth: 3, stride: 2}\n", "ResidualBlock")]:
        model = netspec.build(netspec.loads(f"input: {{channels: 8, size: 8}}\ndrop_path: 0.4\nlayers:\n{stages}"))
        blocks = [m for m in model.modules() if type(m).__name__ == kinds]
        rates = [next((d.p for d in block.modules() if isinstance(d, StochasticDepth)), 0.0) for block in blocks]
        assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_netspec_blocks_lists_every_stage_block_with_its_params(capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    assert main(["blocks"]) == 0
    listing = capsys.readouterr().out.split("stage blocks (`stage: {block: NAME}`)")[1]
    lines = {line.split(":")[0].strip(): line for line in listing.splitlines()[1:]
             if line.startswith("  ") and not line.startswith("    ")}
    own = [line.strip() for line in listing.splitlines() if line.startswith("    ")]  # a block's own params
    assert own == [
        "group_width: default None - channels in each group of the 3x3 group conv (groups = width / group_width; "
        "default one group) (regnet only)",
        "ls_init: default None - initial value of the layer scale gamma (default 1e-6; with `grn` none); 0: no layer "
        "scale (convnext only)",
        "grn: default False - ConvNeXt V2's Global Response Norm in the MLP (and no layer scale unless `ls_init` is "
        "given) (convnext only)"]
    assert list(lines) == ["plain", "basic", "bottleneck", "inverted", "fused", "regnet", "convnext"]
    assert lines["convnext"].endswith("params: attention, expand, grn, kernel, ls_init")
    assert lines["regnet"].endswith("params: attention, group_width, width")
    assert "Radosavovic" in lines["regnet"] and "EfficientNetV2" in lines["fused"]


REGNET_STAGE = ("input: {channels: 32, size: 8}\ndefaults: {norm: layer, act: gelu}\nlayers:\n"
                "  - stage: {block: regnet, out: 32, group_width: 8}\n")


def _problems(spec: netspec.Spec) -> list[str]:
    """The problems of ``spec`` (a copy keeps its entries' places in the source: 4:N: first)."""
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(spec)
    return [str(problem).split(": ", 1)[1] for problem in caught.value.problems]


def _with_stage(spec: netspec.Spec, stage: object) -> netspec.Spec:
    return spec.model_copy(update={"layers": [stage]})


def test_a_copy_or_assignment_to_another_block_keeps_a_param_it_does_not_use_as_a_located_error() -> None:
    spec = netspec.loads(REGNET_STAGE)
    regnet = spec.layers[0]
    for block in ("convnext", "bottleneck"):
        copied = regnet.model_copy(update={"block": block})
        assigned = regnet.model_copy()
        assigned.block = block
        for stage in (copied, assigned):
            assert stage.block == block and stage.group_width == 8 and regnet.block == "regnet"
            assert _problems(_with_stage(spec, stage)) == [
                f"layers[0].stage.group_width: only for block: regnet (block: {block} does not use it)"]
            text = _with_stage(spec, stage).to_yaml()  # the dump says what check saw: it loads with the same error
            assert "group_width: 8" in text
            with pytest.raises(netspec.SpecError, match=rf"stage.group_width: only for block: regnet \(block: {block}"):
                netspec.loads(text)
    back = regnet.model_copy(update={"block": "convnext"}).model_copy(update={"block": "regnet"})
    assert back == regnet and back.block_params == regnet.block_params
    assert netspec.summary(_with_stage(spec, back)).params == netspec.summary(spec).params
    convnext = regnet.model_copy(update={"block": "convnext", "group_width": None})  # at its default: dropped
    assert convnext.ls_init is None and convnext.block_params is not None and "group_width" not in convnext.model_dump()
    assert netspec.summary(_with_stage(spec, convnext)).params > 0
    with pytest.raises(ValueError, match="block"):  # an unknown block is refused as on assignment
        regnet.model_copy(update={"block": "regnot"})


def test_a_copy_updating_a_block_param_validates_it_in_the_blocks_model() -> None:
    spec = netspec.loads(REGNET_STAGE)
    wider = spec.layers[0].model_copy(update={"group_width": 16})
    assert wider.group_width == 16 and wider.block_params.group_width == 16 and spec.layers[0].group_width == 8
    assert wider.to_entry() == {"stage": {"out": 32, "block": "regnet", "group_width": 16}}
    assert wider.model_dump()["group_width"] == 16 and "group_width" not in wider.model_fields_set
    model = netspec.build(_with_stage(spec, wider))
    assert [m.groups for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1] == [2]
    with pytest.raises(ValueError, match="group_width\n  Input should be greater than or equal to 1"):
        spec.layers[0].model_copy(update={"group_width": 0})
    stray = spec.layers[0].model_copy(update={"grn": True})  # another block's param: reported, as in YAML
    assert _problems(_with_stage(spec, stray)) == [
        "layers[0].stage.grn: only for block: convnext (block: regnet does not use it)"]
    with pytest.raises(ValueError, match="grn_typo"):
        spec.layers[0].model_copy(update={"grn_typo": True})


def test_a_stage_dump_honours_include_and_exclude_for_block_params() -> None:
    stage = netspec.loads(REGNET_STAGE).layers[0]
    assert stage.model_dump(include={"out"}) == {"out": 32}
    assert stage.model_dump(include={"out", "group_width"}) == {"out": 32, "group_width": 8}
    assert "group_width" not in stage.model_dump(exclude={"group_width"})
    assert stage.model_dump(exclude={"out"})["group_width"] == 8
    assert "group_width" not in stage.model_dump(include={"out": True})
    assert "group_width" not in stage.model_dump_json(exclude={"group_width"})
    stray = stage.model_copy(update={"block": "basic"})
    assert stray.model_dump(exclude_unset=True) == {"out": 32, "block": "basic", "group_width": 8}
    assert "group_width" not in stray.model_dump(exclude={"group_width"})


def test_another_blocks_param_at_its_default_is_not_a_problem_and_overrides_can_switch_blocks() -> None:
    """As before blocks owned their params: `group_width: null` on a basic stage says nothing, so it loads; a sweep's
    overrides can switch a stage's block, setting the old block's param back and the new one's."""
    stage = "input: {channels: 8, size: 16}\nlayers:\n  - stage: {block: basic, out: 32, group_width: null}\n"
    assert netspec.loads(stage).layers[0].block == "basic"
    spec = netspec.loads(REGNET_STAGE)
    basic = netspec.build(spec, overrides={"layers.0.block": "basic", "layers.0.group_width": None})
    assert not any(m.groups > 1 for m in basic.modules() if isinstance(m, torch.nn.Conv2d))
    convnext = netspec.build(spec, overrides={"layers.0.block": "convnext", "layers.0.grn": True,
                                             "layers.0.group_width": None})
    assert [name for name, _ in convnext.named_modules() if name.endswith("grn")]
    with pytest.raises(netspec.SpecError, match=r"stage.grn: only for block: convnext \(block: regnet"):
        netspec.build(spec, overrides={"layers.0.grn": True})


def test_a_stage_made_without_validation_reads_its_blocks_params_at_their_defaults() -> None:
    from netspec.layers import Stage

    stage = Stage.model_construct(block="regnet", out=8)
    assert stage.group_width is None and Stage.model_construct(block="convnext", out=8).grn is False
