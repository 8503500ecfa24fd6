"""``torch.compile(model, fullgraph=True)`` works for every kind and every spec in specs/ (issue 5).

``fullgraph=True`` makes TorchDynamo raise at the first graph break, and Dynamo traces the same way whatever
the backend, so most checks use ``backend="eager"`` (trace only: seconds instead of minutes on a small CPU);
one model holding every attention kind is compiled for real with Inductor and compared with eager mode, and
its training step goes through AOTAutograd (``aot_eager``), which traces the backward graph as well.
Times on a 2-core machine: benchmarks/RESULTS.md ("compile").
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from netspec.layers.base import Layer
from netspec.registry import builtin_kinds
from netspec.shapes import Shape
from netspec.spec import Input, Spec

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))
CHANNELS, SIZE = 32, 8
SIZE_FOR = {"bat": 7}
"""Kinds whose defaults need another size (BAT's 7x7 blocks)."""
REQUIRED_EXAMPLES = {"out": 16, "classes": 3}
"""Values for required params when a kind is compiled at its defaults (built-in kinds require `out`, heads `classes`)."""


def compiled(model: torch.nn.Module, backend: str = "eager") -> torch.nn.Module:
    torch._dynamo.reset()  # fresh caches: each model is traced from scratch, never hits the recompile limit
    return torch.compile(model, fullgraph=True, backend=backend)


def example(cls: type[Layer]) -> Layer:
    required = [name for name, info in cls.param_fields().items() if info.is_required()]
    missing = [name for name in required if name not in REQUIRED_EXAMPLES]
    if missing:
        pytest.fail(f"{cls.kind}: add an example value for required param(s) {missing} to REQUIRED_EXAMPLES")
    return cls(**{name: REQUIRED_EXAMPLES[name] for name in required})


def single_kind_spec(kind: str) -> Spec:
    """The kind at its defaults on a (32, 8, 8) map, after a global pool when it needs a flat input."""
    cls = builtin_kinds()[kind]
    layer = example(cls)
    if cls.arity[0] > 1:  # a merge: of two branches from the input
        conv = builtin_kinds()["conv"]
        branches = [conv(out=CHANNELS, name="left"), conv(out=CHANNELS, name="right", inputs="input")]
        layers: list[Layer] = [*branches, layer.model_copy(update={"inputs": ("left", "right")})]
    elif cls.accepts(Shape(CHANNELS, SIZE_FOR.get(kind, SIZE), SIZE_FOR.get(kind, SIZE))):
        layers = [layer]
    else:
        layers = [builtin_kinds()["avgpool"](), layer]
    return Spec(input=Input(channels=CHANNELS, size=SIZE_FOR.get(kind, SIZE)), layers=layers)


ALL_KINDS_SPEC = """
input: {channels: 3, size: 16}
layers:
  - conv: {out: 32}
  - se
  - eca
  - cbam
  - sk
  - nonlocal
  - pam
  - cam
  - danet
  - stage: {out: 64, width: 32, stride: 2, attention: cbam, conv: sk}
  - stage: {block: basic, out: 32, attention: danet}
  - maxpool: {kernel: 2}
  - dropout: {p: 0.1}
  - avgpool
  - linear: {out: 10}
"""


# A graph: branches from a named entry and from the input, an SE-style gate multiplied onto a map, concat, add,
# upconv, upsample by a scale and to another entry's size, and two outputs.
GRAPH_SPEC = """
input: {channels: 3, size: 16}
layers:
  - conv: {out: 16, stride: 2}
    name: c2
  - stage: {block: basic, out: 32, stride: 2, attention: eca}
    name: c3
  - avgpool: {size: 1}
  - conv: {out: 32, kernel: 1, norm: none, act: sigmoid}
  - mul: {}
    from: [c3, conv2]
  - pam: {}
    name: context
  - upconv: {out: 16}
  - conv: {out: 16, stride: 2}
    from: input
  - upsample: {to: c2, mode: bilinear, align_corners: true}
    from: context
  - concat: {}
    from: [c2, upconv1, upsample1]
  - conv: {out: 16, kernel: 1}
  - add: {}
    from: [conv4, conv3]
  - upsample: {scale: 2}
    name: full
outputs: [full, context]
"""


def randomized(model: torch.nn.Module) -> torch.nn.Module:
    """Non-zero attention gammas and last-BN weights, so that every branch reaches the output."""
    torch.manual_seed(0)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.copy_(torch.randn_like(tensor) * 0.1 + (1.0 if tensor.ndim == 1 else 0.0))
    return model


def test_eager_backend_with_fullgraph_catches_graph_breaks() -> None:
    """The premise of the fast checks below: Dynamo raises on a graph break even with the eager backend."""

    class Breaks(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum().item() > 0:  # data-dependent Python control flow: a graph break
                return x * 2
            return x

    with pytest.raises(Exception, match="data-dependent|graph break|Unsupported"):
        compiled(Breaks())(torch.randn(3))


@pytest.mark.parametrize("kind", sorted(builtin_kinds()))
def test_every_kind_compiles_without_graph_breaks(kind: str) -> None:
    model = randomized(netspec.build(single_kind_spec(kind)))
    x = torch.randn(2, CHANNELS, SIZE_FOR.get(kind, SIZE), SIZE_FOR.get(kind, SIZE))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(model)(x), model(x))
    model.train()
    output = compiled(model)(x.requires_grad_())  # train-mode forward (BN batch stats) traces too
    sum(t.sum() for t in _tensors(output)).backward()  # a detection head's training dict: every tensor in it


def _tensors(output: object) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    items = output.values() if isinstance(output, dict) else output
    return [tensor for item in items for tensor in _tensors(item)]  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.name)
def test_every_spec_compiles_without_graph_breaks(path: Path) -> None:
    spec = netspec.load(path)
    size = 32  # a small input: the convs are not the point
    if spec.input.size is not None and not _builds_at(spec, size):
        size = spec.input.size[0]  # fixed-size networks (BoTNet's position tables, HaloNet's blocks): their own
    model = netspec.build(spec.model_copy(update={"input": spec.input.model_copy(update={"size": (size, size)})})).eval()
    x = torch.randn(1, spec.input.channels, size, size)
    with torch.no_grad():
        torch.testing.assert_close(compiled(model)(x), model(x))


def _builds_at(spec: Spec, size: int) -> bool:
    try:
        netspec.summary(spec.model_copy(update={"input": spec.input.model_copy(update={"size": (size, size)})}))
    except netspec.SpecError:
        return False
    return True


def test_a_graph_compiles_without_graph_breaks() -> None:
    model = randomized(netspec.build(netspec.loads(GRAPH_SPEC)))
    assert isinstance(model, torch.fx.GraphModule)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        assert [tuple(y.shape) for y in expected] == [(2, 16, 16, 16), (2, 32, 4, 4)]
        torch.testing.assert_close(compiled(model)(x), expected)
    model.train()  # AOTAutograd traces the backward graph of the graph module too
    full, context = compiled(model, "aot_eager")(x.requires_grad_())
    (full.sum() + context.sum()).backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())


@pytest.mark.slow
def test_inductor_compiles_every_attention_kind_to_the_same_outputs() -> None:
    model = randomized(netspec.build(netspec.loads(ALL_KINDS_SPEC))).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(compiled(model, "inductor")(x), expected, rtol=1e-4, atol=1e-4)
        channels_last = x.to(memory_format=torch.channels_last)
        torch.testing.assert_close(compiled(model, "inductor")(channels_last), expected, rtol=1e-4, atol=1e-4)


def test_training_step_compiles_through_aot_autograd() -> None:
    model = randomized(netspec.build(netspec.loads(ALL_KINDS_SPEC))).train()
    x = torch.randn(2, 3, 16, 16)
    twin = randomized(netspec.build(netspec.loads(ALL_KINDS_SPEC))).train()
    torch.manual_seed(1)  # the same dropout masks in both
    compiled(model, "aot_eager")(x).square().mean().backward()
    torch.manual_seed(1)
    twin(x).square().mean().backward()
    for (name, ours), theirs in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
