"""``import netspec.timm``: specs as timm models, ``features_only`` through timm's own wrapper, feature points.

Runs where timm imports (the interop environment of ``.ci/run``); skips elsewhere, saying why.
"""
from __future__ import annotations

import pytest

timm = pytest.importorskip(
    "timm", reason="timm (and the torchvision it imports) is not importable beside this torch: .ci/run runs this "
                   "file in the interop environment (torch 2.14.1, torchvision 0.29.1, timm 1.0.31)")

import torch  # noqa: E402

import netspec  # noqa: E402
import netspec.timm  # noqa: E402,F401  (registers "netspec" with timm)

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def resnet50() -> torch.nn.Module:
    return timm.create_model("netspec", spec="specs/resnet50.yaml", num_classes=10).eval()


def test_create_model_resizes_the_classifier(resnet50: torch.nn.Module) -> None:
    assert resnet50(X).shape == (2, 10)
    assert resnet50.num_classes == 10
    assert resnet50.pretrained_cfg["input_size"] == (3, 224, 224)


def test_create_model_without_num_classes_keeps_the_specs_head() -> None:
    """timm defaults num_classes to its cfg's 1000; a spec's own classifier is what the user wrote."""
    spec = "input: {channels: 3, size: 32}\nlayers:\n  - conv: {out: 8, stride: 2}\n  - avgpool\n  - linear: {out: 10}\n"
    model = timm.create_model("netspec", spec=spec).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10) and model.num_classes == 10
    assert timm.create_model("netspec", spec=spec, num_classes=4)(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_feature_info_indexes_as_timm_resnet(resnet50: torch.nn.Module) -> None:
    ours = [(info["num_chs"], info["reduction"]) for info in resnet50.feature_info]
    theirs = timm.create_model("resnet50", features_only=True).feature_info
    assert ours == list(zip(theirs.channels(), theirs.reduction()))
    assert ours == [(64, 2), (256, 4), (512, 8), (1024, 16), (2048, 32)]


@pytest.mark.parametrize("spec", ["specs/resnet50.yaml", "specs/efficientnet_b0.yaml", "specs/mobilenet_v3_large.yaml",
                                  "specs/resnet18.yaml"])
def test_timm_features_only_maps_match_feature_info(spec: str) -> None:
    """timm's own features_only wrapper on a netspec spec: each map's channels and reduction equal feature_info."""
    backbone = timm.create_model("netspec", spec=spec, features_only=True).eval()
    with torch.no_grad():
        maps = backbone(X)
    assert [m.shape[1] for m in maps] == backbone.feature_info.channels()
    assert [X.shape[-1] // m.shape[-1] for m in maps] == backbone.feature_info.reduction()


def test_out_indices_pick_stages() -> None:
    backbone = timm.create_model("netspec", spec="specs/resnet50.yaml", features_only=True, out_indices=(1, 2, 3, 4))
    with torch.no_grad():
        assert [m.shape[1] for m in backbone(X)] == [256, 512, 1024, 2048]
    efficientnet = timm.create_model("netspec", spec="specs/efficientnet_b0.yaml", features_only=True)
    assert efficientnet.feature_info.channels() == timm.create_model("efficientnet_b0", features_only=True).feature_info.channels()


def test_forward_intermediates_as_timm(resnet50: torch.nn.Module) -> None:
    with torch.no_grad():
        final, maps = resnet50.forward_intermediates(X)
        assert [m.shape[1] for m in maps] == [64, 256, 512, 1024, 2048] and final.shape == (2, 2048, 2, 2)
        only = resnet50.forward_intermediates(X, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in only] == [1024, 2048]
        early, picked = resnet50.forward_intermediates(X, indices=[0, 2], stop_early=True)
        assert early.shape[1] == 512 and [m.shape[1] for m in picked] == [64, 512]
        torch.testing.assert_close(picked[1], maps[2])


def test_spec_marks_its_feature_points_by_name() -> None:
    spec = netspec.load("specs/resnet50.yaml")
    marked = spec.model_copy(update={"features": ["stage2", "stage4"]})
    backbone = timm.create_model("netspec", spec=netspec.loads(marked.to_yaml()), features_only=True, out_indices=(0, 1))
    assert backbone.feature_info.channels() == [512, 2048] and backbone.feature_info.reduction() == [8, 32]
    with pytest.raises(netspec.SpecError, match="no entry named 'stage9'"):
        timm.create_model("netspec", spec=spec.model_copy(update={"features": ["stage9"]}))


def test_pretrained_cfg_overlay() -> None:
    model = timm.create_model("netspec", spec="specs/resnet18.yaml",
                              pretrained_cfg_overlay=dict(input_size=(3, 96, 96), mean=(0.5, 0.5, 0.5)))
    assert model.pretrained_cfg["input_size"] == (3, 96, 96) and model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)


def test_features_only_prunes_the_head_as_timm() -> None:
    """timm's features_only prunes what follows the last feature point: the same parameters as timm's own
    ResNet-50 backbone (no unused head parameter for DDP to stop on), and the spec cut with the model."""
    backbone = timm.create_model("netspec", spec="specs/resnet50.yaml", features_only=True, out_indices=(1, 2, 3))
    theirs = timm.create_model("resnet50", features_only=True, out_indices=(1, 2, 3))
    assert sum(p.numel() for p in backbone.parameters()) == sum(p.numel() for p in theirs.parameters())
    maps = backbone(X)
    sum(m.sum() for m in maps).backward()
    assert all(p.grad is not None for p in backbone.parameters())  # every parameter is used
    inner = backbone.model
    assert [layer.kind for layer in netspec.weights.spec_of(inner.net).layers][-1] == "stage"
    assert netspec.summary(netspec.weights.spec_of(inner.net)).params == sum(p.numel() for p in inner.parameters())


def test_reset_classifier_and_forward_head_as_timm() -> None:
    model = timm.create_model("netspec", spec="specs/resnet18.yaml").eval()
    trunk = {key: value.clone() for key, value in model.state_dict().items() if "linear" not in key}
    with torch.no_grad():
        features = model.forward_features(X)
        torch.testing.assert_close(model.forward_head(features), model(X))
        assert model.forward_head(features, pre_logits=True).shape == (2, 512)
        model.reset_classifier(7)
        assert model(X).shape == (2, 7) and model.get_classifier().out_features == 7 and model.num_classes == 7
        model.reset_classifier(0)
        assert model(X).shape == (2, 512) and model.num_classes == 0
        model.reset_classifier(0)  # again: nothing to remove, as timm's
        assert model(X).shape == (2, 512) and model.num_classes == 0
        model.reset_classifier(3)
        assert model(X).shape == (2, 3)
    kept = model.state_dict()
    assert all(torch.equal(kept[key], value) for key, value in trunk.items())  # the trunk keeps its weights
    spec = netspec.weights.spec_of(model.net)
    assert spec.layers[-1].out == 3 and netspec.summary(spec).params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("spec, name", [
    ("efficientnet_b0", "efficientnet_b0"), ("mobilenet_v3_large", "mobilenetv3_large_100"),
    ("mobilenet_v2", "mobilenetv2_100"), ("resnet18", "resnet18"), ("convnext_tiny", "convnext_tiny"),
    ("regnety_016", "regnety_016"), ("efficientnetv2_b0", "tf_efficientnetv2_b0"),
])
def test_default_features_index_as_timm_for_the_same_network(spec: str, name: str) -> None:
    """features_only with no out_indices: every feature point, the channels and reductions of timm's own
    features_only model of the same network (mobilenet_v3_large marks its points with `features:`)."""
    ours = timm.create_model("netspec", spec=f"specs/{spec}.yaml", features_only=True).feature_info
    theirs = timm.create_model(name, features_only=True).feature_info
    assert (ours.channels(), ours.reduction()) == (theirs.channels(), theirs.reduction())
