"""netspec's own overhead: targets ``build`` (building a spec vs constructing the module), ``check`` (the CLI's
process time), ``validation`` and ``graphbuild`` (linear growth) and ``weights`` (``load_weights``)."""
from __future__ import annotations

import gc
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .core import HERE, ROOT, Section, interleaved, median, ms, paired, plain_env

# ---------------------------------------------------------------------------------------------
# 4. Builder overhead


BUILD_PROBE = """
import sys, time
sys.path.insert(0, {here!r})
import torch, netspec
from baselines import ResNet50
which = sys.argv[1]
spec = netspec.load("specs/resnet50.yaml")
start = time.perf_counter()
if which == "path":
    model = netspec.build("specs/resnet50.yaml")
elif which == "spec":
    model = netspec.build(spec)
else:
    model = ResNet50()
print(time.perf_counter() - start)
"""


def bench_build(args) -> Section:
    import torch

    import netspec
    from baselines import ResNet50

    section = Section("build", "4. Builder overhead: specs/resnet50.yaml vs ResNet-50 written with torch modules")
    section.add(f"## {section.title}")
    section.add()
    path = ROOT / "specs" / "resnet50.yaml"
    spec = netspec.load(path)
    built, direct = netspec.build(path), ResNet50()
    params = (sum(p.numel() for p in built.parameters()), sum(p.numel() for p in direct.parameters()))
    del built, direct
    probe_code = BUILD_PROBE.format(here=str(HERE))
    names = {"path": "`netspec.build(\"specs/resnet50.yaml\")`", "spec": "`netspec.build(spec)` (spec loaded before)",
             "direct": "`baselines.ResNet50()`"}

    def fresh(which):
        def run():
            result = subprocess.run([sys.executable, "-c", probe_code, which], capture_output=True, text=True,
                                    cwd=ROOT, check=True, env=plain_env())
            return float(result.stdout.strip().splitlines()[-1])
        return run

    repeats = 4 if args.quick else 15
    fresh_samples: dict[str, list[float]] = {name: [] for name in names}
    order = list(names)
    for repeat in range(repeats):
        for which in order[repeat % 3:] + order[: repeat % 3]:
            fresh_samples[which].append(fresh(which)())
    torch.manual_seed(0)
    warm = interleaved({
        "path": lambda: netspec.build(path),
        "spec": lambda: netspec.build(spec),
        "direct": lambda: ResNet50(),
    }, repeats=5 if args.quick else 21, target_s=0.0, warmup=2)

    def on_meta(fn):
        def run():
            with torch.device("meta"):
                return fn()
        return run

    meta = interleaved({
        "path": on_meta(lambda: netspec.build(path)),
        "spec": on_meta(lambda: netspec.build(spec)),
        "direct": on_meta(lambda: ResNet50()),
    }, repeats=5 if args.quick else 21, target_s=0.05, warmup=2)
    own = interleaved({"load": lambda: netspec.check(netspec.load(path))}, repeats=21, target_s=0.05, warmup=2)
    rows = []
    for which, label in names.items():
        row = [label]
        for samples in (fresh_samples, warm, meta):
            row += [ms(median(samples[which])), f"{paired(samples[which], samples['direct']):.3f}"]
        rows.append(row)
    section.add(f"Parameters: netspec {params[0]:,}, baseline {params[1]:,}; PyTorch's default initialisation in "
                "both. Medians, ms, and ratios to the baseline:")
    section.add()
    section.add(f"- **fresh process** (the target; {repeats} interleaved processes each): the first build in a "
                "process, as in a training script, timed inside the process after the imports;")
    section.add("- *warm, in process*: repeated builds in one process; glibc then reuses or returns freed weight "
                "memory depending on what ran between builds (page faults are most of the difference here), so "
                "this column mixes allocator state into the ratio;")
    section.add("- *meta device*: `with torch.device(\"meta\")`, no weight memory or initialisation: module "
                "construction and netspec's own Python work alone.")
    section.add()
    section.table(["construct", "fresh ms", "fresh ratio", "warm ms", "warm ratio", "meta ms", "meta ratio"], rows)
    section.add(f"netspec's own work inside `build(path)` (read YAML, validate, infer shapes): "
                f"{ms(median(own['load']))} ms.")
    section.add()
    ratio = paired(fresh_samples["path"], fresh_samples["direct"])
    section.verdict("building specs/resnet50.yaml <= 1.1x constructing ResNet-50 directly (fresh process)",
                    ratio <= 1.1, f"{ratio:.3f}")
    return section


# ---------------------------------------------------------------------------------------------
# 5. netspec check does not import torch: whole-process time


def bench_check(args) -> Section:
    section = Section("check", "5. `netspec check` process time vs `python -c \"import pydantic, yaml\"`")
    section.add(f"## {section.title}")
    section.add()
    env = plain_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode caches exist (warm-up runs write them)
    script = Path(sys.executable).parent / "netspec"
    commands = {
        'python -c "import pydantic, yaml"': [sys.executable, "-c", "import pydantic, yaml"],
        "python -m netspec check specs/resnet50.yaml":
            [sys.executable, "-m", "netspec", "check", "specs/resnet50.yaml"],
    }
    if script.exists():
        commands["netspec check specs/resnet50.yaml"] = [str(script), "check", "specs/resnet50.yaml"]
    commands['python -c "import torch"'] = [sys.executable, "-c", "import torch"]

    def runner(command):
        return lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)

    fns = {name: runner(command) for name, command in commands.items()}
    samples = interleaved(fns, repeats=7 if args.quick else 25, target_s=0.0, warmup=2)
    base_samples = samples['python -c "import pydantic, yaml"']
    rows = [[f"`{name}`", ms(median(v)), ms(min(v)), f"{paired(v, base_samples):.2f}"]
            for name, v in samples.items()]
    section.add("Whole-process wall time, hyperfine-style: each command run in turn, repeated, median and min, ms "
                "(bytecode caches warm, as after `pip install`).")
    section.add()
    section.table(["command", "median ms", "min ms", "ratio"], rows)
    modules = subprocess.run(
        [sys.executable, "-c", "import sys, netspec; netspec.check('specs/resnet50.yaml'); "
         "print(sorted(m for m in ('torch', 'numpy', 'hypothesis') if m in sys.modules))"],
        capture_output=True, text=True, cwd=ROOT, env=env).stdout.strip()
    section.add(f"Heavy modules imported by `netspec.check`: {modules} "
                "(tests/test_performance.py asserts none, for the CLI too).")
    section.add()
    for name in ("python -m netspec check specs/resnet50.yaml", "netspec check specs/resnet50.yaml"):
        if name in samples:
            ratio = paired(samples[name], base_samples)
            section.verdict(f"`{name}` <= 3x `import pydantic, yaml`", ratio <= 3.0, f"{ratio:.2f}")
    return section


# ---------------------------------------------------------------------------------------------
# 6. Validation grows linearly


def generated_spec(layers: int) -> str:
    """A valid spec of ``layers`` layers cycling through conv, attention kinds, stages and pooling."""
    cycle = [
        "- conv: {out: 64, kernel: 3}",
        "- se: {reduction: 8}",
        "- stage: {block: basic, out: 64, depth: 2, attention: eca}",
        "- cbam",
        "- maxpool: {kernel: 3, stride: 1, padding: 1}",
        "- stage: {block: bottleneck, out: 64, width: 32, groups: 4, attention: {se: {reduction: 4}}}",
        "- conv: {out: 64, kernel: 1, act: silu}",
        "- pam",
    ]
    lines = [f"name: generated_{layers}", "input: {channels: 3, size: 32}", "layers:"]
    lines += ["  " + cycle[index % len(cycle)] for index in range(layers)]
    return "\n".join(lines) + "\n"


def bench_validation(args) -> Section:
    import netspec

    section = Section("validation", "6. Validation time grows linearly")
    section.add(f"## {section.title}")
    section.add()
    texts = {n: generated_spec(n) for n in (1_000, 10_000)}
    fns = {f"{n:,} layers": (lambda text=text: netspec.check(netspec.loads(text))) for n, text in texts.items()}
    samples = interleaved(fns, repeats=3 if args.quick else 9, target_s=0.0, warmup=1)
    large = median(samples["10,000 layers"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated_10000.yaml"
        path.write_text(texts[10_000])
        env = plain_env()
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cli = interleaved({"cli": lambda: subprocess.run([sys.executable, "-m", "netspec", "check", str(path)],
                                                          check=True, stdout=subprocess.DEVNULL, env=env)},
                          repeats=3 if args.quick else 5, target_s=0.0, warmup=1)["cli"]
    rows = [[name, ms(median(v)), ms(min(v))] for name, v in samples.items()]
    rows.append(["`python -m netspec check` on the 10,000-layer file (whole process)", ms(median(cli)), ms(min(cli))])
    section.add("`netspec.check(netspec.loads(text))` on generated specs (`generated_spec` in benchmarks/suite/overhead.py: conv, se, "
                "basic and bottleneck stages with attention, cbam, maxpool, pam), median of interleaved repeats, ms.")
    section.add()
    section.table(["spec", "median ms", "min ms"], rows)
    ratio = paired(samples["10,000 layers"], samples["1,000 layers"])
    section.add(f"10,000 : 1,000 ratio (median of the per-repeat ratios): {ratio:.2f}")
    section.add()
    section.verdict("10,000-layer spec checks in < 2 s", large < 2.0, f"{large:.2f} s")
    section.verdict("10,000 : 1,000 check time ratio <= 12", ratio <= 12, f"{ratio:.2f}")
    return section


def bench_weights(args) -> Section:
    from weights_bench import bench_weights as bench

    return bench(args, Section, paired, median, ms)


# ---------------------------------------------------------------------------------------------
# Graph build grows linearly (issue 23)


def generated_graph(entries: int) -> str:
    """A valid graph spec of ``entries`` named entries: 1x1 convs each reading the one before, every fifth an
    ``add`` of the two before it (so the fx graph has merges, not only a chain)."""
    lines = [f"name: graph_{entries}", "input: {channels: 4, size: 8}", "layers:"]
    for index in range(entries):
        if index % 5 == 4:
            lines.append(f"  - {{add: {{}}, name: e{index}, from: [e{index - 1}, e{index - 2}]}}")
        else:
            lines.append(f"  - {{conv: {{out: 4, kernel: 1}}, name: e{index}, "
                         f"from: {f'e{index - 1}' if index else 'input'}}}")
    return "\n".join(lines) + "\n"


def bench_graph_build(args) -> Section:
    import contextlib

    import netspec
    import netspec.source

    section = Section("graphbuild", "7. Graph build time grows linearly (issue 23)")
    section.add(f"## {section.title}")
    section.add()
    sizes = (1_000, 2_000, 5_000)
    specs = {n: netspec.loads(generated_graph(n)) for n in sizes}
    paused = netspec.source.gc_paused

    def build(spec, collector_on: bool) -> float:
        gc.collect()  # the previous model's reference cycles, outside the timing (and not left for this build)
        if collector_on:  # the build as it was before issue 23: the collector scans the growing fx graph
            netspec.source.gc_paused = contextlib.nullcontext
        try:
            start = time.perf_counter()
            model = netspec.build(spec)
            elapsed = time.perf_counter() - start
        finally:
            netspec.source.gc_paused = paused
        del model
        return elapsed

    cases = [(n, on) for n in sizes for on in (False, True)]
    for n, on in cases:  # warm-up
        build(specs[n], on)
    samples: dict[str, list[float]] = {f"{n} {'running' if on else 'paused'}": [] for n, on in cases}
    for repeat in range(3 if args.quick else 7):
        for n, on in cases[repeat % len(cases):] + cases[: repeat % len(cases)]:
            samples[f"{n} {'running' if on else 'paused'}"].append(build(specs[n], on))
    rows = []
    for n in sizes:
        rows.append([f"{n:,}", ms(median(samples[f"{n} paused"])), ms(median(samples[f"{n} running"]))])

    def slope(which: str) -> float:
        return math.log(paired(samples[f"5000 {which}"], samples[f"1000 {which}"])) / math.log(5)

    section.add("`netspec.build(spec)` of `generated_graph(n)` in benchmarks/suite/overhead.py (n named entries: 1x1 convs, every fifth an "
                "`add` of the two before; a `torch.fx.GraphModule`), spec loaded beforehand; median ms of "
                "interleaved repeats (a full collection before each, untimed). `collector paused`: netspec as shipped (Python's cyclic garbage collector "
                "paused while the modules and the fx graph are made, as the YAML loader does); `collector "
                "running`: the same build with the collector left on, as before issue 23.")
    section.add()
    section.table(["entries", "collector paused ms", "collector running ms"], rows)
    ours, before = slope("paused"), slope("running")
    section.add(f"Log-log slope from 1,000 to 5,000 entries (log of the median per-repeat time ratio / log 5): "
                f"{ours:.2f} paused, {before:.2f} with the collector running.")
    section.add()
    section.verdict("graph build time slope from 1,000 to 5,000 entries <= 1.1", ours <= 1.1, f"{ours:.2f}")
    return section


