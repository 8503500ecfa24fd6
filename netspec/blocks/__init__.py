"""Every built-in block of ``stage``, one module each; importing this package registers them all.

See :mod:`netspec.blocks.base` for the contract a block (built-in or from a plugin) fulfils.
"""
from __future__ import annotations

import importlib

from netspec.blocks.base import BLOCKS, Block, BlockParams, Site, block_names, register_block, unregister_block

BUILTIN = ("plain", "basic", "bottleneck", "inverted", "fused", "regnet", "convnext")
"""The built-in blocks in the order the schema and error messages list them."""

for _name in BUILTIN:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["BLOCKS", "Block", "BlockParams", "Site", "block_names", "register_block", "unregister_block"]
