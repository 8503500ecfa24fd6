"""timm models read into specs (``netspec.from_module``, ``netspec import timm:NAME``), proven equal.

timm needs torchvision, and this project's torchvision wheel imports only beside torch 2.14.1, not beside the
torch 2.13.0 of the main test environment: here every test skips, saying so. CI runs this file in a second
environment with torch 2.14.1, torchvision 0.29.1 and timm 1.0.31 (``.ci/run``; docs/development/tests.md).
"""
from __future__ import annotations

import pytest

timm = pytest.importorskip(
    "timm", reason="timm (and the torchvision it imports) is not importable beside this torch: .ci/run runs this "
                   "file in the interop environment (torch 2.14.1, torchvision 0.29.1, timm 1.0.31)")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import netspec  # noqa: E402
from netspec.importers.modules import ConversionError, source_state_dict, verify_spec  # noqa: E402

SIZE = 64
"""Input side of every verification pass: small, each network still reaches a 2x2 map."""

MODELS = ["resnet18", "resnet50", "resnet50d", "resnext50_32x4d", "seresnet50", "ecaresnet50d", "skresnet34",
          "resnest50d", "gcresnet50t", "mobilenetv3_large_100", "efficientnet_b0", "resnet26t"]
ATTENTION = {"se": "se", "ese": "ese", "eca": "eca", "ceca": "eca", "coord": "coord", "cbam": "cbam", "gc": "gc",
             "gca": "gc", "nl": "nonlocal", "ecam": "ecam", "lcbam": "lcbam", "scoord": "scoord", "ela": "ela",
             "strip": "strip", "sk": "sk", "splat": "splat", "bat": "bat", "lambda": "lambda", "halo": "halo_attn"}
"""timm attn_layer names whose module a netspec attention kind computes exactly (resnet26d's block_args), and
that kind. Of timm's get_attn names two are left out, both for timm's reasons: 1.0.31's ``ge`` (GatherExcite)
fails to construct (a duplicate act_layer argument; its class without MLP is tested in resnet26d below), and
``bottleneck`` (BottleneckAttn) needs a feat_size that create_attn never passes (it reads alone, and in
botnet26t below)."""
ATTENTION_SIZE = {"bat": 224, "halo": 256}
"""Inputs where the kind's tiles fit every stage's map (BAT's blocks of 7, HaloAttn's 8x8 query blocks)."""
ATTENTION_GAIN = {"lambda": 0.5}
"""BN weights scaled down where the random ones overflow: a lambda's output is cubic in its input (q (k^T v)), so
timm's own resnet26d with lambda attention and BN weights up to 1.5 gives inf, then NaN, in float32."""


def shuffle_norms(model: nn.Module, gain: float = 1.0) -> nn.Module:
    """Random BN statistics and affine params (timm zero-inits the last BN of each block): every path counts.
    ``gain`` scales the affine weights (0.5 to 1.5 by default)."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            shape = module.running_mean.shape
            module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            module.weight.data.copy_((torch.rand(shape, generator=generator) + 0.5) * gain)
            module.bias.data.copy_(torch.randn(shape, generator=generator) * 0.1)
    return model


def convert(name: str, gain: float = 1.0, **kwargs: object) -> tuple[nn.Module, netspec.Spec]:
    torch.manual_seed(0)
    source = shuffle_norms(timm.create_model(name, **kwargs), gain).eval()
    return source, netspec.from_module(source, input_size=SIZE)


def check_equal(source: nn.Module, spec: netspec.Spec, size: int = SIZE) -> None:
    """The proof from_module ran, spelled out: count, strict load, equal outputs."""
    expected = sum(p.numel() for p in source.parameters())
    assert netspec.summary(spec).params == expected
    model = netspec.build(spec)
    assert sum(p.numel() for p in model.parameters()) == expected
    report = netspec.load_weights(model, source_state_dict(source), strict=True)  # byobnet's shortcuts moved last
    assert report.complete
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours, theirs = model.eval()(x), source(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()))


@pytest.mark.parametrize("name", MODELS)
def test_timm_model_converts_with_equal_outputs(name: str) -> None:
    source, spec = convert(name)
    check_equal(source, spec)
    stages = [layer for layer in spec.layers if layer.kind == "stage"]
    if "resnet" in name or "resnext" in name or "resnest" in name:
        assert len(stages) == 4  # one stage per timm layerN: its blocks agree on every param
    else:
        assert any(stage.depth > 1 for stage in stages)


LATER_KINDS = {"convnext_atto": "convnext", "convnextv2_atto": "convnext", "regnety_002": "regnet",
               "tf_efficientnetv2_b0": "fused", "efficientnetv2_rw_t": "fused"}
"""Networks of the kinds added after the first importer (ConvNeXt V1/V2, RegNetY, EfficientNetV2's fused blocks,
the tf_ ports' TensorFlow SAME padding), and the block kind their stages must read as."""
LATER_GAIN = {"efficientnetv2_rw_t": 0.5}
"""BN weights scaled down where BN weights up to 1.5 make timm's own network ill-conditioned (outputs near 1e5
that timm's own float32 forward changes by 5e4 between a batch of 1 and a batch of 2)."""


@pytest.mark.parametrize("name", sorted(LATER_KINDS))
def test_later_kinds_convert_with_equal_outputs(name: str) -> None:
    source, spec = convert(name, LATER_GAIN.get(name, 1.0))
    check_equal(source, spec)
    blocks = {layer.block for layer in spec.layers if layer.kind == "stage"}
    assert LATER_KINDS[name] in blocks
    if name.startswith("convnext"):  # LayerNorm the default, the stem's joins its conv; the others are entries
        assert spec.defaults.norm == "layer" and spec.layers[0].norm is None and spec.layers[0].act == "none"
        assert [layer.kind for layer in spec.layers][-3:] == ["avgpool", "layernorm", "linear"]
    if name.startswith("tf_"):
        assert spec.layers[0].padding == "same"


BYOANET = {"botnet26t_256": ("bottleneck_attn", 256), "eca_botnext26ts_256": ("bottleneck_attn", 256),
           "halonet26t": ("halo_attn", 256), "lambda_resnet26t": ("lambda", 64),
           "lambda_resnet26rpt_256": ("lambda", 256)}
"""timm's self-attention networks (byobnet's SelfAttnBlock: the layer in place of the 3x3 conv), the `conv` kind
their attention stages read as, and the input (BoTNet's and lambda_resnet26rpt's position tables are fixed at
256; HaloNet's 8x8 blocks). lambda_resnet26rpt's lambdas are relative-position ones (`r: null`)."""


@pytest.mark.parametrize("name", sorted(BYOANET))
def test_self_attention_networks_convert_with_equal_outputs(name: str) -> None:
    kind, size = BYOANET[name]
    torch.manual_seed(0)
    source = shuffle_norms(timm.create_model(name), 0.5).eval()  # lambdas are cubic in their input: see ATTENTION_GAIN
    spec = netspec.from_module(source, input_size=size)
    check_equal(source, spec, size=size)
    convs = {layer.conv.kind for layer in spec.layers if layer.kind == "stage" and layer.conv is not None}
    assert convs == {kind}
    if name == "lambda_resnet26rpt_256":  # relative-position lambdas: no local window
        assert {layer.conv.r for layer in spec.layers if layer.kind == "stage" and layer.conv is not None} == {None}


@pytest.mark.parametrize("attention", sorted(ATTENTION))
def test_resnet26d_with_each_attention_kind(attention: str) -> None:
    size = ATTENTION_SIZE.get(attention, SIZE)
    torch.manual_seed(0)
    source = timm.create_model("resnet26d", block_args=dict(attn_layer=attention))
    source = shuffle_norms(source, ATTENTION_GAIN.get(attention, 1.0)).eval()
    spec = netspec.from_module(source, input_size=size)
    check_equal(source, spec, size=size)
    kinds = {layer.attention.kind for layer in spec.layers if layer.kind == "stage"}
    assert kinds == {ATTENTION[attention]}


@pytest.mark.parametrize("extent", [0, 2])
def test_resnet26d_with_gather_excite(extent: int) -> None:
    """``ge``: timm 1.0.31's ``attn_layer="ge"`` fails to build (GatherExcite's MLP), so the module is passed
    as timm's own class without its MLP, which builds, and reads as netspec's ``ge``."""
    from functools import partial

    from timm.layers import GatherExcite

    torch.manual_seed(0)
    attn = partial(GatherExcite, use_mlp=False, extent=extent)
    source = shuffle_norms(timm.create_model("resnet26d", block_args=dict(attn_layer=attn))).eval()
    spec = netspec.from_module(source, input_size=SIZE)
    check_equal(source, spec)
    assert {(layer.attention.kind, layer.attention.extent) for layer in spec.layers if layer.kind == "stage"} \
        == {("ge", extent)}


def test_timm_attention_without_a_netspec_kind_is_a_named_error() -> None:
    """A module netspec has no params for, inside a block: the block, its place and the reason are named."""
    from functools import partial

    from timm.layers import BlurPool2d

    # a module in the attention's place that is no attention netspec knows (a stride-1 blur)
    source = timm.create_model("resnet26d", block_args=dict(attn_layer=partial(BlurPool2d, stride=1)))
    with pytest.raises(ConversionError) as caught:
        netspec.from_module(source, verify=False)
    message = str(caught.value)
    assert "Bottleneck at layer1.0" in message and "its attention se is a timm.layers.blur_pool.BlurPool2d" in message
    assert "which netspec does not know (known: " in message and "LambdaLayer" in message


def test_anti_aliasing_is_a_named_error() -> None:
    """aa_layer (BlurPool) has no netspec param: each block that has one is named, and nothing is returned."""
    from timm.layers import BlurPool2d

    with pytest.raises(ConversionError) as caught:
        netspec.from_module(timm.create_model("resnet18", aa_layer=BlurPool2d), verify=False)
    message = str(caught.value)
    assert "BasicBlock at layer2.0 (and 2 more like it): its aa layer has no netspec param" in message
    assert "BlurPool2d at maxpool.1" in message and "netspec knows these blocks" in message


@pytest.mark.parametrize("name, shipped, size", [
    ("regnety_016", "regnety_016", 224), ("convnext_atto", "convnext_atto", 224),
    ("convnextv2_tiny", "convnextv2_tiny", 224), ("botnet26t_256", "botnet26t", 256),
    ("halonet26t", "halonet26t", 256), ("lambda_resnet26t", "lambda_resnet26t", 256),
])
def test_later_networks_read_as_the_shipped_specs(name: str, shipped: str, size: int) -> None:
    """The spec read from timm's model has the shipped spec's entries, defaults and summary (kinds, shapes,
    parameters; the shipped specs spell out some defaults, e.g. `padding: 1`)."""
    ours = netspec.from_module(timm.create_model(name), input_size=size, verify=False)
    hand = netspec.load(f"specs/{shipped}.yaml")
    assert ours.defaults == hand.defaults
    rows = [[(row.layer.kind, row.info.shape, row.info.params) for row in netspec.summary(spec).rows]
            for spec in (ours, hand)]
    assert rows[0] == rows[1]
    if name == "regnety_016":
        assert ours.layers == hand.layers  # entry for entry


def test_seresnet50_spec_reads_as_written_by_hand() -> None:
    _, spec = convert("seresnet50")
    text = spec.to_yaml()
    assert "stage: {out: 256, depth: 3, attention: se}" in text
    assert "stage: {out: 2048, depth: 3, stride: 2, attention: se}" in text


def test_edited_spec_keeps_every_weight_that_fits() -> None:
    """The README's walk: import seresnet50, swap SE for ECA by name, load the checkpoint by architecture."""
    source, spec = convert("seresnet50")
    edited = netspec.loads(spec.to_yaml().replace("attention: se", "attention: eca"))
    model = netspec.build(edited)
    report = netspec.load_weights(model, source.state_dict())
    assert not report.mismatched
    assert {unit.name.rsplit(".", 1)[-1] for unit in report.unused} == {"fc1", "fc2"}  # only the SE convs
    assert len(report.new) == 16 and all("attention" in unit.name for unit in report.new)  # one ECA per block
    se_values = sum(unit.values for unit in report.unused)
    state = source.state_dict()
    values = sum(tensor.numel() for key, tensor in state.items() if not key.endswith("num_batches_tracked"))
    assert report.loaded_values == values - se_values  # every parameter and BN statistic but the SE's


def test_cli_import_writes_a_verified_spec(tmp_path, capsys) -> None:
    from netspec.cli import main

    out, weights = tmp_path / "r.yaml", tmp_path / "r.pt"
    assert main(["import", "timm:resnet26d", "--args", '{"block_args": {"attn_layer": "eca"}}', "--size", "64",
                 "-o", str(out), "--weights-out", str(weights)]) == 0
    assert "verified" in capsys.readouterr().err
    spec = netspec.load(out)
    assert [layer.attention.kind for layer in spec.layers if layer.kind == "stage"] == ["eca"] * 4
    assert main(["build", str(out), "--weights", str(weights), "--strict"]) == 0
    assert main(["import", "timm:resnet26d", "--args", '{"block_args": {"attn_layer": "ge"}}']) == 1
    assert "timm.create_model('resnet26d'" in capsys.readouterr().err  # timm 1.0.31's own GatherExcite bug


def test_cli_weights_of_shortcut_first_blocks_load_strictly(tmp_path, capsys) -> None:
    """byobnet's blocks register their shortcut first: --weights-out writes the tensors in the spec's order."""
    from netspec.cli import main

    out, weights = tmp_path / "g.yaml", tmp_path / "g.pt"
    assert main(["import", "timm:gcresnet50t", "--size", "64", "-o", str(out), "--weights-out", str(weights)]) == 0
    assert main(["build", str(out), "--weights", str(weights), "--strict"]) == 0
    assert "attention_at: mid" in out.read_text()


def test_unknown_timm_name_suggests() -> None:
    from netspec.importers import import_source

    with pytest.raises(netspec.SpecError, match="did you mean"):
        import_source("timm:resnet5O")


TORCHVISION = ["resnet18", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0",
               "efficientnet_v2_s", "regnet_y_400mf", "regnet_x_400mf", "convnext_tiny"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_model_converts_with_equal_outputs(name: str) -> None:
    import torchvision

    torch.manual_seed(0)
    source = shuffle_norms(torchvision.models.get_model(name)).eval()
    spec = netspec.from_module(source, input_size=SIZE)
    check_equal(source, spec)


@pytest.mark.parametrize("make", [
    lambda: timm.layers.EcaModule(64), lambda: timm.layers.CecaModule(64), lambda: timm.layers.SEModule(64),
    lambda: timm.layers.coord_attn.CoordAttn(64), lambda: timm.layers.EffectiveSEModule(64),
    # timm 1.0.31's GatherExcite fails to construct with an MLP or extra params (a *dd argument bug in timm)
    lambda: timm.layers.GatherExcite(64, use_mlp=False), lambda: timm.layers.GatherExcite(64, use_mlp=False, extent=2),
    lambda: timm.layers.cbam.CbamModule(64), lambda: timm.layers.GlobalContext(64),
    lambda: timm.layers.GlobalContext(64, fuse_add=True, fuse_scale=False), lambda: timm.layers.NonLocalAttn(64),
    lambda: timm.layers.get_attn("lambda")(64), lambda: timm.layers.get_attn("halo")(64, block_size=4, halo_size=1),
    lambda: timm.layers.get_attn("halo")(64, num_heads=4, dim_head=8, qkv_bias=True, scale_pos_embed=True),
    lambda: timm.layers.get_attn("bottleneck")(64, feat_size=16),
], ids=["eca", "ceca", "se", "coord", "ese", "ge", "ge_extent2", "cbam", "gc", "gca", "nl", "lambda", "halo",
        "halo_params", "bottleneck"])
def test_timm_attention_module_alone_becomes_its_kind(make) -> None:
    """Each alone after a conv: from_module verifies the count, a strict load and equal outputs."""
    source = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), make()).eval()
    spec = netspec.from_module(source, input_size=16)  # verified: count, strict load, equal outputs
    assert [layer.kind for layer in spec.layers][0] == "conv" and len(spec.layers) == 2


@pytest.mark.parametrize("name, channels", [("coord", 216), ("cbam", 56), ("gc", 60), ("nl", 100)])
def test_timm_attention_with_timms_rounding_reads_as_its_timm_name(name: str, channels: int) -> None:
    """Widths where timm's rounding and the paper's differ: the reader finds timm's params (equal outputs)."""
    from netspec.timm_attention import TIMM_ATTENTION

    source = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), timm.layers.get_attn(name)(channels)).eval()
    spec = netspec.from_module(source, input_size=8)
    layer = spec.layers[-1]
    entry = TIMM_ATTENTION[name]
    assert layer.kind == entry.kind
    assert {key: getattr(layer, key) for key in entry.params} == entry.params


@pytest.mark.parametrize("name", ["lcbam", "scoord", "ela", "strip", "bat", "sk", "splat", "cbam", "gc", "gca",
                                  "nl", "coord"])
@pytest.mark.parametrize("channels", [48, 64])
def test_timm_only_attention_alone_reads_as_its_twin_kind(name: str, channels: int) -> None:
    """timm's LightCbamModule, SimpleCoordAttn, EfficientLocalAttn, StripAttn and BatNonLocalAttn (verified: count,
    strict load, equal outputs) read as the netspec kind ``timm:NAME`` names, with its params."""
    from netspec.parsing import parse_entry

    source = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), timm.layers.get_attn(name)(channels)).eval()
    spec = netspec.from_module(source, input_size=28)  # BAT's blocks of 7 divide 28
    layer, _ = parse_entry(f"timm:{name}", ())
    assert spec.layers[-1].model_dump() == layer.model_dump()


def test_ecam_alone_says_its_channels_are_unknown() -> None:
    source = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), timm.layers.get_attn("ecam")(64)).eval()
    with pytest.raises(ConversionError, match="EcaModule: its input channels are unknown"):
        netspec.from_module(source, input_size=16)
