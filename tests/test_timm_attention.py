"""Issue 22: ecam, lcbam, scoord, ela, strip and bat against timm's modules in timm's layout
(tests/official_timm_attention.py), and `timm:NAME` for every name of timm 1.0.31's get_attn."""
from __future__ import annotations

import math

import pytest
import torch

import netspec
import official_timm_attention as official
from netspec.errors import Invalid
from netspec.parsing import parse_entry
from netspec.shapes import Shape
from netspec.timm_attention import TIMM_ATTENTION
from test_self_attention import assert_same_function

GET_ATTN_NAMES = ["se", "ese", "eca", "ecam", "ceca", "ge", "gc", "gca", "cbam", "lcbam", "coord", "scoord", "ela",
                  "strip", "sk", "splat", "lambda", "bottleneck", "halo", "nl", "bat"]
"""timm 1.0.31's get_attn, in its order."""

REFERENCES = {"ecam": official.EcaModule, "lcbam": official.LightCbamModule, "scoord": official.SimpleCoordAttn,
              "ela": official.EfficientLocalAttn, "strip": official.StripAttn, "bat": official.BatNonLocalAttn}


def randomize_norms(module: torch.nn.Module) -> torch.nn.Module:
    for child in module.modules():
        if isinstance(child, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
            child.weight.data.uniform_(0.5, 1.5), child.bias.data.uniform_(-0.3, 0.3)
    return module


@pytest.mark.parametrize("kind", sorted(REFERENCES))
@pytest.mark.parametrize("channels", [48, 64, 200])
def test_timm_only_kind_equals_timm_layout(kind: str, channels: int) -> None:
    torch.manual_seed(0)
    size = (14, 7) if kind == "bat" else (7, 5)
    layer, findings = parse_entry(kind, ())
    assert layer is not None and not findings
    x = Shape(channels, *size)
    reference = randomize_norms(REFERENCES[kind](channels))
    assert layer.infer(x, netspec.layers.Context()).params == sum(p.numel() for p in reference.parameters())
    module = layer.build(x, netspec.layers.Context())
    if kind == "bat":  # Dropout2d: the same random channels in both when the generator restarts alike
        module.dropout.p = reference.dropout.p = 0.0
    assert_same_function(reference, module, (2, channels, *size))


TIMM_TWINS = {"cbam": official.CbamModule, "gc": official.GlobalContext,
              "gca": lambda channels: official.GlobalContext(channels, fuse_add=True, fuse_scale=False),
              "nl": official.NonLocalAttn, "coord": official.CoordAttn,
              "sk": official.SelectiveKernel, "splat": official.SplitAttn}
"""timm names that are netspec kinds with extra params, against timm's own module in its layout."""


@pytest.mark.parametrize("name", sorted(TIMM_TWINS))
@pytest.mark.parametrize("channels", [48, 60, 64, 100, 216])
def test_timm_name_equals_timms_module(name: str, channels: int) -> None:
    """In float64: the sums of the two layouts round differently in float32 (sk's gradients at 216 channels)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        check_timm_twin(name, channels)
    finally:
        torch.set_default_dtype(default)


def check_timm_twin(name: str, channels: int) -> None:
    torch.manual_seed(0)
    assert TIMM_ATTENTION[name].same
    layer, findings = parse_entry(f"timm:{name}", ())
    assert layer is not None and not findings
    x = Shape(channels, 6, 5)
    reference = randomize_norms(TIMM_TWINS[name](channels))
    for child in reference.modules():  # timm's LayerNorm2d and the zero-initialised ends: random, to see them
        if isinstance(child, torch.nn.LayerNorm):
            child.weight.data.uniform_(0.5, 1.5), child.bias.data.uniform_(-0.3, 0.3)
    assert layer.infer(x, netspec.layers.Context()).params == sum(p.numel() for p in reference.parameters())
    module = layer.build(x, netspec.layers.Context())
    assert_same_function(reference, module, (2, channels, 6, 5))
    # BN running statistics moved alike (same momentum) in the train step
    reference_norms = [m for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    netspec_norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [m.momentum for m in netspec_norms] == [m.momentum for m in reference_norms]
    for mine, theirs in zip(netspec_norms, reference_norms):
        torch.testing.assert_close(mine.running_mean, theirs.running_mean)
        torch.testing.assert_close(mine.running_var, theirs.running_var)


def test_timm_rounding_differs_from_the_papers_where_c_over_r_is_not_whole() -> None:
    def params(entry: str, channels: int) -> int:
        layer, _ = parse_entry(entry, ())
        return layer.infer(Shape(channels, 4, 4), netspec.layers.Context()).params

    # cbam at 56 channels: timm's round(3.5) = 4 hidden, the paper's floor 3 (defaults of netspec's own kind kept)
    assert params("timm:cbam", 56) == 2 * 56 * 4 + 2 * 49 + 2
    assert params({"cbam": {"mlp_bias": False}}, 56) == 2 * 56 * 3 + 2 * 49 + 2
    # nl at 100 channels: timm's make_divisible(12.5, 8) = 16, floor 12
    assert params("timm:nl", 100) == 3 * (100 * 16 + 16) + 16 * 100 + 100 + 2 * 100
    assert params({"nonlocal": {"reduction": 8}}, 100) == 3 * (100 * 12 + 12) + 12 * 100 + 100 + 2 * 100
    # coord at 216 channels: timm's make_divisible(216 / 24, 8) = 8, C // 16 = 13
    assert params("timm:coord", 216) == 3 * 216 * 8 + 2 * 8
    assert params({"coord": {"reduction": 16, "bias": False}}, 216) == 3 * 216 * 13 + 2 * 13


def test_the_table_holds_every_get_attn_name() -> None:
    assert list(TIMM_ATTENTION) == GET_ATTN_NAMES


@pytest.mark.parametrize("name", GET_ATTN_NAMES)
def test_every_get_attn_name_builds_as_an_entry_and_in_a_stage(name: str) -> None:
    spec = netspec.loads(f"input: {{channels: 32, size: 56}}\nlayers:\n  - timm:{name}\n"
                         f"  - stage: {{out: 32, width: 16, attention: timm:{name}}}\n")
    entry = TIMM_ATTENTION[name]
    assert spec.layers[0].kind == entry.kind == spec.layers[1].attention.kind
    for param, value in entry.params.items():
        assert getattr(spec.layers[0], param) == value
    summary = netspec.summary(spec)
    model = netspec.build(spec)
    assert summary.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 32, 56, 56)).shape == (1, 32, 56, 56)


def test_params_beside_a_timm_name_override_its_defaults() -> None:
    spec = netspec.loads("input: {channels: 64}\nlayers:\n  - {timm:se: {reduction: 4}}\n")
    assert spec.layers[0] == netspec.layers.SE(reduction=4, divisor=8, rounding="timm")


def test_an_unknown_timm_name_is_a_located_error_listing_the_known_ones() -> None:
    with pytest.raises(netspec.SpecError) as error:
        netspec.loads("input: {channels: 64}\nlayers:\n  - stage: {out: 64, attention: timm:sse}\n")
    message = str(error.value.problems[0])
    assert message.startswith("3:33: layers[0].stage.attention.timm:sse: unknown timm attention 'sse' "
                              "(did you mean 'se'?); timm's get_attn knows se, ese, eca")


@pytest.mark.parametrize("channels", [48, 64, 176])
def test_timm_se_eca_and_ceca_take_timms_widths(channels: int) -> None:
    def params(name: str) -> int:
        layer, _ = parse_entry(f"timm:{name}", ())
        return layer.infer(Shape(channels, 4, 4), netspec.layers.Context()).params

    rd = max(8, int(channels / 16 + 4) // 8 * 8)  # timm's make_divisible(C/16, 8, round_limit=0): 176 -> 8, not 16
    assert params("se") == 2 * channels * rd + rd + channels
    t = int(abs(math.log2(channels) + 1) / 2)
    assert params("eca") == params("ceca") == max(t if t % 2 else t + 1, 3)  # timm's kernel is at least 3
    layer, _ = parse_entry("timm:eca", ())
    assert layer.infer(Shape(4, 4, 4), netspec.layers.Context()).params == 3  # the paper's (netspec's eca): 1


@pytest.mark.parametrize("name", [name for name, entry in TIMM_ATTENTION.items() if entry.params])
def test_the_catalogues_written_defaults_read_back_as_the_timm_name(name: str) -> None:
    from netspec.catalogue import _written

    entry = TIMM_ATTENTION[name]
    text = f"input: {{channels: 64}}\nlayers:\n  - {entry.kind}: {_written(entry.params)}\n  - timm:{name}\n"
    spec = netspec.loads(text)
    assert spec.layers[0] == spec.layers[1]


# --- the catalogue's params formulas -----------------------------------------------------------------------


def evaluate(formula: str, values: dict[str, int]) -> float:
    """A catalogue formula (``2·C·rd + rd + C``) with its letters' values."""
    expression = formula.replace("·", "*").replace("²", "**2").replace("−", "-")
    return eval(expression, {"__builtins__": {}}, values)  # noqa: S307  (the catalogue's own strings)


def test_every_attention_kind_has_a_params_formula() -> None:
    from netspec.catalogue import FORMULAS
    from netspec.parsing import kinds_of
    from netspec.registry import builtin_kinds

    assert sorted(FORMULAS) == sorted(kind for kind in kinds_of("attention") if kind in builtin_kinds())


@pytest.mark.parametrize("kind", sorted({entry.kind for entry in TIMM_ATTENTION.values()}
                                        | {"bam", "cam", "danet", "pam", "psa", "simam", "triplet"}))
def test_the_catalogues_formula_is_the_kinds_count(kind: str) -> None:
    """At netspec's defaults, at every timm name's params, and at params drawn from the kind's own strategy."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from netspec.catalogue import FORMULAS, symbols
    from netspec.registry import builtin_kinds

    cls = builtin_kinds()[kind]

    def check(layer: netspec.layers.Layer, x: Shape) -> bool:
        context = netspec.layers.Context()
        try:
            info = layer.infer(x, context)
        except (netspec.SpecError, Invalid):  # params that do not fit this map
            return False
        if context.findings:
            return False
        assert evaluate(FORMULAS[kind](layer), symbols(layer, x)) == info.params, (layer, x)
        return True

    shapes = [Shape(c, h, w) for c, h, w in [(64, 16, 16), (96, 14, 14), (256, 56, 56), (200, 8, 24)]]
    checked = 0
    for params in [{}] + [entry.params for entry in TIMM_ATTENTION.values() if entry.kind == kind]:
        checked += sum(check(cls.model_validate(params), x) for x in shapes)
    assert checked >= 2

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(shapes).flatmap(lambda x: st.tuples(cls.strategy(x), st.just(x))))
    def drawn(case: tuple[netspec.layers.Layer, Shape]) -> None:
        check(*case)

    drawn()
