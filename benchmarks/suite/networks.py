"""Targets ``networks`` (whole networks against their twins: train step, inference, training memory) and
``fuse`` (``netspec.fuse`` against Ultralytics-style fusion and the unfused model)."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from .core import HERE, NOISE, ROOT, Section, cuda_step_peak, interleaved, median, mib, ms, paired, plain_env

NETWORK_BATCH, NETWORK_SIZE = 2, 112
"""Whole networks on this shared 2-core machine: small steps, many back-to-back repeats."""
NETWORK_AMP = {"float32": None, "bfloat16": "bf16", "float16": "fp16"}
"""Whole networks train under autocast at a reduced ``--dtype`` (as users train them), not with halved weights."""
NETWORK_SIZES = {"yolov8n_cbam": 128, "yolov8n": 128, "yolo11n": 128}
"""Networks that need another input size: YOLOv8's concats join maps at strides 8-32 (its side: a multiple of 32)."""

NETWORK_PROBE = """
import json, sys, torch
sys.path.insert(0, {here!r})
import baselines, netspec
from memprobe import profiler_peak
from netspec.bench import Settings, cpu_peak, make_step
name, impl = {name!r}, {impl!r}
torch.manual_seed(0)
model = netspec.build(f"specs/{{name}}.yaml") if impl == "netspec" else baselines.NETWORK_TWINS[name]()
settings = Settings(modes=("train",), batch={batch}, size=({size}, {size}))
x = torch.randn({batch}, 3, {size}, {size})
step = make_step(model, x, "train", settings, {classes})
step(); step()
rss, method = cpu_peak(step)
print(json.dumps({{"rss": rss, "method": method, "profiler": profiler_peak(step)}}))
"""


@dataclass
class NetworkCase:
    """One whole-network pair: netspec's model of specs/NAME.yaml and its twin, with the input they are timed on."""

    name: str
    size: int
    classes: int | None  # a classifier's class count (cross-entropy in training), else None (the outputs' mean)

    @classmethod
    def of(cls, name: str) -> "NetworkCase":
        import netspec
        from netspec.bench import loss_classes

        return cls(name, NETWORK_SIZES.get(name, NETWORK_SIZE),
                   loss_classes(netspec.check(ROOT / "specs" / f"{name}.yaml").output.dims()))

    def models(self, device: str, channels_last: bool = False) -> dict:
        import torch

        import netspec
        from baselines import NETWORK_TWINS

        torch.manual_seed(0)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        return {"netspec": netspec.build(ROOT / "specs" / f"{self.name}.yaml").to(device, memory_format=layout),
                "twin": NETWORK_TWINS[self.name]().to(device, memory_format=layout)}

    def example(self, device: str, channels_last: bool = False):
        import torch

        layout = torch.channels_last if channels_last else torch.contiguous_format
        return torch.randn(NETWORK_BATCH, 3, self.size, self.size, device=device).contiguous(memory_format=layout)

    def step(self, model, x, mode: str, amp: str | None = None):
        """``netspec.bench.make_step``: a training step or an inference forward, under ``torch.autocast`` with
        ``amp`` (bf16 / fp16, a GradScaler for fp16 training) when given."""
        from netspec.bench import Settings, make_step

        settings = Settings(modes=(mode,), batch=NETWORK_BATCH, size=(self.size, self.size), amp=amp)
        return make_step(model, x, mode, settings, self.classes)

    def peak(self, impl: str) -> dict:
        """Peak memory of one training step above the resting model, in a fresh process: ``rss`` (peak resident
        set, ``netspec.bench.cpu_peak``) and ``profiler`` (the c10 allocator's live bytes, ``memprobe``)."""
        code = NETWORK_PROBE.format(here=str(HERE), name=self.name, impl=impl, batch=NETWORK_BATCH, size=self.size,
                                    classes=self.classes)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                                env=plain_env())
        if result.returncode != 0:
            raise RuntimeError(f"network memory probe {self.name} {impl} failed:\n{result.stderr[-2000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def network_names(args) -> list[str]:
    """The networks the ``networks`` and ``compile`` targets measure: ``--networks``, default every twin's."""
    from baselines import NETWORK_TWINS

    return list(NETWORK_TWINS) if args.networks is None else [name for name in args.networks if name in NETWORK_TWINS]


def bench_networks(args) -> Section:
    """Issue 14: whole networks against their twins written with torch modules (``baselines.NETWORK_TWINS``)."""
    import torch

    section = Section("networks", "Whole networks against their twins (torchvision / timm / Ultralytics layouts)")
    section.add(f"## {section.title}")
    section.add()
    methods = ["cuda"] if args.device.startswith("cuda") else ["profiler", "rss"]
    amp = NETWORK_AMP[args.dtype]
    rows = []
    for name in network_names(args):
        case = NetworkCase.of(name)
        models = case.models(args.device, args.channels_last)
        params = {impl: sum(p.numel() for p in model.parameters()) for impl, model in models.items()}
        x = case.example(args.device, args.channels_last)
        ratios = {}
        for mode in ("train", "infer"):
            fns = {impl: case.step(model, x, mode, amp) for impl, model in models.items()}
            samples = interleaved(fns, repeats=3 if args.quick else 9, target_s=0.3, warmup=2, device=args.device)
            ratios[mode] = (median(samples["netspec"]), median(samples["twin"]),
                            paired(samples["netspec"], samples["twin"]))
        peaks: dict[str, dict[str, float]] = {method: {} for method in methods}  # method -> impl -> bytes
        if args.device.startswith("cuda"):  # max_memory_allocated of one training step above the resting model
            for impl, model in models.items():
                peaks["cuda"][impl] = cuda_step_peak(case.step(model, x, "train", amp))
        else:  # (the CPU probe measures float32, NCHW: the layout and precision of the timed steps above)
            for impl in models:
                readings = [case.peak(impl) for _ in range(1 if args.quick else 3)]
                for method in methods:
                    peaks[method][impl] = median([reading[method] for reading in readings])
        memory = {method: peaks[method]["netspec"] / peaks[method]["twin"] for method in peaks}
        print(f"{name}: train {ratios['train'][2]:.3f}, infer {ratios['infer'][2]:.3f}, memory "
              + ", ".join(f"{ratio:.3f} ({method})" for method, ratio in memory.items()), flush=True)
        rows.append([name, f"{case.size}", f"{params['netspec']:,}", f"{params['twin']:,}",
                     ms(ratios["train"][0]), ms(ratios["train"][1]), f"{ratios['train'][2]:.3f}",
                     ms(ratios["infer"][0]), ms(ratios["infer"][1]), f"{ratios['infer'][2]:.3f}",
                     *(cell for method in methods for cell in (mib(peaks[method]["netspec"]),
                                                               mib(peaks[method]["twin"]), f"{memory[method]:.3f}"))])
        section.verdict(f"{name} train step time <= 1.0x its twin", ratios["train"][2] <= 1 + NOISE,
                        f"{ratios['train'][2]:.3f}")
        section.verdict(f"{name} inference time <= 1.0x its twin", ratios["infer"][2] <= 1 + NOISE,
                        f"{ratios['infer'][2]:.3f}")
        for method, ratio in memory.items():  # the allocator's count is exact; RSS moves by a few % run to run
            extra = peaks[method]["netspec"] - peaks[method]["twin"]
            small = method != "rss" and extra and abs(extra) < 1 << 20
            shown = f"{ratio:.3f}" + (f" ({extra:+,.0f} B)" if small else "")
            # the verdict reads the ratio as printed: peaks equal but for a few dozen bytes count as equal
            section.verdict(f"{name} training peak memory (method {method}) <= 1.0x its twin",
                            round(ratio, 3) <= (1 + NOISE if method == "rss" else 1.0), shown)
    precision = f"autocast {args.dtype}" if amp else "float32"
    section.add(f"Batch {NETWORK_BATCH}, {precision}, {'channels_last' if args.channels_last else 'NCHW'}, eager, at "
                "the `size` shown (square). `train`: one step of "
                "zero_grad, forward, loss (cross-entropy for a classifier, else the mean of the outputs), backward, "
                "SGD step (`netspec.bench.make_step`, as `netspec bench` times it); `infer`: forward under "
                "`torch.no_grad()` in eval mode. Median ms of interleaved repeats; ratio: netspec / twin, the "
                "median of per-repeat ratios (both timed back to back). Peak memory of one training step above "
                "the resting model, MiB, the median of fresh processes per model, two ways: `profiler`, the c10 "
                "allocator's live tensor bytes (`torch.profiler` memory events, `memprobe.profiler_peak`: exact "
                "and repeatable, the verdict at 1.0x as printed, three decimals: equal networks differ there "
                "by a few dozen bytes) and `rss`, the peak resident set (`netspec.bench.cpu_peak`, "
                "as `netspec bench` reports it: VmHWM reset through /proc/self/clear_refs, glibc set to return "
                "freed memory at once; it also counts oneDNN's scratch and heap state, which moves it by a few "
                "percent from run to run for equal allocator peaks, so its verdict takes the 5% band). Twins: "
                "`benchmarks/baselines.py` `NETWORK_TWINS` (torchvision's ResNet-50 layout; the gate after bn3 "
                "before the residual add as timm's `Bottleneck.se`; the official SKNet unit in place of conv2; "
                "torchvision's MobileNetV3, EfficientNet and DeepLabV3 layouts and Ultralytics' YOLOv8 from "
                "`tests/`). Each twin computes the same function as its spec (weights copied by order, equal "
                "outputs: `tests/test_performance.py -k twins`).")
    section.add()
    section.table(["network", "size", "params", "twin params", "train ms", "twin ms", "train ratio", "infer ms",
                   "twin ms", "infer ratio", *(f"{column} ({method})" for method in methods
                                               for column in ("peak", "twin peak", "memory ratio"))], rows)
    return section



# ---------------------------------------------------------------------------------------------
# Fused inference (issue 19)


FUSE_BATCH, FUSE_SIZE = 1, 320
"""The fuse target's input: one image, as a detector predicts; 320 keeps a CPU run short (any multiple of 32)."""


def bench_fuse(args) -> Section:
    """Issue 19: fused inference against the fused twin (<= 1.0) and against the unfused model (<= 0.8)."""
    import copy

    import torch

    import netspec
    from baselines import FUSED_TWINS, ultralytics_fuse

    section = Section("fuse", "Fused inference (netspec.fuse) against the fused twin and the unfused model")
    section.add(f"## {section.title}")
    section.add()
    rows = []
    for name, twin_of in FUSED_TWINS.items():
        torch.manual_seed(0)
        model = netspec.build(ROOT / "specs" / f"{name}.yaml").to(args.device).eval()
        twin = twin_of().to(args.device).eval()
        generator = torch.Generator().manual_seed(1)
        for module in twin.modules():  # trained-looking statistics, so that folding them is not a no-op
            if isinstance(module, torch.nn.BatchNorm2d):
                features = module.num_features
                module.running_mean.copy_(torch.rand(features, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(features, generator=generator) + 0.5)
        netspec.load_weights(model, twin.state_dict(), strict=True)  # the same function, weights included
        fused = netspec.fuse(copy.deepcopy(model))
        fused_twin = ultralytics_fuse(copy.deepcopy(twin))
        layout = torch.channels_last if args.channels_last else torch.contiguous_format
        for module in (model, fused, fused_twin):
            module.to(memory_format=layout)
        x = torch.randn(FUSE_BATCH, 3, FUSE_SIZE, FUSE_SIZE, device=args.device).contiguous(memory_format=layout)
        with torch.no_grad():
            expected = fused_twin(x)
            expected = expected[0] if isinstance(expected, (tuple, list)) else expected
            error = (fused(x) - expected).abs().max().item() / expected.abs().max().item()

        def infer(module):
            def run():
                with torch.no_grad():
                    return module(x)
            return run

        fns = {"fused": infer(fused), "twin": infer(fused_twin), "unfused": infer(model)}
        samples = interleaved(fns, repeats=3 if args.quick else 11, target_s=0.3, warmup=2, device=args.device)
        twin_ratio = paired(samples["fused"], samples["twin"])
        unfused_ratio = paired(samples["fused"], samples["unfused"])
        norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        print(f"{name}: fused / fused twin {twin_ratio:.3f}, fused / unfused {unfused_ratio:.3f}", flush=True)
        rows.append([name, f"{FUSE_BATCH}x3x{FUSE_SIZE}x{FUSE_SIZE}", f"{norms} -> {left}", f"{error:.1e}",
                     ms(median(samples["fused"])), ms(median(samples["twin"])), ms(median(samples["unfused"])),
                     f"{twin_ratio:.3f}", f"{unfused_ratio:.3f}"])
        section.verdict(f"{name} fused inference <= 1.0x the fused twin", twin_ratio <= 1 + NOISE, f"{twin_ratio:.3f}")
        section.verdict(f"{name} fused inference <= 0.8x the unfused model", unfused_ratio <= 0.8,
                        f"{unfused_ratio:.3f}")
    section.add("Eval mode under `torch.no_grad()`, float32, eager. `fused`: `netspec.fuse` of netspec's model; "
                "`twin`: `tests/ultralytics_references.py`'s Ultralytics-layout model with netspec's weights, fused "
                "as Ultralytics' `BaseModel.fuse()` does (`baselines.ultralytics_fuse`: `fuse_conv_bn_weights`, the "
                "`bn` deleted, `act(conv(x))`); `unfused`: netspec's model as built. `error`: the largest difference "
                "of the fused outputs relative to the largest output. Median ms of interleaved repeats; ratios: the "
                "median of per-repeat ratios.")
    section.add()
    section.table(["network", "input", "BN layers", "error", "fused ms", "fused twin ms", "unfused ms",
                   "fused / fused twin", "fused / unfused"], rows)
    return section


