#!/usr/bin/env python
"""netspec's performance targets, each measured as a ratio against a baseline in the same run.

The entry point of the benchmark suite (``benchmarks/suite/``; ``python benchmarks/run.py --help`` lists the
targets and options).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
