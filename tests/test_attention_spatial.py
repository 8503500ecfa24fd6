"""Issue 3 (spatial attention): nonlocal, pam, cam, danet against the official code (DESIGN.md section 6),
and issue 5's memory-efficient attention (SDPA or bounded query chunks, equal to the straightforward bmm + softmax).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import netspec
from netspec.layers import CAM, PAM, Context, DANet, NonLocal
from netspec.modules import attention, cam, non_local, pam
from netspec.shapes import Shape

SPECS = Path(__file__).resolve().parent.parent / "specs"
KINDS = ["nonlocal", "pam", "cam", "danet"]
REFERENCES = {"nonlocal": non_local.reference, "pam": pam.reference, "cam": cam.reference}

RESNET50 = 25_557_032  # torchvision (DESIGN.md section 6)
RESNET50_FC = 2048 * 1000 + 1000


def non_local_params(c: int) -> float:
    return 2 * c * c + 4.5 * c  # inter = C/2, θ φ g W with bias, BN after W


def pam_params(c: int) -> float:
    return 1.25 * c * c + 1.25 * c + 1  # q, k: C -> C/8 with bias; v: C -> C with bias; gamma


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def static_and_built(layer: netspec.Layer, channels: int) -> tuple[int, int]:
    x = Shape(channels, 3, 2)
    return layer.infer(x, Context()).params, numel(layer.build(x, Context()))


# --- parameter counts: the formulas of DESIGN.md section 6 --------------------------------------------


def assert_same_gradients(y: torch.Tensor, expected: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor,
                          module: torch.nn.Module) -> None:
    """The input's and every parameter's gradient of ``y`` (from ``x1``) equal those of ``expected`` (from ``x2``),
    under one random output gradient, in float64."""
    weight = torch.randn_like(y)
    params = list(module.parameters())
    grads = torch.autograd.grad((y * weight).sum(), [x1, *params])
    expected_grads = torch.autograd.grad((expected * weight).sum(), [x2, *params])
    for grad, expected_grad in zip(grads, expected_grads):
        assert torch.allclose(grad, expected_grad, rtol=1e-9, atol=1e-9)


@given(half=st.integers(1, 192))
def test_non_local_params(half: int) -> None:
    channels = 2 * half
    expected = non_local_params(channels)
    assert static_and_built(NonLocal(), channels) == (expected, expected)
    assert static_and_built(NonLocal(norm="none"), channels) == (expected - 2 * channels,) * 2
    assert static_and_built(NonLocal(inter=half, scale=True, subsample=True), channels) == (expected, expected)


def test_non_local_params_at_1024_channels() -> None:
    assert static_and_built(NonLocal(), 1024) == (2_101_760, 2_101_760)


@given(eighth=st.integers(1, 48))
def test_pam_cam_danet_params(eighth: int) -> None:
    channels = 8 * eighth
    expected = pam_params(channels)
    assert static_and_built(PAM(), channels) == (expected, expected)
    assert static_and_built(CAM(), channels) == (1, 1)
    assert static_and_built(DANet(), channels) == (expected + 1, expected + 1)


@given(channels=st.integers(1, 300), data=st.data())
def test_static_params_equal_the_built_module_for_any_valid_params(channels: int, data: st.DataObject) -> None:
    shape = Shape(channels, 4, 3)
    for kind in KINDS:
        layer = data.draw(netspec.KINDS[kind].strategy(shape))
        assert layer.infer(shape, Context()).params == numel(layer.build(shape, Context()))


def test_macs_include_the_attention_matmuls() -> None:
    c, hw = 64, 8 * 6
    x = Shape(c, 8, 6)
    assert PAM().macs_per_sample(x) == hw * (2 * c * 8 + c * c) + hw * hw * (8 + c) + hw * c
    assert CAM().macs_per_sample(x) == 2 * c * c * hw + c * hw  # C > HW: gamma scales the C x HW product
    assert CAM().macs_per_sample(Shape(8, 8, 6)) == 2 * 8 * 8 * hw + 8 * 8  # C <= HW: the C x C matrix
    assert NonLocal().macs_per_sample(x) == 4 * hw * c * 32 + 2 * hw * hw * 32
    assert NonLocal(subsample=True).macs_per_sample(x) == 2 * hw * c * 32 + 2 * 12 * c * 32 + 2 * hw * 12 * 32
    assert DANet().macs_per_sample(x) == PAM().macs_per_sample(x) + CAM().macs_per_sample(x)
    assert NonLocal().macs_per_sample(Shape(c)) is None


# --- whole networks ---------------------------------------------------------------------------------------


def test_non_local_resnet50() -> None:
    # 5 blocks: 2 in res3 (512 channels), 3 in res4 (1024 channels), every other residual block
    expected = RESNET50 + 2 * non_local_params(512) + 3 * non_local_params(1024)
    assert expected == 32_915_496
    spec = netspec.load(SPECS / "nonlocal_resnet50.yaml")
    assert netspec.summary(spec).params == expected
    model = netspec.build(spec).eval()
    assert numel(model) == expected
    blocks = []  # (stage channels, residual blocks of that stage so far) at each non-local block
    done: dict[int, int] = {}
    for name, child in model.named_children():
        if name.startswith("stage"):
            channels = child[0].body[-1].conv.out_channels
            done[channels] = done.get(channels, 0) + len(child)
        elif name.startswith("nonlocal"):
            assert child.theta.out_channels == channels // 2 and isinstance(child.W[1], torch.nn.BatchNorm2d)
            blocks.append((channels, done[channels] - 1))
    assert blocks == [(512, 1), (512, 3), (1024, 1), (1024, 3), (1024, 5)]
    assert done == {256: 3, 512: 4, 1024: 6, 2048: 3}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_danet_resnet50() -> None:
    """The official DANet head (junfu1115/DANet DANetHead(2048, 19)) on the OS8 trunk: both branches, three outputs."""
    trunk = RESNET50 - RESNET50_FC
    conv3x3 = lambda cin, cout: 9 * cin * cout + 2 * cout  # noqa: E731  (no bias, BN)
    classifier = 512 * 19 + 19  # conv6, conv7, conv8: Dropout2d then a 1x1 conv with bias
    head = 2 * conv3x3(2048, 512) + pam_params(512) + 1 + 2 * conv3x3(512, 512) + 3 * classifier
    expected = trunk + head
    assert expected == 47_462_651
    spec = netspec.load(SPECS / "danet_resnet50.yaml")
    assert netspec.summary(spec).params == expected
    model = netspec.build(spec).eval()
    assert numel(model) == expected
    assert type(model.sa).__name__ == "PositionAttention" and type(model.sc).__name__ == "ChannelAttention"
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 96, 64))
    assert [tuple(out.shape) for out in outputs] == [(1, 19, 96, 64)] * 3


def test_specs_check_without_torch() -> None:
    code = (
        "import sys, netspec\n"
        "for name in ('nonlocal_resnet50', 'danet_resnet50'): netspec.check(f'specs/{name}.yaml')\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SPECS.parent)


# --- behaviour --------------------------------------------------------------------------------------------


@st.composite
def feature_maps(draw: st.DrawFn, *, min_batch: int = 1, min_channels: int = 1) -> torch.Tensor:
    batch = draw(st.integers(min_batch, 3))
    channels = draw(st.integers(min_channels, 24))
    height = draw(st.sampled_from([1, 2, 3, 5, 7, 9]))
    width = draw(st.sampled_from([1, 3, 4, 6, 11]).filter(lambda w: w != height or height == 1))
    return torch.randn(batch, channels, height, width)


def shape_of(x: torch.Tensor) -> Shape:
    return Shape(x.shape[1], x.shape[2], x.shape[3])


def randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Non-zero gammas and norm weights (the initial zeros would make any attention output pass)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.5)
        for buffer_name, buffer in module.named_buffers():
            if buffer_name.endswith("running_mean"):
                buffer.normal_()
            elif buffer_name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    return module


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("train", [True, False])
@given(data=st.data())
def test_attention_keeps_the_shape_and_is_finite(kind: str, train: bool, data: st.DataObject) -> None:
    x = data.draw(feature_maps(min_batch=2 if train else 1))  # train-mode BatchNorm needs N*H*W > 1
    layer = data.draw(netspec.KINDS[kind].strategy(shape_of(x)))
    assert layer.infer(shape_of(x), Context()).shape == shape_of(x)
    module = randomize(layer.build(shape_of(x), Context())).train(train)
    with torch.no_grad():
        y = module(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(1, 1), (1, 7), (5, 3), (2, 9), (7, 7)])
def test_shapes_at_the_edges(kind: str, size: tuple[int, int]) -> None:
    x = torch.randn(2, 16, *size)
    module = randomize(netspec.KINDS[kind]().build(shape_of(x), Context()))
    for train in (True, False):
        y = module.train(train)(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("kind", ["nonlocal", "pam", "cam"])
@given(data=st.data())
def test_zero_initialised_gates_make_the_block_the_identity(kind: str, data: st.DataObject) -> None:
    x = data.draw(feature_maps(min_batch=2, min_channels=8))
    for layer in (netspec.KINDS[kind](), data.draw(netspec.KINDS[kind].strategy(shape_of(x)))):
        module = layer.build(shape_of(x), Context())
        for train in (True, False):
            assert torch.equal(module.train(train)(x), x), layer


def test_danet_sums_the_two_branches() -> None:
    x = torch.randn(2, 16, 5, 3)
    module = DANet(reduction=4).build(shape_of(x), Context())
    assert torch.equal(module(x), 2 * x)  # both residuals, gammas 0: PAM(x) + CAM(x) = 2x
    randomize(module)
    assert torch.allclose(module(x), pam.reference(module.sa, x) + cam.reference(module.sc, x), atol=1e-5)


@given(x=feature_maps(), gamma=st.floats(-2.0, 2.0), magnitude=st.sampled_from([1.0, 30.0]))
def test_cam_matches_softmax_of_rowmax_minus_energy(x: torch.Tensor, gamma: float, magnitude: float) -> None:
    x = (x * magnitude).double()  # at 30x the energies reach ~1e4: exp(-E) without the shift would overflow
    module = CAM().build(shape_of(x), Context()).double()
    with torch.no_grad():
        module.gamma.fill_(gamma)
        n, c, h, w = x.shape
        features = x.reshape(n, c, h * w)
        energy = features @ features.transpose(1, 2)
        rowmax = energy.max(dim=-1, keepdim=True).values
        weights = torch.exp(rowmax - energy - (rowmax - energy).max(dim=-1, keepdim=True).values)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        expected = x + gamma * (weights @ features).reshape(n, c, h, w)
        y = module(x)
    assert torch.isfinite(y).all()
    assert torch.allclose(y, expected, rtol=1e-9, atol=1e-9 * magnitude)


# --- memory-efficient attention == the straightforward bmm + softmax (issue 5) ---------------------------


def built(layer: netspec.Layer, x: torch.Tensor) -> torch.nn.Module:
    return randomize(layer.build(shape_of(x), Context()))


@pytest.mark.parametrize(
    "layer",
    [NonLocal(), NonLocal(scale=True, subsample=True), NonLocal(norm="none", inter=5), PAM(), PAM(reduction=2), CAM()],
    ids=repr,
)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("train", [True, False])
def test_outputs_and_gradients_equal_the_reference(layer: netspec.Layer, layout: str, train: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 16, 7, 10, dtype=torch.float64)  # float64: tight tolerances, the CPU flash kernel takes it
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(layer, x).double().train(train)
    reference = REFERENCES[layer.kind]
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, expected = module(x1), reference(module, x2)
    assert torch.allclose(y, expected, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(y.square().sum(), [x1, *module.parameters()])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x2, *module.parameters()])
    for grad, expected_grad in zip(grads, expected_grads):
        assert torch.allclose(grad, expected_grad, rtol=1e-8, atol=1e-8)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert y.is_contiguous(memory_format=memory_format)  # the input's layout is kept


@pytest.mark.parametrize("shape", [(2, 24, 4, 5), (2, 6, 4, 5)], ids=["channels>pixels", "channels<=pixels"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("train", [True, False])
def test_cam_paths_equal_the_reference_and_keep_the_layout(shape: tuple[int, ...], layout: str, train: bool) -> None:
    """C > HW runs through attend (SDPA); C <= HW folds gamma into the C x C matrix and runs one baddbmm."""
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(CAM(), x).double().train(train)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, expected = module(x1), cam.reference(module, x2)
    assert torch.allclose(y, expected, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(y.square().sum(), [x1, module.gamma])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x2, module.gamma])
    assert all(torch.allclose(a, b, rtol=1e-8, atol=1e-8) for a, b in zip(grads, expected_grads))
    assert y.is_contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_cam_inference_makes_one_tensor_the_size_of_its_input(layout: str) -> None:
    """The memory target's shape class (C <= HW): besides the C x C matrices, only the output is allocated."""
    class StorageRecorder(TorchDispatchMode):
        """Sizes in bytes of the distinct storages that ops return (a view shares its base's storage)."""

        def __init__(self) -> None:
            super().__init__()
            self.storages: dict[int, int] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(tensor, torch.Tensor):
                    storage = tensor.untyped_storage()
                    self.storages[storage.data_ptr()] = storage.nbytes()
            return out

    x = torch.randn(2, 8, 6, 6)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(CAM(), x)
    with torch.no_grad(), StorageRecorder() as recorder:
        y = module(x)
    new_storages = {ptr: size for ptr, size in recorder.storages.items() if ptr != x.untyped_storage().data_ptr()}
    input_sized = [ptr for ptr, size in new_storages.items() if size >= x.untyped_storage().nbytes()]
    assert input_sized == [y.untyped_storage().data_ptr()]  # the output, and nothing else of its size
    # a few C x C matrices: energies, probabilities, gamma A, and the subnormal flush's |gamma A| and its mask
    assert sum(new_storages.values()) - y.untyped_storage().nbytes() <= 4.25 * 2 * 8 * 8 * 4


@pytest.mark.parametrize("budget", [1, 50, 200, 10**9])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_pam_query_chunks_equal_the_reference_and_bound_the_scores(budget: int, layout: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 9, 7)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(PAM(), x)
    module.chunk_scores = budget
    largest: list[int] = []

    class SoftmaxRecorder(TorchDispatchMode):  # every softmax, out-of-place or into a reused score buffer
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func.overloadpacket is torch.ops.aten._softmax:
                largest.append(args[0].numel())
            return func(*args, **(kwargs or {}))

    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with SoftmaxRecorder():
        y = module(x1)
    chunk_rows = max(1, budget // (2 * 63))
    assert max(largest) == 2 * min(chunk_rows, 63) * 63  # never more scores than one chunk of queries
    assert len(largest) == -(-63 // chunk_rows)
    expected = pam.reference(module, x2)
    assert torch.allclose(y, expected, rtol=1e-4, atol=1e-5)
    grad, expected_grad = (torch.autograd.grad(t.square().sum(), inp)[0] for t, inp in ((y, x1), (expected, x2)))
    # float32 with gradients up to ~200: both sides are ~1e-4 off the float64 result (rounding, not the method),
    # so the absolute tolerance follows the gradient's scale
    assert torch.allclose(grad, expected_grad, rtol=1e-3, atol=1e-5 * expected_grad.abs().max().item())
    assert y.is_contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)


@pytest.mark.parametrize("features", [14, 16, 30])
def test_features_padded_for_the_gpu_kernels_give_the_same_attention(
    features: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU, feature sizes not a multiple of 8 (CAM at 14x14: 196) are zero-padded so that a fused kernel
    runs, not the math fallback. Forced on here (CPU): SDPA sees padded sizes, the result is unchanged."""
    seen: list[tuple[int, ...]] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(*args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        seen.append(tuple(t.size(-1) for t in args[:3]))
        return sdpa(*args, **kwargs)

    torch.manual_seed(0)
    x = torch.randn(2, 40, features, dtype=torch.float64)  # 40 tokens > features: not the CPU's small-scores path
    expected = attention.reference_attention(x, x, x, scale=-1.0)
    monkeypatch.setattr(attention, "needs_aligned_features", lambda query: True)
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording_sdpa)
    out = attention.attend(x, x, x, scale=-1.0)
    assert seen == [(-(-features // 8) * 8,) * 3]
    assert out.shape == x.shape
    assert torch.allclose(out, expected, rtol=1e-10, atol=1e-10)
    module = built(CAM(), torch.randn(2, 24, 3, 5)).double()  # C = 24 > HW = 15: CAM runs SDPA, padded to 16
    with torch.no_grad():
        module.gamma.fill_(0.5)
        image = torch.randn(2, 24, 3, 5, dtype=torch.float64)
        assert torch.allclose(module(image), cam.reference(module, image), rtol=1e-10, atol=1e-10)
    assert seen[-1] == (16, 16, 16)


@pytest.mark.parametrize("kind", ["nonlocal", "cam", "pam"])
def test_sdpa_runs_with_the_papers_scale(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(*args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        calls.append({"shape": tuple(args[0].shape), **kwargs})
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording_sdpa)
    x = torch.randn(2, 32, 6, 5)
    module = netspec.KINDS[kind]().build(shape_of(x), Context())
    module(x)
    if kind == "pam":  # CPU, value size C != query size C/8: no fused kernel, bounded query chunks instead
        assert not attention.fused_kernel_fits(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), torch.zeros(1, 4, 32))
        assert calls == []
        return
    tokens, features = {"nonlocal": (30, 16), "cam": (32, 30)}[kind]
    # embedded Gaussian: no scaling; CAM: no scaling either, the sign flip makes softmax(rowmax(E) - E) = softmax(-E)
    scale = {"nonlocal": 1.0, "cam": -1.0}[kind]
    assert calls == [{"shape": (2, 1, tokens, features), "scale": scale}]
    calls.clear()
    NonLocal(scale=True).build(shape_of(x), Context())(x)
    assert calls[0]["scale"] == pytest.approx(16**-0.5)


@pytest.mark.parametrize("kind", KINDS)
def test_compiles_to_a_single_graph(kind: str) -> None:
    torch._dynamo.reset()
    x = torch.randn(2, 16, 5, 3)
    module = built(netspec.KINDS[kind](), x).eval()
    compiled = torch.compile(module, fullgraph=True, backend="eager")  # tracing is what can break; eager is fast
    with torch.no_grad():
        assert torch.allclose(compiled(x), module(x), atol=1e-5)


# --- bad params: located errors, not torch exceptions ----------------------------------------------------


BAD = [
    # (yaml line of the layer, the text the error points at, path of the problem, part of the message)
    ("  - pam", "pam", ("layers", 1, "pam", "reduction"), "needs at least 8 input channels"),
    ("  - pam: {reduction: 5}", "5", ("layers", 1, "pam", "reduction"), "needs at least 5 input channels"),
    ("  - danet", "danet", ("layers", 1, "danet", "reduction"), "needs at least 8 input channels"),
    ("  - nonlocal: {reduction: 5}", "5", ("layers", 1, "nonlocal", "reduction"), "must be <= 4"),
    ("  - nonlocal: {reduction: 2, inter: 8}", "8", ("layers", 1, "nonlocal", "inter"), "not both"),
    ("  - nonlocal: {scale: 1}", "1", ("layers", 1, "nonlocal", "scale"), "boolean"),
    ("  - nonlocal: {norm: group}", "group", ("layers", 1, "nonlocal", "norm"), "'batch'"),
    ("  - cam: {reduction: 8}", "reduction", ("layers", 1, "cam", "reduction"), "unknown field"),
    ("  - stage: {out: 4, block: basic, attention: pam}", "pam", ("layers", 1, "stage", "attention", "pam", "reduction"),
     "needs at least 8 input channels"),
    ("  - stage: {out: 4, block: basic, stride: 4, attention: {nonlocal: {subsample: true}}}", "true",
     ("layers", 1, "stage", "attention", "nonlocal", "subsample"), "at least 2x2"),
]


@pytest.mark.parametrize("line, target, path, message", BAD)
def test_bad_params_are_located(line: str, target: str, path: tuple[object, ...], message: str) -> None:
    text = f"input: {{channels: 3, size: 4}}\nlayers:\n  - conv: {{out: 4}}\n{line}\n"
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="x.yaml"))
    problems = [p for p in caught.value.problems if p.path == path]
    assert len(problems) == 1, caught.value
    problem = problems[0]
    column = line.rindex(target) + 1
    assert (problem.file, problem.line, problem.column) == ("x.yaml", 4, column), problem
    assert message in problem.message
    assert str(problem).startswith(f"x.yaml:4:{column}: ")


def test_params_round_trip_through_yaml() -> None:
    text = """\
input: {channels: 3, size: 32}
layers:
  - conv: {out: 64}
  - nonlocal: {inter: 16, scale: true, subsample: true, norm: none}
  - stage: {out: 64, attention: {pam: {reduction: 4}}}
  - danet: {reduction: 16}
  - cam
"""
    spec = netspec.loads(text)
    assert spec.layers[1] == NonLocal(inter=16, scale=True, subsample=True, norm="none")
    assert spec.layers[2].attention == PAM(reduction=4)
    assert netspec.loads(spec.to_yaml()) == spec


@pytest.mark.parametrize("kind", ["pam", "danet"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_recomputed_attention_gradients_equal_the_reference_without_saving_the_scores(kind: str, layout: str) -> None:
    """Issue 14: in training, query chunks recompute the probabilities in backward; gradients of the input, every
    weight and gamma equal the straightforward code's, and no (HW x HW)-sized tensor is saved for backward."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 6, dtype=torch.float64)  # 48 pixels: the whole score matrix has 2 * 48 * 48 values
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(netspec.KINDS[kind](), x).double().train()
    pam_module = module.sa if kind == "danet" else module
    pam_module.chunk_scores = 2 * 48 * 10  # 10 query rows per forward chunk
    for gamma in (module.sa.gamma, module.sc.gamma) if kind == "danet" else (module.gamma,):
        torch.nn.init.constant_(gamma, 0.7)  # gamma 0 would stop the attention's gradients
    saved: list[int] = []
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        y = module(x1)
    assert max(saved) < 2 * 48 * 48  # at most a feature map (2 * 16 * 48 values), never the score matrix
    if kind == "danet":
        expected = pam.reference(module.sa, x2) + cam.reference(module.sc, x2)
    else:
        expected = pam.reference(module, x2)
    assert torch.allclose(y, expected, rtol=1e-10, atol=1e-10)
    assert_same_gradients(y, expected, x1, x2, module)
    assert y.is_contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)


def test_recomputed_attention_float32_and_scaled() -> None:
    """The autograd function alone, float32, with a scale, token-major and channel-major values."""
    torch.manual_seed(0)
    query, key = torch.randn(2, 40, 8, requires_grad=True), torch.randn(2, 30, 8, requires_grad=True)
    for value in (torch.randn(2, 30, 12, requires_grad=True), torch.randn(2, 12, 30, requires_grad=True)):
        values = value if value.size(1) == 30 else value.transpose(1, 2)
        out = attention.chunked_attention(query, key, values, scale=0.3, budget=2 * 30 * 7)
        expected = attention.reference_attention(query, key, values, scale=0.3)
        assert torch.allclose(out, expected, atol=1e-6)
        weight = torch.randn_like(out)
        grads = torch.autograd.grad((out * weight).sum(), [query, key, value])
        expected_grads = torch.autograd.grad((expected * weight).sum(), [query, key, value])
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, expected_grads))


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_cam_flushes_subnormal_weights(layout: str) -> None:
    """CAM's sharp softmax underflows to subnormal floats, which make the GEMM after it up to 50x slower on Intel
    CPUs: they are zeroed (what they add is below the output's float resolution), so no GEMM operand is one."""
    weights = torch.tensor([1.0, 1e-39, -1e-40, 2e-38, -0.5, 0.0])
    assert cam.flush_subnormals_(weights).tolist() == pytest.approx([1.0, 0.0, 0.0, 2e-38, -0.5, 0.0])

    # energies of a few hundred: 42 of the 512 probabilities (x 0.7) are subnormal at this seed, in both layouts
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0)) * 2
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(CAM(), x)
    with torch.no_grad():
        module.gamma.fill_(0.7)
    seen = []
    original = torch.baddbmm

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(t for t in args if isinstance(t, torch.Tensor))
        return original(*args, **kwargs)

    with torch.no_grad(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "baddbmm", recording)
        y = module(x)
    tiny = torch.finfo(torch.float32).tiny
    assert seen and all(not ((t != 0) & (t.abs() < tiny)).any() for t in seen)
    torch.testing.assert_close(y, cam.reference(module, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("subsample", [False, True])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("size", [(12, 10), (4, 3)])  # SDPA (more tokens than features), and the small-scores bmm
def test_non_local_projections_as_one_gemm_equal_the_convs(subsample: bool, layout: str, size: tuple[int, int]) -> None:
    """On the CPU theta, phi, g and W run as GEMMs on the module's conv weights (no conv calls): the output and
    the gradients of the input and every parameter equal the official code's, in x's memory format."""
    torch.manual_seed(0)
    x = torch.randn(2, 32, *size, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    module = built(NonLocal(subsample=subsample), x).double().train()
    calls: list[str] = []
    with torch.nn.modules.module.register_module_forward_pre_hook(lambda m, args: calls.append(type(m).__name__)):
        assert attention.gemm_convs_apply(x, module.theta) is False  # a global hook: the convs are called
        module(x)
    assert calls.count("Conv2d") == 4  # theta, phi, g and W's conv, each called as a module
    assert attention.gemm_convs_apply(x, module.theta, module.phi, module.g, module.W[0])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, expected = module(x1), non_local.reference(module, x2)
    assert torch.allclose(y, expected, rtol=1e-10, atol=1e-10)
    assert_same_gradients(y, expected, x1, x2, module)
    assert y.is_contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)


def test_non_local_hooks_still_see_the_convs() -> None:
    """A forward hook on one of the convs (feature extraction, torchinfo) makes the block call its modules."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 5)
    module = built(NonLocal(), x).eval()
    seen: list[tuple[int, ...]] = []
    module.phi.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)))
    assert not attention.gemm_convs_apply(x, module.theta, module.phi, module.g, module.W[0])
    with torch.no_grad():
        assert torch.allclose(module(x), non_local.reference(module, x), rtol=1e-4, atol=1e-5)
    assert seen[0] == (2, 8, 6, 5)


def test_backward_hooks_and_a_hook_on_w_see_the_modules() -> None:
    """Grad-CAM-style backward hooks on a projection, and a forward hook on Non-local's W, still run: the GEMM
    path stands in for the convs only where calling them would run no hook."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 5, requires_grad=True)
    module = built(NonLocal(), x).train()
    grads: list[tuple[int, ...]] = []
    module.theta.register_full_backward_hook(lambda m, grad_in, grad_out: grads.append(tuple(grad_out[0].shape)))
    module(x).sum().backward()
    assert grads == [(2, 8, 6, 5)]
    module = built(NonLocal(), x).eval()
    seen: list[tuple[int, ...]] = []
    module.W.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)))
    with torch.no_grad():
        y = module(x)
        assert seen == [(2, 16, 6, 5)]  # (the reference below calls W as well)
        assert torch.allclose(y, non_local.reference(module, x), rtol=1e-4, atol=1e-5)
    layer = PAM()
    pam_module = built(layer, x)
    pam_module.value_conv.register_full_backward_hook(lambda m, grad_in, grad_out: grads.append(("value",)))
    pam_module(x).sum().backward()
    assert grads[-1] == ("value",)


@pytest.mark.parametrize("side", [6, 40])  # 40: the chunked path (PAM's scores over the chunk budget)
@pytest.mark.parametrize("grad", [False, True])
def test_pam_under_autocast_keeps_the_residuals_dtype(side: int, grad: bool) -> None:
    """Under autocast the attention runs in bfloat16; ``x + gamma * out`` still comes out in x's float32, as the
    official code's (addcmul promotes), with and without autograd, whole or chunked."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, side, side, requires_grad=grad)
    module = built(PAM(), x).train(grad)
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x)
        with torch.no_grad():
            expected = pam.reference(module, x.detach())
    assert y.dtype == expected.dtype == torch.float32
    assert torch.allclose(y.detach(), expected, rtol=0.05, atol=0.05)
    if grad:
        y.sum().backward()
        assert x.grad is not None and x.grad.dtype == torch.float32


@pytest.mark.parametrize("training", [False, True])
def test_pam_chunks_allocate_their_workspace_once(training: bool) -> None:
    """Issue 25: the chunked path reuses one workspace across chunks (glibc's heap fragmented when every chunk
    allocated and freed its own score buffers), so the number of allocations does not grow with the chunks."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 9, 7, requires_grad=training)
    module = built(PAM(), x).train(training)

    class AllocationCounter(TorchDispatchMode):  # ops whose output is a new storage (not a view, not out=)
        def __init__(self) -> None:
            super().__init__()
            self.allocations = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            given = {t.untyped_storage().data_ptr() for t in [*args, *kwargs.values()] if isinstance(t, torch.Tensor)}
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor) and t.numel() > 16 and t.untyped_storage().data_ptr() not in given:
                    self.allocations += 1
            return out

    counts = []
    for budget in (2 * 63 * 2, 2 * 63 * 20):  # 32 and 4 query chunks (backward: 16 and 2)
        module.chunk_scores = budget
        with AllocationCounter() as counter:
            y = module(x)
            if training:
                y.backward(torch.ones_like(y))
        counts.append(counter.allocations)
    # one score/probability pair per chunk would add 2 allocations for each of the 28 extra chunks
    assert counts[0] - counts[1] <= 1
