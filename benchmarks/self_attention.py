#!/usr/bin/env python
"""bottleneck_attn and halo_attn against timm's own ``timm.layers.BottleneckAttn`` / ``HaloAttn`` where timm imports
(``benchmarks/setup-env``), else their timm-layout twins (tests/official_self_attention.py: timm 1.0.31's
arithmetic, the full (tokens x tokens) or (block x window) logits with the skewed relative positions), 512 channels
at 32x32 and 64x64, batch 1.

    python benchmarks/self_attention.py [--repeats 5] [--sizes 32,64] [--batch 1] [--twins]

Time: median of interleaved repeats (forward under no_grad; forward + backward). Training memory: the peak of
the c10 allocator's live bytes (torch.profiler allocation events, every thread, in time order) over one forward
+ backward, above what was allocated before it. Targets (issue 22), for bottleneck_attn at 64x64: time ratio
<= 1.0 (forward and forward + backward) and training memory ratio <= 0.5.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import netspec  # noqa: E402
import official_self_attention as twins  # noqa: E402
from netspec.layers.base import Context  # noqa: E402
from netspec.shapes import Shape  # noqa: E402


def source(use_twins: bool):  # noqa: ANN201
    """timm.layers where timm imports (and ``use_twins`` is off), else the in-house twins; and its label."""
    if not use_twins:
        try:
            import timm
            from timm.layers import bottleneck_attn, halo_attn
        except ImportError:
            pass
        else:  # timm.layers.bottleneck_attn.BottleneckAttn, timm.layers.halo_attn.HaloAttn
            return SimpleNamespace(BottleneckAttn=bottleneck_attn.BottleneckAttn, HaloAttn=halo_attn.HaloAttn), \
                f"timm {timm.__version__}"
    return twins, "tests/official_self_attention.py (timm 1.0.31's layout)"


def pair(kind: str, channels: int, size: int, module=twins) -> tuple[torch.nn.Module, torch.nn.Module]:  # noqa: ANN001
    torch.manual_seed(0)
    if kind == "bottleneck_attn":
        twin = module.BottleneckAttn(channels, feat_size=(size, size), num_heads=4)
        ours = netspec.layers.BottleneckAttn(heads=4).build(Shape(channels, size, size), Context())
    else:
        twin = module.HaloAttn(channels, num_heads=8, block_size=8, halo_size=3)
        ours = netspec.layers.HaloAttn().build(Shape(channels, size, size), Context())
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0.5)  # keep the logits moderate (no subnormal probabilities, see run.py)
    netspec.load_weights(ours, twin.state_dict(), strict=True)
    return ours, twin


def forward(module, x):
    def run():
        with torch.no_grad():
            module(x)
    return run


def training(module, x):
    def run():
        out = module(x)
        out.backward(torch.ones_like(out))
        x.grad = None
        for p in module.parameters():
            p.grad = None
    return run


def timed(fns: dict, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def training_peak(module, x) -> int:
    """Peak live bytes of the c10 allocator during one forward + backward, above the start."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        training(module, x)()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]  # as memprobe.py
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--twins", action="store_true", help="the in-house twins even where timm imports")
    args = parser.parse_args()
    module, label = source(args.twins)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.channels} ch; "
          f"compared with: {label}")
    print("| kind | size | forward ms (netspec / twin = ratio) | fwd+bwd ms (ratio) | training peak MiB (ratio) |")
    print("|---|---|---|---|---|")
    for kind in ("bottleneck_attn", "halo_attn"):
        for size in (int(s) for s in args.sizes.split(",")):
            ours, twin = pair(kind, args.channels, size, module)
            x = torch.randn(args.batch, args.channels, size, size)
            xg = x.clone().requires_grad_()
            with torch.no_grad():
                torch.testing.assert_close(ours(x), twin(x), rtol=1e-4, atol=1e-4)
            fwd = timed({"ours": forward(ours, x), "twin": forward(twin, x)}, args.repeats)
            bwd = timed({"ours": training(ours, xg), "twin": training(twin, xg)}, args.repeats)
            mem = {"ours": training_peak(ours, xg), "twin": training_peak(twin, xg)}
            cells = [f"{1e3 * d['ours']:.1f} / {1e3 * d['twin']:.1f} = {d['ours'] / d['twin']:.2f}" for d in (fwd, bwd)]
            memory = f"{mem['ours'] / 2**20:.1f} / {mem['twin'] / 2**20:.1f} = {mem['ours'] / mem['twin']:.2f}"
            print(f"| {kind} | {size}x{size} | {cells[0]} | {cells[1]} | {memory} |", flush=True)


if __name__ == "__main__":
    main()
