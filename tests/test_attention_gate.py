"""Issue 13: `attention_gate` (Attention U-Net's gate, two inputs), LeeJunHyun's AttU_Net and U_Net, and
MobileNetV2 + coordinate attention as houqb/CoordAttention releases it: counts, behaviour, and the same function
as the official code (random weights copied by state-dict order)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import netspec
import network_references as reference
import unet_references as official
from netspec.layers import AttentionGate, Context, Stage
from netspec.shapes import Shape

SPECS = Path(__file__).resolve().parent.parent / "specs"

GATED = """\
input: {channels: 3, size: 16}
layers:
  - conv: {out: 12}
    name: skip
  - conv: {out: 20}
    name: signal
  - attention_gate: {inter: 6}
    from: [signal, skip]
"""


def gate_module(g: int, x: int, **params: int) -> torch.nn.Module:
    layer = AttentionGate(**params)
    return layer.build_inputs([Shape(g, 8, 8), Shape(x, 8, 8)], Context())


@given(st.integers(1, 64), st.integers(1, 64), st.one_of(st.none(), st.integers(1, 64)))
def test_attention_gate_params(f_g: int, f_l: int, inter: int | None) -> None:
    f_int = inter if inter is not None else max(f_l // 2, 1)  # AttU_Net passes F_int = F_l / 2
    info = AttentionGate(inter=inter).infer_inputs([Shape(f_g, 4, 4), Shape(f_l, 4, 4)], Context())
    assert info.shape == Shape(f_l, 4, 4)  # the gated skip
    assert info.params == f_int * (f_g + f_l) + 7 * f_int + 3  # DESIGN.md 6b
    assert sum(p.numel() for p in gate_module(f_g, f_l, inter=f_int).parameters()) == info.params


def test_attention_gate_in_a_graph_summary_and_build() -> None:
    spec = netspec.loads(GATED)
    gate = {row.name: row for row in netspec.summary(spec).rows}["attention_gate1"]
    assert gate.inputs == ("signal", "skip") and gate.info.shape == Shape(12, 16, 16)
    assert gate.info.params == 6 * (20 + 12) + 7 * 6 + 3
    assert gate.info.macs == (6 * (20 + 12) + 6 + 12) * 16 * 16
    model = netspec.build(spec)
    assert sum(p.numel() for p in model.parameters()) == netspec.summary(spec).params
    assert [name for name, _ in model.attention_gate1.named_children()] == ["W_g", "W_x", "psi", "relu"]
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 12, 16, 16)
    assert netspec.loads(spec.to_yaml()) == spec


def test_a_zero_gate_gives_zero_output() -> None:
    gate = gate_module(5, 7).eval()
    with torch.no_grad():
        conv, norm = gate.psi[0], gate.psi[1]
        conv.weight.zero_()
        conv.bias.fill_(-1e4)  # psi's logit is hugely negative everywhere: sigmoid underflows to 0
        g, x = torch.randn(2, 5, 8, 8), torch.randn(2, 7, 8, 8)
        assert torch.count_nonzero(gate(g, x)) == 0
        norm.bias.fill_(2e4)  # the BN shifts the logit to +1e4: a wide-open gate passes x through
        torch.testing.assert_close(gate(g, x), x)


@pytest.mark.parametrize(("change", "message"), [
    (("conv: {out: 20}", "conv: {out: 20, stride: 2}"),
     "7:21: layers[2].attention_gate: needs the gating signal g and the skip x as feature maps of the same size: "
     "signal (N, 20, 8, 8) and skip (N, 12, 16, 16) (resize one with `upsample: {to: ...}`)"),
    (("from: [signal, skip]", "from: skip"),
     "8:11: layers[2].from: attention_gate takes 2 inputs, got one: write a list, `from: [a, b]`"),
    (("from: [signal, skip]", "from: [signal, skip, skip]"), "8:11: layers[2].from: attention_gate takes 2 inputs, got 3"),
    (("{inter: 6}", "{inter: 0}"), "7:29: layers[2].attention_gate.inter: input should be greater than or equal to 1 (got 0)"),
])
def test_attention_gate_errors_are_located(change: tuple[str, str], message: str) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(GATED.replace(*change), name="g.yaml"))
    assert [str(problem) for problem in caught.value.problems] == [f"g.yaml:{message}"]


@pytest.mark.parametrize("inter", [None, 3])
def test_attention_gate_matches_the_official_block(inter: int | None) -> None:
    ours = gate_module(6, 10, **({} if inter is None else {"inter": inter}))
    theirs = official.Attention_block(F_g=6, F_l=10, F_int=inter or 5)
    reference.randomize(theirs)
    reference.copy_by_order(theirs, ours)
    g, x = torch.randn(2, 6, 5, 7), torch.randn(2, 10, 5, 7)
    for training in (True, False):
        with torch.no_grad():
            expected = theirs.train(training)(g=g, x=x)
            assert expected.abs().max() > 1e-3
            torch.testing.assert_close(ours.train(training)(g, x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.psi[1].running_mean, theirs.psi[1].running_mean)  # the same train-mode updates


# --- whole networks ----------------------------------------------------------------------------------------

NETWORKS = {  # file: (LeeJunHyun/Image_Segmentation's count, its class)
    "attention_unet.yaml": (34_878_573, official.AttU_Net),
    "unet_leejunhyun.yaml": (34_527_041, official.U_Net),
}


@pytest.mark.parametrize("file", sorted(NETWORKS))
def test_unet_counts_and_function_match_the_official_code(file: str) -> None:
    expected, build_reference = NETWORKS[file]
    spec = netspec.load(SPECS / file)
    assert netspec.summary(spec).params == expected
    ours, theirs = netspec.build(spec), build_reference(3, 1)
    assert sum(p.numel() for p in theirs.parameters()) == expected
    reference.randomize(theirs)
    reference.copy_by_order(theirs, ours)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = theirs.eval()(x), ours.eval()(x)
    assert want.shape == got.shape == (1, 1, 32, 32) and want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_attention_unet_is_the_plain_one_plus_four_gates() -> None:
    gates = sum(f_int * 2 * c + 7 * f_int + 3 for c in (512, 256, 128, 64) for f_int in [c // 2])
    assert NETWORKS["attention_unet.yaml"][0] == NETWORKS["unet_leejunhyun.yaml"][0] + gates


@pytest.mark.parametrize(("inp", "out", "stride", "expand", "size"), [(24, 24, 1, 6, 6), (16, 24, 2, 6, 7), (32, 16, 1, 1, 5)])
def test_a_mobilenet_v2_ca_block_matches_the_official_one(inp: int, out: int, stride: int, expand: int, size: int) -> None:
    """mbv2_ca.py's InvertedResidual: CA after the depthwise conv (netspec's inverted `attention` slot); none at t=1."""
    stage = Stage(block="inverted", out=out, stride=stride, expand=float(expand), act="relu6",
                  attention=None if expand == 1 else "coord")
    ours = stage.build(Shape(inp, size, size), Context())
    theirs = official.InvertedResidualCA(inp, out, stride, expand)
    reference.randomize(theirs)
    reference.copy_by_order(theirs, ours)
    x = torch.randn(2, inp, size, size)
    for training in (True, False):
        with torch.no_grad():
            torch.testing.assert_close(ours.train(training)(x), theirs.train(training)(x.clone()), rtol=1e-5, atol=1e-5)
