"""Hugging Face Hub layout: ``save_pretrained(model, folder)`` / ``from_pretrained(folder_or_repo_id)``.

A folder holds ``config.json`` (``{"format": "netspec", "version": 1, "spec": {...}}``, the spec as the JSON form
of its YAML) and ``model.safetensors`` (the state dict, by netspec's own module names). A local folder needs only
the ``safetensors`` package; a repo id (``user/repo``) is downloaded with ``huggingface_hub`` (the ``hub`` extra).
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from netspec.api import build, spec_of
from netspec.errors import Problem
from netspec.files import write_bytes_atomic
from netspec.spec import loads
from netspec.weights import WeightsError

if TYPE_CHECKING:
    from torch import nn

    from netspec.spec import Spec

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
FORMAT = "netspec"
VERSION = 1


def _fail(where: str, message: str) -> WeightsError:
    return WeightsError([Problem((), message, where)])


def _safetensors(where: str) -> Any:
    try:
        import safetensors.torch
    except ImportError:
        raise _fail(where, "needs the safetensors package: pip install 'netspec[hub]'") from None
    return safetensors.torch


def save_pretrained(model: "nn.Module", folder: str | os.PathLike[str], *, spec: "Spec | None" = None) -> None:
    """Write ``config.json`` (the spec) and ``model.safetensors`` (the weights) into ``folder`` (created)."""
    folder = os.fspath(folder)
    spec = spec or spec_of(model)
    if spec is None:
        raise _fail(folder, "the model does not remember its spec (build it with netspec.build, or pass spec=)")
    library = _safetensors(folder)
    os.makedirs(folder, exist_ok=True)
    state = {key: tensor.detach().contiguous().cpu() for key, tensor in model.state_dict().items()}
    config = {"format": FORMAT, "version": VERSION, "spec": spec.to_data()}
    write_bytes_atomic(os.path.join(folder, WEIGHTS), library.save(state, metadata={"format": "pt"}))
    write_bytes_atomic(os.path.join(folder, CONFIG), (json.dumps(config, indent=2) + "\n").encode())


def _local_folder(name: str) -> str:
    if os.path.isdir(name):
        return name
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise _fail(name, "no such folder; to download a Hub repo install huggingface_hub: pip install 'netspec[hub]'") \
            from None
    try:
        return snapshot_download(repo_id=name, allow_patterns=[CONFIG, WEIGHTS])
    except Exception as error:  # network, missing repo, bad id: one line
        raise _fail(name, f"cannot download from the Hub: {type(error).__name__}: {error}") from None


def from_pretrained(folder_or_repo_id: str | os.PathLike[str]) -> "nn.Module":
    """The model ``save_pretrained`` wrote: built from ``config.json``'s spec, weights loaded (strict, by name)."""
    folder = _local_folder(os.fspath(folder_or_repo_id))
    config_path, weights_path = os.path.join(folder, CONFIG), os.path.join(folder, WEIGHTS)
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise _fail(config_path, f"cannot read: {error}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("spec"), dict):
        raise _fail(config_path, 'not a netspec config (expected {"format": "netspec", "spec": {...}})')
    spec = loads(json.dumps(config["spec"]), name=config_path)  # JSON is YAML: errors located in the file
    model = build(spec)
    try:
        state = _safetensors(weights_path).load_file(weights_path)
    except WeightsError:
        raise
    except Exception as error:
        raise _fail(weights_path, f"cannot read: {type(error).__name__}: {error}") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise _fail(weights_path, f"does not fit the spec: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    return model
