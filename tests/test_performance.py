"""Structural checks behind issue 5's performance targets (the timings themselves live in benchmarks/).

- ``netspec check`` / ``netspec.check`` / ``netspec.summary`` never import torch, hypothesis or numpy;
- validation does work linear in the number of layers (counted in Python calls, not timed);
- every attention kind keeps a channels_last input channels_last (and NCHW NCHW);
- the benchmarks' baselines compute the same functions as netspec's kinds, so their ratios compare like with like.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import netspec
from netspec.layers.base import Context
from netspec.parsing import kinds_of
from netspec.registry import builtin_kinds
from netspec.shapes import Shape

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "hypothesis", "numpy")


def imported_after(code: str) -> list[str]:
    """The heavy modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import netspec",
        "import netspec; netspec.check('specs/se_resnet50.yaml')",
        "import netspec; print(netspec.summary('specs/sknet50.yaml'))",
        "import netspec; netspec.loads(open('specs/danet_resnet50.yaml').read()).to_yaml()",
        # the CLI as `python -m netspec check` runs it, over every spec (invalid ones included, errors go to stderr)
        "import runpy, sys, glob, contextlib, io\n"
        "sys.argv = ['netspec', 'check', *sorted(glob.glob('specs/*.yaml')), 'tests/data/does-not-exist.yaml']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    try:\n"
        "        runpy.run_module('netspec', run_name='__main__')\n"
        "    except SystemExit:\n"
        "        pass",
    ],
    ids=["import", "check", "summary", "round-trip", "cli-check"],
)
def test_checking_a_spec_imports_no_torch(code: str) -> None:
    assert imported_after(code) == []


def test_the_check_command_exits_cleanly_without_torch() -> None:
    """The real entry point: a subprocess that would fail if `netspec check` needed torch (it is blocked)."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {HEAVY!r}:\n"
        "            raise ImportError(f'{name} is blocked: netspec check must not import it')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from netspec.cli import main\n"
        "sys.exit(main(['check', 'specs/resnet50.yaml', 'specs/nonlocal_resnet50.yaml']))\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "specs/resnet50.yaml: ok" in result.stdout


# --- validation is linear ------------------------------------------------------------------------------


def generated_spec(layers: int) -> str:
    cycle = [
        "- conv: {out: 16, kernel: 3}",
        "- se: {reduction: 4}",
        "- stage: {block: basic, out: 16, depth: 2, attention: eca}",
        "- cbam: {reduction: 4}",
        "- maxpool: {kernel: 3, stride: 1, padding: 1}",
        "- stage: {block: bottleneck, out: 16, width: 8, groups: 2, attention: {se: {reduction: 4}}}",
        "- pam",
    ]
    lines = ["input: {channels: 3, size: 16}", "layers:"]
    lines += ["  " + cycle[index % len(cycle)] for index in range(layers)]
    return "\n".join(lines) + "\n"


def python_calls(fn) -> int:
    """Python function calls made by ``fn()`` (a deterministic measure of work, unlike time)."""
    calls = 0

    def count(frame, event, arg):  # noqa: ANN001
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("broken", [False, True], ids=["valid", "every-layer-broken"])
def test_validation_work_grows_linearly_with_the_layers(broken: bool) -> None:
    """10x the layers, at most ~10x the Python calls: nothing quadratic in parsing, validation, shape inference
    or error sorting (a broken spec reports one located problem per layer)."""

    def text(layers: int) -> str:
        spec = generated_spec(layers)
        return spec.replace("- se: {reduction: 4}", "- se: {reduction: 0}") if broken else spec

    def check(layers: int) -> None:
        source = text(layers)
        if broken:
            with pytest.raises(netspec.SpecError) as error:
                netspec.check(netspec.loads(source))
            assert len(error.value.problems) >= layers // 7
        else:
            netspec.check(netspec.loads(source))

    check(140)  # warm-up: kinds' validators are built on first use
    small, large = python_calls(lambda: check(200)), python_calls(lambda: check(2000))
    assert large / small <= 10.5, f"200 layers: {small:,} calls; 2,000 layers: {large:,} ({large / small:.1f}x)"


def misspelt_graph(entries: int) -> str:
    """A graph whose every ``from:`` and every ``outputs:`` name is misspelt (a generator's off-by-one)."""
    lines = ["input: {channels: 2, size: 4}", "layers:", "  - {conv: {out: 2}, name: base}"]
    lines += [f"  - {{conv: {{out: 2, kernel: 1}}, name: e{i}, from: basse{i}}}" for i in range(entries)]
    lines.append("outputs: [" + ", ".join(f"ee{i}" for i in range(entries)) + "]")
    return "\n".join(lines) + "\n"


def test_did_you_mean_stays_linear_for_thousands_of_misspelt_references() -> None:
    """Each unknown name used to be compared (difflib) with every earlier name: 1,000 misspelt ``from:`` took 20 s,
    4,000 did not finish. Only the first MAX_SUGGESTIONS get a suggestion; every problem is still reported."""
    from netspec.compiler import MAX_SUGGESTIONS

    def check(entries: int) -> list[str]:
        with pytest.raises(netspec.SpecError) as error:
            netspec.check(netspec.loads(misspelt_graph(entries)))
        return [str(problem) for problem in error.value.problems]

    found = check(300)
    assert len(found) == 600  # every from: and every output
    assert found[0].endswith("layers[1].from: unknown name 'basse0' (did you mean 'base'?)")
    assert sum("did you mean" in line for line in found) <= MAX_SUGGESTIONS
    small, large = python_calls(lambda: check(300)), python_calls(lambda: check(3000))
    assert large / small <= 10.5, f"300 entries: {small:,} calls; 3,000: {large:,} ({large / small:.1f}x)"


def test_building_a_graph_pauses_the_garbage_collector_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector scanned the growing fx graph during a build (slope 1.3 from 1,000 to 5,000 entries): the build
    pauses it, as the YAML loader does, and leaves it as it found it, also when the build fails."""
    import gc

    from netspec import compiler

    text = "input: {channels: 2, size: 4}\nlayers:\n" + "".join(
        f"  - {{conv: {{out: 2, kernel: 1}}, name: e{i}, from: {f'e{i - 1}' if i else 'input'}}}\n" for i in range(1000))
    spec = netspec.loads(text)
    inside, collections = [], []
    make_graph = compiler._graph_module

    def graph_module(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        inside.append(True)
        try:
            return make_graph(*args, **kwargs)
        finally:
            inside.pop()

    def count(phase: str, info: dict) -> None:
        if phase == "start" and inside:
            collections.append(info["generation"])

    monkeypatch.setattr(compiler, "_graph_module", graph_module)
    netspec.build(spec)  # warm: first-use imports
    gc.collect()
    gc.callbacks.append(count)
    try:
        assert gc.isenabled()
        netspec.build(spec)
        assert collections == [] and gc.isenabled()
        gc.disable()
        try:
            netspec.build(spec)
            assert not gc.isenabled()  # a caller that paused it keeps it paused
        finally:
            gc.enable()
        with pytest.raises(netspec.SpecError):
            netspec.build(spec, max_params=10)
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)


# --- channels_last in, channels_last out ---------------------------------------------------------------


ATTENTION = kinds_of("attention")
SIZE_FOR = {"bat": (14, 7), "halo_attn": (16, 8)}
"""Kinds whose default blocks need other sizes."""


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("kind", ATTENTION)
def test_attention_keeps_the_input_memory_format(kind: str, train: bool) -> None:
    height, width = SIZE_FOR.get(kind, (12, 10))
    module = netspec.KINDS[kind]().build(Shape(64, height, width), Context()).train(train)
    x = torch.randn(2, 64, height, width, requires_grad=train)  # a gradient to take even where a kind has no params
    with torch.set_grad_enabled(train):
        assert module(x).is_contiguous(), f"{kind}: NCHW in, not NCHW out"
        out = module(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last), f"{kind}: channels_last in, not channels_last out"
    if train:
        out.sum().backward()


# --- the benchmarks compare equal functions ------------------------------------------------------------


@pytest.fixture(scope="module")
def baselines():  # noqa: ANN201
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import baselines as module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


# (bam is compared on square maps in test_attention_more.py: its official channel pool fails on this 12x10 map)
@pytest.mark.parametrize("kind", ["se", "eca", "cbam", "sk", "nonlocal", "pam", "cam", "danet",
                                  "coord", "gc", "triplet", "simam", "ese", "splat", "ge", "lambda", "ecam",
                                  "lcbam", "scoord", "ela", "strip", "psa"])
def test_benchmark_baselines_compute_what_netspec_computes(kind: str, baselines) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    module = netspec.KINDS[kind]().build(Shape(64, 12, 10), Context())
    with torch.no_grad():
        for tensor in module.parameters():  # non-zero gammas and last BN: every branch reaches the output
            tensor.copy_(torch.randn_like(tensor) * 0.3)
    baseline = baselines.ATTENTION_BASELINES[kind](64)
    baselines.copy_weights(kind, module, baseline)
    assert sum(p.numel() for p in baseline.parameters()) == sum(p.numel() for p in module.parameters())
    x = torch.randn(2, 64, 12, 10)
    for train in (False, True):
        module.train(train), baseline.train(train)
        with torch.no_grad():
            torch.testing.assert_close(module(x), baseline(x), rtol=1e-4, atol=1e-4)


def test_benchmark_resnet50_is_resnet50(baselines) -> None:  # noqa: ANN001
    with torch.device("meta"):
        direct, built = baselines.ResNet50(), netspec.build(ROOT / "specs" / "resnet50.yaml")
    assert sum(p.numel() for p in direct.parameters()) == sum(p.numel() for p in built.parameters()) == 25_557_032


NETWORK_PAIRS = ["resnet50", "se_resnet50", "eca_resnet50", "cbam_resnet50", "sknet50", "mobilenet_v3_large",
                 "efficientnet_b0", "deeplabv3_resnet50", "yolov8n_cbam", "yolov8n", "yolo11n", "convnext_tiny",
                 "regnety_016"]


def test_every_network_twin_is_checked(baselines) -> None:  # noqa: ANN001
    assert list(baselines.NETWORK_TWINS) == NETWORK_PAIRS


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORK_PAIRS)
def test_benchmark_network_twins_compute_what_the_specs_compute(name: str, baselines) -> None:  # noqa: ANN001
    """The whole-network ratios compare equal functions: same weights copied by order, same outputs."""
    from network_references import copy_by_order, randomize

    torch.manual_seed(0)
    built, twin = netspec.build(ROOT / "specs" / f"{name}.yaml"), baselines.NETWORK_TWINS[name]()
    randomize(built)
    copy_by_order(built, twin, reshape=True)  # netspec's SE and CBAM MLPs are 1x1 convs, the twins' Linear
    norms = [(m.eps, m.momentum) for m in built.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms == [(m.eps, m.momentum) for m in twin.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    built.eval(), twin.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = built(x), twin(x)
    for mine, reference in zip(ours if isinstance(ours, tuple) else (ours,),
                               theirs if isinstance(theirs, tuple) else (theirs,), strict=True):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-4)


def test_every_twin_names_the_code_it_follows(baselines) -> None:  # noqa: ANN001
    """RESULTS.md's "Baselines and twins" table (issue 25): every in-house twin names its package and version, or the
    authors' repository where no package ships it."""
    twins = set(baselines.ATTENTION_BASELINES) | baselines.SIZED_TWINS | set(baselines.NETWORK_TWINS)
    assert set(baselines.TWIN_SOURCES) == twins
    for name, (source, measured) in baselines.TWIN_SOURCES.items():
        assert source and measured, name
        if measured.startswith("packages target"):  # a package ships it: the source names that package's version
            assert any(f"{package} " in source for package in ("timm", "torchvision", "Ultralytics")), name
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from suite.packages import PACKAGE_PAIRS  # the packages target (imports no package until it runs)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    measured = {name for name, (_, where) in baselines.TWIN_SOURCES.items() if where.startswith("packages target")}
    assert measured <= set(PACKAGE_PAIRS)
    assert all((ROOT / "specs" / f"{name}.yaml").exists() for name in PACKAGE_PAIRS)


def test_packages_target_lists_the_pairs_it_cannot_import() -> None:
    """Without torchvision, timm and Ultralytics (this suite's environment) the packages target times nothing and
    names every pair it skipped, with the reason; where one imports it would time, so the test steps aside."""
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from suite import packages
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    if any(packages.importable(pair.package) is None for pair in packages.PACKAGE_PAIRS.values()):
        pytest.skip("a compared package imports here: the target would time it (benchmarks/run.py --only packages)")
    args = argparse.Namespace(quick=True, device="cpu", dtype="float32", channels_last=False, networks=None)
    section = packages.bench_packages(args)
    text = "\n".join(section.lines)
    assert not section.verdicts
    for name, pair in packages.PACKAGE_PAIRS.items():
        assert (f"- {name}: `{pair.call}` not measured (" in text) == pair.default, name


def test_every_builtin_attention_kind_has_a_baseline(baselines) -> None:  # noqa: ANN001
    builtin_attention = {kind for kind in ATTENTION if kind in builtin_kinds()}
    assert builtin_attention == set(baselines.ATTENTION_BASELINES) | baselines.SIZED_TWINS
