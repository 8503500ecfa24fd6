"""Properties of random valid specs and graphs (``netspec.strategies``) and of every registered kind.

Quick by default (profile ``ci``); ``HYPOTHESIS_PROFILE=long`` runs thousands of examples per property.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

import netspec
from netspec import strategies as nst
from netspec.blocks import BLOCKS
from netspec.compiler import analyse
from netspec.errors import SpecWarning
from netspec.layers.base import Context
from netspec.parsing import kinds_of
from netspec.registry import KINDS
from netspec.shapes import Shape
from netspec.spec import Input, Spec

from entry_outputs import assert_static_matches_runtime, run_recording

ALL_KINDS = sorted(KINDS)
ATTENTION_KINDS = kinds_of("attention")
# Per-kind tests run once per kind: a tenth of the profile's examples each (at least the quick profile's 25).
PER_KIND = settings(max_examples=max(25, settings().max_examples // 10))
# An attention kind inside a random stage builds a small network per example (15-30 s per kind at 25 examples on a
# busy 2-core machine, the suite's largest share): 10 in the quick profile, the per-kind count in longer ones.
IN_A_STAGE = settings(max_examples=10 if settings().max_examples <= 25 else PER_KIND.max_examples)


def _runtime_input(shape: Shape) -> torch.Tensor:
    return torch.randn(2, *shape.dims())


def sized(spec: Spec, size: tuple[int, int]) -> Spec:
    return spec.model_copy(update={"input": Input(channels=spec.input.channels, size=size)})


# ---------------------------------------------------------------------------------------------
# Every kind has a strategy, and its layers are right on their own


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_has_a_strategy(kind: str) -> None:
    cls = KINDS[kind]
    accepted = [shape for shape in nst.sample_shapes() if cls.accepts(shape)]
    assert accepted, f"{kind!r} accepts none of {nst.sample_shapes()}: its `accepts` is too strict or wrong"
    for shape in accepted:
        try:
            strategy = cls.strategy(shape)
        except NotImplementedError:
            pytest.fail(f"kind {kind!r} has no hypothesis strategy: implement {cls.__name__}.strategy(x)")
        assert isinstance(strategy, SearchStrategy), f"{cls.__name__}.strategy({shape}) returned {strategy!r}"


@pytest.mark.parametrize("kind", ALL_KINDS)
@PER_KIND
@given(data=st.data())
def test_each_kind_static_shape_params_match_runtime(kind: str, data: st.DataObject) -> None:
    """Every kind, alone: built params == static params, runtime shape == static shape; attention keeps (N, C, H, W).

    Its module never changes its inputs in place (a graph may feed one tensor to several entries)."""
    inputs, layer = data.draw(nst.node_cases(kind, sized=True), label="case")
    info, findings = nst.infer_node(layer, inputs)
    assert info is not None and not findings
    if kind in ATTENTION_KINDS:
        assert info.shape == inputs[0]
    module = layer.build_inputs(inputs, Context()).eval()  # eval: a detection head's decoded (N, C, A) output
    assert sum(p.numel() for p in module.parameters()) == info.params
    tensors = [_runtime_input(x) for x in inputs]
    before = [t.clone() for t in tensors]
    with torch.no_grad():
        y = module(*tensors)
    if info.shape.sequence and isinstance(y, tuple):  # segment's (detections, protos): the summary shows the first
        y = y[0]
    assert tuple(y.shape) == (2, *info.shape.dims())
    assert all(torch.equal(t, b) for t, b in zip(tensors, before)), f"{kind} modified its input in place"


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
@IN_A_STAGE
@given(data=st.data())
def test_attention_inside_a_stage(kind: str, data: st.DataObject) -> None:
    x = data.draw(nst.shapes(flat=False, sized=True, max_channels=8), label="x")
    stage = data.draw(KINDS["stage"].strategy(x), label="stage")
    info, findings = nst.infer(stage.model_copy(update={"attention": None}), x)
    assert info is not None and not findings
    # where the block runs its attention: ResNet blocks on their output, inverted ones after the depthwise conv on
    # the expanded width (the same in every block only when `width` fixes it; else None)
    attended = BLOCKS[stage.block].attended(stage, info.shape)
    assume(attended is not None)
    attention = data.draw(nst.layer_cases(kind, shapes_from=st.just(attended)), label="attention")[1]
    spec = Spec(input=Input(channels=x.channels, size=(x.height, x.width)), layers=[stage.model_copy(update={"attention": attention})])
    summary = netspec.summary(spec)
    model = netspec.build(spec)
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert_static_matches_runtime(spec, model)


# ---------------------------------------------------------------------------------------------
# Whole random specs


@given(nst.specs())
def test_static_shapes_equal_runtime_shapes(spec: Spec) -> None:
    for layer in spec.layers:  # what the drawn specs hold, in the statistics (pytest --hypothesis-show-statistics)
        event(layer.kind)
        for name in ("attention", "conv"):
            nested = getattr(layer, name, None)
            if nested is not None:
                event(f"{layer.kind}.{name}: {nested.kind}")
    model = netspec.build(spec)
    if spec.input.size is not None:
        assert_static_matches_runtime(spec, model)


@given(nst.specs(input=nst.inputs().map(lambda i: i.model_copy(update={"size": None}))), st.integers(8, 32))
def test_specs_without_size_run_at_a_size(spec: Spec, side: int) -> None:
    """A spec without ``input.size``: its model, run at a size the spec accepts, matches the static shapes there."""
    model = netspec.build(spec)
    at_size = sized(spec, (side, side + 1))
    try:
        netspec.check(at_size)
    except netspec.SpecError:
        return  # the layers do not fit a map this small; nothing to compare
    assert [row.info.shape.channels for row in analyse(at_size)] == [row.info.shape.channels for row in analyse(spec)]
    assert_static_matches_runtime(at_size, model)


@given(nst.specs())
def test_yaml_round_trip(spec: Spec) -> None:
    text = spec.to_yaml()
    assert netspec.loads(text) == spec
    assert netspec.loads(netspec.loads(text).to_yaml()) == spec


def assert_same_seed_same_model(spec: Spec, seed: int) -> None:
    """Two builds after the same seed: identical state dicts, and (eval mode) identical outputs of every entry."""
    models = []
    for _ in range(2):
        torch.manual_seed(seed)
        models.append(netspec.build(spec).eval())
    first, second = (model.state_dict() for model in models)
    assert list(first) == list(second)
    for key, value in first.items():
        assert torch.equal(value, second[key]), key
    if spec.input.size is not None:
        x = torch.randn(2, spec.input.channels, *spec.input.size)
        (entries, _), (again, _) = (run_recording(model, x) for model in models)
        assert list(entries) == list(again)
        for name, output in entries.items():  # a segmentation head returns (detections, protos) in eval
            pairs = zip(output, again[name], strict=True) if isinstance(output, tuple) else [(output, again[name])]
            assert all(torch.equal(a, b) for a, b in pairs), name


@given(nst.specs(), st.integers(0, 2**32 - 1))
def test_same_seed_same_weights(spec: Spec, seed: int) -> None:
    assert_same_seed_same_model(spec, seed)


def assert_summary_params_equal_model_params(spec: Spec) -> None:
    summary = netspec.summary(spec)
    model = netspec.build(spec)
    assert summary.params == sum(p.numel() for p in model.parameters())
    children = dict(model.named_children())
    assert [row.name for row in summary.rows] == list(children)
    assert [row.info.params for row in summary.rows] == [
        sum(p.numel() for p in children[row.name].parameters()) for row in summary.rows
    ]


@given(nst.specs())
def test_summary_params_equal_model_params(spec: Spec) -> None:
    assert_summary_params_equal_model_params(spec)


# ---------------------------------------------------------------------------------------------
# Random graphs: branches, merges, gates, resizing, several outputs


def graph_events(spec: Spec) -> None:
    """What the drawn graphs hold, in the statistics (pytest --hypothesis-show-statistics)."""
    for layer in spec.layers:
        event(f"graph entry: {layer.kind}")
        if isinstance(layer.inputs, tuple):
            event(f"graph merge of {len(layer.inputs)}")
    event(f"graph outputs: {len(spec.outputs or [None])}")


@given(nst.graph_specs())
def test_graph_static_shapes_equal_runtime_shapes_for_every_entry(spec: Spec) -> None:
    graph_events(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)  # the drawn outputs leave no entry unused
        model = netspec.build(spec)
    assert_static_matches_runtime(spec, model)


@given(nst.graph_specs())
def test_graph_summary_params_equal_model_params(spec: Spec) -> None:
    assert_summary_params_equal_model_params(spec)


@given(nst.graph_specs())
def test_graph_yaml_round_trip(spec: Spec) -> None:
    text = spec.to_yaml()
    assert netspec.loads(text) == spec
    assert netspec.loads(netspec.loads(text).to_yaml()) == spec


@given(nst.graph_specs(), st.integers(0, 2**32 - 1))
def test_graph_same_seed_same_weights_and_outputs(spec: Spec, seed: int) -> None:
    assert_same_seed_same_model(spec, seed)


# ---------------------------------------------------------------------------------------------
# The strategies themselves


def test_a_kind_with_a_broken_strategy_is_named() -> None:
    from netspec.layers.se import SE

    class BrokenSE(SE):
        kind = "broken_se"

        @classmethod
        def strategy(cls, x: Shape) -> SearchStrategy[SE]:
            return st.just(cls(reduction=x.channels + 1))  # over the channels: invalid

    netspec.register(BrokenSE)
    try:
        with pytest.raises(nst.StrategyError, match=r"BrokenSE.strategy\(\(N, \d+, \d+, \d+\)\) drew .* reduction"):
            given(nst.layer_cases("broken_se", sized=True))(lambda case: None)()
    finally:
        netspec.unregister("broken_se")


def test_unknown_kind_in_strategies_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown kinds"):
        given(nst.specs(kinds=["nope"]))(lambda spec: None)()
