"""netspec's benchmark suite: ``python benchmarks/run.py`` (the CLI is :mod:`suite.cli`).

One module per target family: :mod:`suite.memory`, :mod:`suite.attention` (attention, kernels),
:mod:`suite.networks` (networks, fuse), :mod:`suite.compile`, :mod:`suite.overhead` (build, check, validation,
weights, graphbuild); :mod:`suite.core` is the shared timing and reporting core.
"""
