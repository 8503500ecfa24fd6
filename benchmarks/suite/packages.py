"""Target ``packages`` (issue 25): netspec's networks against the real packages' models, as users compare them.

Each pair is a spec of ``specs/`` and the model the package itself builds (torchvision, timm, Ultralytics), both in
one process: the package model's weights (perturbed from its initialisation, so every branch matters) are copied
into netspec's model by architecture (``netspec.load_weights(strict=True)``), and the two must give the same
outputs before anything is timed. Then, alternating and with medians of paired ratios: a training step, inference
at batch 1, 8 and 32, and the peak memory of one training step (in fresh processes). Pairs whose package does not
import are listed as skipped; ``benchmarks/setup-env`` makes an environment where all of them import.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .core import HERE, NOISE, ROOT, Section, cuda_step_peak, interleaved, median, mib, ms, paired, plain_env

# ---------------------------------------------------------------------------------------------
# The pairs


@dataclass(frozen=True)
class PackagePair:
    """specs/NAME.yaml and the package's model of the same architecture, built by ``call`` (Python, evaluated
    with ``package`` imported)."""

    name: str
    package: str
    call: str
    modules: tuple[str, ...] = ()  # submodules ``call`` needs imported
    default: bool = True  # measured unless ``--networks`` names others

    def build(self) -> Any:
        namespace = {self.package: importlib.import_module(self.package)}
        for module in self.modules:
            importlib.import_module(module)
        return eval(self.call, namespace)  # noqa: S307 (a constant of this file)

    def label(self) -> str:
        return f"{self.package} {importlib.metadata.version(self.package)}"


_DETECTOR = ("ultralytics.nn.tasks",)
PACKAGE_PAIRS = {pair.name: pair for pair in (
    PackagePair("resnet50", "torchvision", "torchvision.models.resnet50()"),
    PackagePair("se_resnet50", "timm", "timm.create_model('seresnet50')"),
    PackagePair("eca_resnet50", "timm", "timm.create_model('resnet50', block_args={'attn_layer': 'eca'})"),
    PackagePair("convnext_atto", "timm", "timm.create_model('convnext_atto')"),
    PackagePair("convnext_tiny", "timm", "timm.create_model('convnext_tiny')"),
    PackagePair("regnety_016", "timm", "timm.create_model('regnety_016')"),
    PackagePair("regnety_032", "timm", "timm.create_model('regnety_032')"),
    PackagePair("mobilenet_v3_large", "torchvision", "torchvision.models.mobilenet_v3_large()"),
    PackagePair("efficientnet_b0", "torchvision", "torchvision.models.efficientnet_b0()"),
    PackagePair("deeplabv3_resnet50", "torchvision",
                "torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None)",
                ("torchvision.models.segmentation",), default=False),  # output stride 8: minutes per step on a CPU
    PackagePair("yolov8n", "ultralytics", "ultralytics.nn.tasks.DetectionModel('yolov8n.yaml', verbose=False)",
                _DETECTOR),
    PackagePair("yolo11n", "ultralytics", "ultralytics.nn.tasks.DetectionModel('yolo11n.yaml', verbose=False)",
                _DETECTOR),
    # more specs a package builds as the same function, measured when --networks names them
    PackagePair("resnet18", "torchvision", "torchvision.models.resnet18()", default=False),
    PackagePair("mobilenet_v2", "torchvision", "torchvision.models.mobilenet_v2()", default=False),
    PackagePair("mobilenet_v3_small", "torchvision", "torchvision.models.mobilenet_v3_small()", default=False),
    PackagePair("convnextv2_tiny", "timm", "timm.create_model('convnextv2_tiny')", default=False),
    PackagePair("efficientnetv2_b0", "timm", "timm.create_model('tf_efficientnetv2_b0')", default=False),
    PackagePair("efficientnetv2_s", "timm", "timm.create_model('tf_efficientnetv2_s')", default=False),
    PackagePair("hrnet_w18_small", "timm", "timm.create_model('hrnet_w18_small')", default=False),
    PackagePair("resnest50", "timm", "timm.create_model('resnest50d')", default=False),
    PackagePair("yolov5n", "ultralytics", "ultralytics.nn.tasks.DetectionModel('yolov5n.yaml', verbose=False)",
                _DETECTOR, default=False),
    PackagePair("yolov8n_seg", "ultralytics",
                "ultralytics.nn.tasks.SegmentationModel('yolov8n-seg.yaml', verbose=False)", _DETECTOR, default=False),
    PackagePair("yolo11n_seg", "ultralytics",
                "ultralytics.nn.tasks.SegmentationModel('yolo11n-seg.yaml', verbose=False)", _DETECTOR, default=False),
)}
"""specs/ networks that a package builds as the same function (checked by the target before timing); by default the
ones issue 25 names and the twins' networks. Specs with no package model (cbam_resnet50, sknet50, yolov8n_cbam:
timm's CBAM and SK modules are other designs) are measured against in-house twins only (the ``networks`` target,
``baselines.NETWORK_TWINS``)."""

INFER_CASES = ((1, 224), (8, 128), (32, 64))
"""Inference (batch, side): one full-size image, a small batch, a large batch of small images."""
TRAIN_CASE = (8, 64)
"""The training step's (batch, side); its peak memory is measured at the same input. (Sizes that keep a full run
of every pair within about half an hour on a loaded 2-core machine.)"""
QUICK_INFER_CASES, QUICK_TRAIN_CASE = ((1, 128), (8, 64), (32, 32)), (4, 64)
AMP = {"float32": None, "bfloat16": "bf16", "float16": "fp16"}


def perturb(model: Any, seed: int = 0) -> None:
    """Norm weights and running statistics, biases and layer scales drawn around 1: the zero-initialised last
    norms of residual branches (timm) and 1e-6 layer scales (ConvNeXt) would otherwise let a whole branch differ
    unseen."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and tensor.ndim == 1:
                low, high = (0.5, 1.5) if not name.endswith("bias") and not name.endswith("running_mean") else (-0.2, 0.2)
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)


def first_tensor(output: Any) -> Any:
    """The prediction a pair is compared on: the tensor, the first of a tuple (a detector's decoded boxes), or a
    segmentation model's ``out``."""
    while not hasattr(output, "shape"):
        output = output["out"] if isinstance(output, dict) else output[0]
    return output


def same_function(pair: PackagePair, device: str = "cpu") -> tuple[Any, Any, float]:
    """(netspec's model, the package's model, relative error): the package's perturbed weights copied into
    netspec's model by architecture; raises unless both compute the same outputs (eval mode, 2x3x64x64, float64)."""
    import torch

    import netspec

    torch.manual_seed(0)
    theirs = pair.build()
    ours = netspec.build(ROOT / "specs" / f"{pair.name}.yaml")
    perturb(theirs)
    netspec.load_weights(ours, theirs.state_dict(), strict=True)
    ours.eval().double(), theirs.eval().double()  # float64: the perturbed activations grow large in deep networks,
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # where float32's
    with torch.no_grad():  # rounding (which differs with the batch size, for either model alone) would hide a mistake
        expected, got = first_tensor(theirs(x)), first_tensor(ours(x))
    error = ((got - expected).abs().max() / expected.abs().max()).item()
    ours.float(), theirs.float()
    if not error < 1e-4:
        raise AssertionError(f"{pair.name}: netspec's model and {pair.call} differ (relative error {error:.1e})")
    return ours.to(device), theirs.to(device), error


def classes_of(name: str) -> int | None:
    import netspec
    from netspec.bench import loss_classes

    return loss_classes(netspec.check(ROOT / "specs" / f"{name}.yaml").output.dims())


def step(model: Any, batch: int, side: int, mode: str, classes: int | None, device: str, amp: str | None = None,
         channels_last: bool = False) -> Any:
    """``netspec.bench.make_step`` (as ``netspec bench`` times): a training step (zero_grad, forward, loss,
    backward, SGD step) or an inference forward under ``torch.no_grad()`` in eval mode."""
    import torch

    from netspec.bench import Settings, make_step

    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, side, side, device=device).contiguous(memory_format=layout)
    settings = Settings(modes=(mode,), batch=batch, size=(side, side), amp=amp)
    return make_step(model.to(memory_format=layout), x, mode, settings, classes)


def probe(name: str, impl: str, batch: int, side: int) -> None:
    """(In a fresh process.) Peak memory of one training step above the resting model: prints ``rss``
    (``netspec.bench.cpu_peak``) and ``profiler`` (the c10 allocator's live bytes, ``memprobe.profiler_peak``)."""
    import torch

    import netspec
    from memprobe import profiler_peak
    from netspec.bench import cpu_peak

    torch.manual_seed(0)
    model = PACKAGE_PAIRS[name].build() if impl == "package" else netspec.build(ROOT / "specs" / f"{name}.yaml")
    run = step(model, batch, side, "train", classes_of(name), "cpu")
    run(), run()
    rss, method = cpu_peak(run)
    print(json.dumps({"rss": rss, "method": method, "profiler": profiler_peak(run)}))


def fresh_peak(name: str, impl: str, batch: int, side: int) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from suite.packages import probe; "
            f"probe({name!r}, {impl!r}, {batch}, {side})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=plain_env())
    if result.returncode != 0:
        raise RuntimeError(f"memory probe {name} {impl} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def importable(package: str) -> str | None:
    """None if ``package`` imports, else why not (one line)."""
    try:
        importlib.import_module(package)
    except Exception as error:  # noqa: BLE001 (a broken install is as missing as an absent one)
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:120]
    return None


def package_names(args) -> list[str]:
    if args.networks is None:
        return [name for name, pair in PACKAGE_PAIRS.items() if pair.default]
    return [name for name in args.networks if name in PACKAGE_PAIRS]


# ---------------------------------------------------------------------------------------------
# The target


def bench_packages(args) -> Section:
    import torch

    section = Section("packages", "Whole networks against the real packages (torchvision, timm, Ultralytics)")
    section.add(f"## {section.title}")
    section.add()
    infer_cases = QUICK_INFER_CASES if args.quick else INFER_CASES
    train_batch, train_side = QUICK_TRAIN_CASE if args.quick else TRAIN_CASE
    repeats = 3 if args.quick else 9
    cuda = args.device.startswith("cuda")
    amp = AMP[args.dtype]
    methods = ["cuda"] if cuda else ["profiler", "rss"]
    rows, skipped = [], []
    for name in package_names(args):
        pair = PACKAGE_PAIRS[name]
        missing = importable(pair.package)
        if missing:
            skipped.append(f"- {name}: `{pair.call}` not measured ({missing})")
            continue
        ours, theirs, error = same_function(pair, args.device)
        models = {"netspec": ours, "package": theirs}
        classes = classes_of(name)
        ratios, times = {}, {}
        cases = [("train", train_batch, train_side)] + [("infer", b, s) for b, s in infer_cases]
        for mode, batch, side in cases:
            fns = {impl: step(model, batch, side, mode, classes, args.device, amp, args.channels_last)
                   for impl, model in models.items()}
            samples = interleaved(fns, repeats=repeats, target_s=0.2, warmup=2, device=args.device)
            key = f"{mode} {batch}x{side}"
            ratios[key] = paired(samples["netspec"], samples["package"])
            times[key] = (median(samples["netspec"]), median(samples["package"]))
            section.verdict(f"{name} {mode} time at batch {batch}, {side}x{side} <= 1.0x {pair.label()}",
                            ratios[key] <= 1 + NOISE, f"{ratios[key]:.3f}")
        peaks: dict[str, dict[str, float]] = {method: {} for method in methods}
        if cuda:
            for impl, model in models.items():
                peaks["cuda"][impl] = cuda_step_peak(
                    step(model, train_batch, train_side, "train", classes, args.device, amp, args.channels_last))
        else:  # fresh processes, float32 NCHW
            for impl in models:
                reading = fresh_peak(name, impl, train_batch, train_side)  # one: the allocator's count is exact
                for method in methods:
                    peaks[method][impl] = reading[method]
        memory = {method: peaks[method]["netspec"] / peaks[method]["package"] for method in methods}
        for method, ratio in memory.items():
            section.verdict(f"{name} training peak memory (method {method}) <= 1.0x {pair.label()}",
                            round(ratio, 3) <= (1 + NOISE if method == "rss" else 1.0), f"{ratio:.3f}")
        del models, ours, theirs
        print(f"{name} vs {pair.label()}: " + ", ".join(f"{key} {value:.3f}" for key, value in ratios.items())
              + ", memory " + ", ".join(f"{method} {ratio:.3f}" for method, ratio in memory.items()), flush=True)
        train_key = f"train {train_batch}x{train_side}"
        rows.append([name, f"`{pair.call}` ({pair.label()})", f"{error:.0e}",
                     f"{ms(times[train_key][0])} / {ms(times[train_key][1])}", f"**{ratios[train_key]:.3f}**",
                     *(f"**{ratios[f'infer {b}x{s}']:.3f}**" for b, s in infer_cases),
                     *(cell for method in methods for cell in (
                         f"{mib(peaks[method]['netspec'])} / {mib(peaks[method]['package'])}",
                         f"**{memory[method]:.3f}**"))])
    precision = f"autocast {args.dtype}" if amp else "float32"
    section.add(f"Both models in one process, {precision}, {'channels_last' if args.channels_last else 'NCHW'}, "
                "eager; the package's model built as shown (default initialisation, then its norms, biases and layer "
                "scales perturbed), its weights copied into netspec's model with `netspec.load_weights(strict=True)` "
                "(by architecture) and the outputs compared in eval mode before timing (`error`: largest difference "
                "relative to the largest output, 2x3x64x64 in float64). `train`: one step of zero_grad, forward, loss "
                "(cross-entropy for a classifier, else the mean of every output tensor: a detector's training dict "
                "of boxes, scores and features), backward, SGD step, at batch "
                f"{train_batch}, {train_side}x{train_side} (`netspec.bench.make_step`, as `netspec bench` times "
                "it); `infer BxS`: forward under `torch.no_grad()` in eval mode at batch B, SxS. Ratios: netspec / "
                f"package, the median of {repeats} per-repeat ratios (the two timed back to back in every repeat, the "
                "order alternating); `train ms`: medians, netspec / package. Memory: the peak of one training step "
                "above the resting model, MiB netspec / package, each in a fresh process running one model only: "
                "`profiler`, the c10 allocator's live tensor bytes (`torch.profiler` memory events: exact); `rss`, "
                "the peak resident set as `netspec bench` reports it (`netspec.bench.cpu_peak`: VmHWM reset through "
                "/proc/self/clear_refs, glibc returning freed memory at once).")
    section.add()
    if rows:
        section.table(["network", "package model", "error", "train ms", "train",
                       *(f"infer {b}x{s}" for b, s in infer_cases),
                       *(cell for method in methods for cell in (f"peak MiB ({method})", f"memory ({method})"))], rows)
    if skipped:
        section.add("Skipped (the package does not import in this environment; `benchmarks/setup-env` makes "
                    "one where it does):")
        section.add()
        for line in skipped:
            section.add(line)
        section.add()
    return section
