"""Peak memory of ONE forward pass of one attention module, measured in a fresh process (run by ``run.py``).

    python benchmarks/memprobe.py KIND IMPL CHANNELS SIZE BATCH MODE METHOD [--device cpu] [--dtype float32]
                                  [--warmup-size N]

IMPL is ``netspec`` (the kind built by netspec) or ``baseline`` (``benchmarks/baselines.py``); MODE is
``inference`` (``torch.no_grad()``), ``training`` (autograd on: what the forward keeps for backward counts) or
``backward`` (forward and backward, as in a training step: the input requires grad, the output's gradient is
made before the peak is reset, and the input's and parameters' gradients count);
METHOD is how the peak is read (prints one JSON line: bytes above what was allocated before the forward):

- ``rss``: the process's peak resident set, VmHWM, reset through ``/proc/self/clear_refs`` just before the
  forward, minus VmRSS at that moment. run.py starts the probe with ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB so
  that glibc serves every tensor from mmap and gives it back on free: RSS then follows live memory, and a warm-up
  forward (kernels, thread pools) does not leave a reusable heap behind that would hide the next one's peak.
- ``profiler``: ``torch.profiler`` with ``profile_memory=True``; every allocation and free of the c10 allocator
  (from every intra-op thread) in time order, summed; the peak of that running sum. Tensors only, exact.
- ``cuda``: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus the allocated bytes
  before the forward.

``--warmup-size N`` runs the warm-up pass at N x N instead of SIZE x SIZE, so the measured pass is the first
full-size one (issue 25's user-visible figure: ``rss`` with glibc's default allocator, no ``MALLOC_*`` variables,
``--warmup-size 16``).

Both CPU methods include the output tensor (the forward's result is kept until the peak is read).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from baselines import ATTENTION_BASELINES  # noqa: E402


def status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        return int(re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.M).group(1))


def make(kind: str, impl: str, channels: int, size: int, device: str, dtype: torch.dtype) -> torch.nn.Module:
    if impl == "baseline":
        module = ATTENTION_BASELINES[kind](channels)
    else:
        import netspec
        from netspec.layers.base import Context
        from netspec.shapes import Shape

        module = netspec.KINDS[kind]().build(Shape(channels, size, size), Context())
    return module.to(device=device, dtype=dtype).eval()


def profiler_peak(run) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = run()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    del out
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind")
    parser.add_argument("impl", choices=["netspec", "baseline"])
    parser.add_argument("channels", type=int)
    parser.add_argument("size", type=int)
    parser.add_argument("batch", type=int)
    parser.add_argument("mode", choices=["inference", "training", "backward"])
    parser.add_argument("method", choices=["rss", "profiler", "cuda"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--warmup-size", type=int, default=None,
                        help="map size of the warm-up pass (default: SIZE); a small one leaves the first full-size "
                             "pass to the allocator as a user's first training step meets it")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    module = make(args.kind, args.impl, args.channels, args.size, args.device, dtype)
    if args.mode != "inference":
        module.train()
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=args.device, dtype=dtype)
    x.requires_grad_(args.mode == "backward")
    grad = torch.randn_like(x) if args.mode == "backward" else None  # every attention kind keeps (N, C, H, W)

    def run() -> torch.Tensor:
        if args.mode == "inference":
            with torch.no_grad():
                return module(x)
        out = module(x)
        if grad is not None:
            out.backward(grad)
        return out

    if args.warmup_size not in (None, args.size):
        small = torch.randn(args.batch, args.channels, args.warmup_size, args.warmup_size, device=args.device,
                            dtype=dtype, requires_grad=args.mode == "backward")
        full = x
        x = small
        grad = torch.randn_like(small) if args.mode == "backward" else None
    out = run()  # warm-up: one-time allocations (kernels, thread pools) are not the forward's
    del out
    if args.warmup_size not in (None, args.size):
        x, grad = full, torch.randn_like(full) if args.mode == "backward" else None
        del small, full
    x.grad = None
    module.zero_grad(set_to_none=True)
    gc.collect()
    if args.method == "rss":
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM to the current RSS
        before = status_kib("VmRSS")
        out = run()
        peak = (status_kib("VmHWM") - before) * 1024
    elif args.method == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = run()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = profiler_peak(run)
        out = None
    output_bytes = 0 if out is None else out.numel() * out.element_size()
    print(json.dumps({"peak_bytes": peak, "output_bytes": output_bytes}))


if __name__ == "__main__":
    main()
