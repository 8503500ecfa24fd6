"""netspec's performance targets (issue 5), each measured as a ratio against a baseline in the same run.

    python benchmarks/run.py                      # everything; prints the tables, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick              # fewer repeats and shapes: a smoke run (minutes)
    python benchmarks/run.py --only memory,build  # a subset of: memory attention kernels networks packages
                                                  # compile build check validation fuse weights graphbuild
    python benchmarks/run.py --only networks --networks resnet50,yolov8n_cbam   # some of the network pairs
    python benchmarks/run.py --device cuda --dtype float16   # on a GPU (float16 / bfloat16 / float32)
    benchmarks/setup-env && .venv-bench/bin/python benchmarks/run.py --only packages   # against timm & co.

Targets and how each is measured (details in RESULTS.md):

1. memory     Non-local, PAM, CAM (and DANet) forward at 64x64, 512 channels, batch 2: peak memory <= 1/4 of the
              straightforward bmm + softmax code's (``baselines.py``), time no worse. Each peak is read in a fresh
              process (``memprobe.py``) two ways: peak RSS (VmHWM reset via /proc/self/clear_refs) and the
              profiler's allocator events; on CUDA ``max_memory_allocated``.
2. attention  Every attention kind, forward and forward+backward, batch 8 at 256@28x28, 512@14x14, 1024@14x14,
              NCHW and channels_last: time <= the baseline's (median of interleaved repeats, each case in a
              fresh process); channels_last in gives channels_last out.
   kernels    Which SDPA kernel each spatial attention kind runs and the largest intermediate tensor compared with
              the whole (HW x HW) score matrix; with ``--device cuda`` it also checks that SDPA never falls back to
              the math kernel (``sdpa_kernel`` restricted to the fused backends).
   networks   (issue 14) resnet50, se_resnet50, eca_resnet50, cbam_resnet50, sknet50, mobilenet_v3_large,
              efficientnet_b0, deeplabv3_resnet50 and yolov8n_cbam against their twins written with torch modules
              (``baselines.NETWORK_TWINS``): train step time, inference time and training peak memory <= 1.0x,
              side by side in one run (batch 2, 112x112 on the CPU; 128x128 for YOLOv8).
   packages   (issue 25) networks against the real packages' models where these import (torchvision, timm,
              Ultralytics; ``suite/packages.py`` ``PACKAGE_PAIRS``; ``benchmarks/setup-env`` makes an environment
              with all of them): the package model's weights copied into netspec's by architecture and the outputs
              checked equal, then train step, inference at batch 1, 8 and 32, and training peak memory <= 1.0x,
              both models in one process, alternating.
3. compile    ``torch.compile(fullgraph=True)`` of every kind and every spec in specs/ (the test is
              tests/test_compile.py; here only its times are reported), and the speed-up of ``torch.compile``
              per network of the networks target, train and inference (information, no target).
4. build      ``netspec.build("specs/resnet50.yaml")`` vs ``baselines.ResNet50()``: <= 1.1x.
5. check      ``netspec check specs/resnet50.yaml`` whole process vs ``python -c "import pydantic, yaml"``: <= 3x.
6. validation A generated 10,000-layer spec checks in < 2 s; 10,000 : 1,000 time ratio <= 12.
7. fuse       (issue 19) inference of ``netspec.fuse(model)`` for specs/yolov8n.yaml and yolo11n.yaml against
              its Ultralytics-layout twin fused as Ultralytics' ``model.fuse()`` (``baselines.ultralytics_fuse``):
              <= 1.0x; and against the unfused netspec model: <= 0.8x. Eval mode, ``torch.no_grad()``, batch 1 at
              320x320.
8. weights    (issue 23) netspec.load_weights vs model.load_state_dict in four cases (same, extra block, attention,
              width-doubled) at 500, 1,000, 5,000 modules: <= 2x at 5,000, time slope 1,000 -> 5,000 <= 1.1
              (``weights_bench.py``).
9. graphbuild (issue 23) ``netspec.build`` of generated graph specs (named entries, ``from:``, ``add`` merges) of
              1,000 to 5,000 entries: time grows linearly, log-log slope from 1,000 to 5,000 <= 1.1; the same
              builds with Python's garbage collector left running during the build are shown beside them.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
import time
from pathlib import Path

from .attention import ATTENTION_KINDS, bench_attention, bench_kernels, measure_case
from .compile import bench_compile
from .core import FIXED_MALLOC, HERE, NOISE, RUN, machine, yes
from .memory import bench_memory
from .networks import bench_fuse, bench_networks
from .packages import PACKAGE_PAIRS, bench_packages
from .overhead import bench_build, bench_check, bench_graph_build, bench_validation, bench_weights

TARGETS = ("memory", "attention", "kernels", "networks", "packages", "compile", "build", "check", "validation", "fuse", "weights", "graphbuild")


def twin_sources() -> list[str]:
    """The report's table of every in-house baseline and twin: the code it follows, and where the real package is
    measured instead (``baselines.TWIN_SOURCES``)."""
    from baselines import TWIN_SOURCES

    lines = ["## Baselines and twins", "",
             "The in-house modules the targets compare with (`benchmarks/baselines.py`, written out in `tests/` where "
             "the faithfulness tests share them), what each is written after, and where the real package is measured "
             "instead (`packages` target; `tests only`: no target times it, the tests use it).", "",
             "| twin | written after | real package measured |", "|---|---|---|"]
    lines += [f"| {name} | {source} | {measured} |" for name, (source, measured) in TWIN_SOURCES.items()]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shapes")
    parser.add_argument("--only", default=",".join(TARGETS), help=f"comma-separated subset of {', '.join(TARGETS)}")
    parser.add_argument("--kinds", default=",".join(ATTENTION_KINDS), help="attention kinds to time (attention target)")
    parser.add_argument("--networks", type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
                        help="networks to time (networks and compile targets: entries of baselines.NETWORK_TWINS; "
                             "packages target: entries of suite.packages.PACKAGE_PAIRS; default: all of them)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default: torch's choice). On a machine shared with other jobs "
                             "use 1: a parallel region waits for its slowest thread, and a descheduled one costs "
                             "tens of ms per op")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--channels-last", action="store_true",
                        help="networks and compile targets: models and inputs in channels_last")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"), help="where to write the report ('-': nowhere)")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's default (dynamic) malloc thresholds in the timing process")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # worker: one attention case, JSON samples on stdout
    parser.add_argument("--case-repeats", type=int, default=11, help=argparse.SUPPRESS)
    parser.add_argument("--case-target-s", type=float, default=0.08, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.system_malloc and any(os.environ.get(key) != value for key, value in FIXED_MALLOC.items()):
        # glibc reads these at start-up: run again with them set (same arguments)
        os.execve(sys.executable, [sys.executable, str(RUN), *(argv if argv is not None else sys.argv[1:])],
                  {**os.environ, **FIXED_MALLOC})
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.networks is not None:
        from baselines import NETWORK_TWINS

        known = list(NETWORK_TWINS) + [name for name in PACKAGE_PAIRS if name not in NETWORK_TWINS]
        unknown = sorted(set(args.networks) - set(known))
        if unknown:
            parser.error(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(known)}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the fresh processes (memory, build) too
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")

    if args.case:
        print(json.dumps(measure_case(args.case, args.case_repeats, args.case_target_s, args.device, args.dtype)))
        return 0

    command = "python benchmarks/run.py" + "".join(f" {arg}" for arg in (argv if argv is not None else sys.argv[1:]))
    started = time.time()
    header = machine(args)
    for line in header:
        print(line)
    benches = {"memory": bench_memory, "attention": bench_attention, "kernels": bench_kernels,
               "networks": bench_networks, "packages": bench_packages, "compile": bench_compile, "build": bench_build, "check": bench_check, "validation": bench_validation,
               "fuse": bench_fuse, "weights": bench_weights,
               "graphbuild": bench_graph_build}
    sections = []
    for name in TARGETS:
        if name in chosen:
            gc.collect()
            sections.append(benches[name](args))
    elapsed = time.time() - started

    verdicts = [(s.target, *v) for s in sections for v in s.verdicts]
    summary = ["| target | requirement | ratio / value | verdict |", "|---|---|---|---|"]
    summary += [f"| {target} | {what} | {ratio} | {yes(met)} |" for target, what, met, ratio in verdicts]
    print("\n".join(summary))
    if args.output != "-":
        try:
            load = os.getloadavg()
            end_load = f"- load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        except OSError:
            end_load = ""
        report = [
            "# netspec benchmark results",
            "",
            "Generated by `benchmarks/run.py` (issue 5). Every target is a ratio against a baseline measured in the "
            "same run: netspec's module or builder divided by the baseline's (`benchmarks/baselines.py`: "
            "straightforward implementations in the style of the papers' official code, and whole networks written "
            "with torch modules in the packages' layouts: \"Baselines and twins\" names the code and version each follows), "
            "and in the `packages` target the real torchvision, timm and Ultralytics models "
            "(`benchmarks/suite/packages.py`). Timings are medians of interleaved repeats; each ratio is the median of the "
            "per-repeat ratios (candidate and baseline timed back to back in every repeat).",
            "",
            f"Command: `{command}`",
            "",
            f"Run on {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}, {elapsed / 60:.1f} min:",
            *header,
            *([end_load] if end_load else []),
            "",
            *([] if args.device.startswith("cuda") else [
                "GPU: not measured in this run (no CUDA device was available to it). On a GPU, "
                "`python benchmarks/run.py --device cuda --dtype float16` (and `--dtype bfloat16`) runs the memory, "
                "attention, kernel and network targets there, and the kernel table then checks that SDPA runs a "
                "fused kernel (flash / memory-efficient / cuDNN) and never falls back to the math kernel for these "
                "shapes; `benchmarks/gpu.sh` is issue 14's GPU section as one script (float32, bfloat16 and float16, "
                "and `netspec bench` images/s for resnet50 and se_resnet50 at batch 256, 224x224, AMP, "
                "channels_last).",
                "",
            ]),
            "## Summary",
            "",
            f"Timing verdicts: a ratio <= {1 + NOISE:.2f} counts as \"no worse\" ({NOISE:.0%} is the spread of "
            "repeated medians on this shared machine); every ratio is printed as measured.",
            "",
            *summary,
            "",
            *twin_sources(),
        ]
        for section in sections:
            report += section.lines
        Path(args.output).write_text("\n".join(report) + "\n")
        print(f"wrote {args.output}")
    return 0 if all(met for _, _, met, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
