"""``netspec.build(spec, overrides=...)``, the Hydra ``_target_`` form, and ``save_pretrained``/``from_pretrained``."""
from __future__ import annotations

import importlib
import json

import pytest
import torch
import yaml

import netspec


def test_overrides_change_a_spec_by_path() -> None:
    model = netspec.build("specs/resnet18.yaml", overrides={"linear.out": 10, "scale.width": 0.5,
                                                           "stage3.depth": 1, "input.size": 64})
    spec = netspec.weights.spec_of(model)
    assert spec.layers[-1].out == 10 and spec.scale.width == 0.5 and spec.layers[4].depth == 1
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    base = netspec.summary("specs/resnet18.yaml").params
    assert netspec.summary(spec).params < base / 3  # half the width: about a quarter of the weights


def test_overrides_reach_nested_params_and_positions() -> None:
    spec = netspec.load("specs/se_resnet50.yaml")
    model = netspec.build(spec, overrides={"stage2.attention.se.reduction": 8, "layers.7.out": 7})
    changed = netspec.weights.spec_of(model)
    assert changed.layers[3].attention.reduction == 8 and changed.layers[-1].out == 7
    assert spec.layers[3].attention.reduction == 16  # the original spec is left as it was


def test_bad_override_paths_are_located_errors() -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.build("specs/mobilenet_v3_large.yaml", overrides={"linear.out": 10, "stage99.depth": 2,
                                                                 "conv1.colour": 1, "layers.99.out": 3})
    lines = [str(problem) for problem in caught.value.problems]
    assert any(line.startswith("overrides.linear.out") and "(linear1, linear2): name one" in line for line in lines)
    assert any("stage99" in line and "no section, entry or kind" in line for line in lines)
    assert any("conv has no param 'colour'" in line for line in lines)
    assert any("layers.99.out" in line and "18 entries (0 to 17)" in line for line in lines)
    with pytest.raises(netspec.SpecError, match=r"layers\[7\]\.linear\.out"):  # a bad value: the spec's own error
        netspec.build("specs/resnet18.yaml", overrides={"linear.out": -1})


def test_hydra_target_form(tmp_path) -> None:
    """What hydra.utils.instantiate does with the README's config: import _target_, call it with the rest."""
    config = yaml.safe_load("""
model:
  _target_: netspec.build
  spec: specs/resnet18.yaml
  overrides: {linear.out: 10, scale.width: 0.5}
""")["model"]
    module_name, _, function = config.pop("_target_").rpartition(".")
    model = getattr(importlib.import_module(module_name), function)(**config)
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def _docs_hydra_config() -> str:
    """The Hydra config block of docs/how-to/pretrained-weights.md, as the page shows it."""
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "how-to" / "pretrained-weights.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in page.split("```yaml\n")[1:]]
    found = [block for block in blocks if "_target_: netspec.build" in block]
    assert len(found) == 1, "the page shows one Hydra config"
    return found[0]


def test_hydra_instantiates_the_documented_config() -> None:
    """hydra.utils.instantiate on the docs' config: the model the page says, and a sweep's override of it.
    Needs hydra-core (the `hydra` extra; .ci/run installs it in the interop environment and runs this file there)."""
    pytest.importorskip("hydra", reason="hydra-core is not installed here (the `hydra` extra): .ci/run runs this "
                                        "file again in the interop environment, which has it")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.create(_docs_hydra_config())
    model = instantiate(config.model)
    assert isinstance(model, torch.nn.Module)
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    spec = netspec.weights.spec_of(model)
    assert spec.scale.width == 0.5 and spec.layers[-1].out == 10
    swept = OmegaConf.merge(config, OmegaConf.from_dotlist(["model.spec=specs/mobilenet_v2.yaml"]))
    assert netspec.weights.spec_of(instantiate(swept.model)).layers[-1].out == 10  # the same overrides, another spec


def test_save_and_load_pretrained_folder(tmp_path) -> None:
    pytest.importorskip("safetensors")
    model = netspec.build("specs/resnet18.yaml", overrides={"linear.out": 3}, seed=4).eval()
    netspec.save_pretrained(model, tmp_path / "r18")
    config = json.loads((tmp_path / "r18" / "config.json").read_text())
    assert config["format"] == "netspec" and config["spec"]["layers"][-1] == {"linear": {"out": 3}}
    loaded = netspec.from_pretrained(str(tmp_path / "r18")).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"format": "other"}')
    with pytest.raises(netspec.WeightsError, match="not a netspec config"):
        netspec.from_pretrained(str(tmp_path / "bad"))
    with pytest.raises(netspec.WeightsError, match="does not remember its spec"):
        netspec.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "plain")
