"""The registry of model families: one sub-package of :mod:`hfnlp.models` per family.

Each family package exposes ``FAMILY = ModelFamily(...)`` in its ``__init__.py``; :func:`discover_families`
finds them all, so adding a family never means editing a central list. What differs between families beyond their
classes (building a new model with pretrained weights, ONNX export) is a hook on the family, so the layers above
never test for a family by name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import transformers
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from hfnlp.errors import HfnlpError


@dataclass(frozen=True)
class ModelFamily:
    """A model family: the recipe's ``model.type`` name and its model classes (whose ``config_class`` is the family's).

    ``auto_classes`` maps a transformers Auto class name (e.g. ``"AutoModelForSequenceClassification"``)
    to the model class registered with it; the first entry is the family's main class.

    ``builder`` makes a new model from a config where the main class alone does not (e.g. pretrained backbone
    weights the config names); ``onnx_module`` turns a model into the ``(input_ids, attention_mask) -> logits``
    module that ONNX export traces, raising :class:`~hfnlp.errors.HfnlpError` for a configuration it cannot export.

    ``storage_fields`` are config fields that say how the final model folder stores the trained weights, not how the
    model trains (fastText's ``table_storage``), each with the function that converts a trained model in place to a
    value of the field: a run trains the model its recipe describes without them (:meth:`training_parameters`) and
    converts it as the recipe asks just before its final folder is written (:meth:`convert_for_folder`).
    """

    name: str
    auto_classes: dict[str, type[PreTrainedModel]] = field(default_factory=dict)
    builder: Callable[[PretrainedConfig], PreTrainedModel] | None = None
    onnx_module: Callable[[PreTrainedModel], nn.Module] | None = None
    storage_fields: Mapping[str, Callable[[PreTrainedModel, Any], object]] = field(default_factory=dict)

    @property
    def model_class(self) -> type[PreTrainedModel]:
        """The family's main model class (the first of ``auto_classes``)."""
        return next(iter(self.auto_classes.values()))

    @property
    def config_class(self) -> type[PretrainedConfig]:
        """The family's config class (the recipe's ``model`` keys are its fields)."""
        return self.model_class.config_class

    def build_model(self, config: PretrainedConfig) -> PreTrainedModel:
        """A new model exactly as ``config`` describes it, initialisation and pretrained weights included."""
        return self.builder(config) if self.builder is not None else self.model_class(config)

    def training_parameters(self, section: Mapping[str, Any]) -> dict[str, Any]:
        """The config parameters of the model a run trains, from a recipe's ``model`` section: every key but
        ``type`` and the storage fields."""
        return {key: value for key, value in section.items() if key != "type" and key not in self.storage_fields}

    def convert_for_folder(self, model: PreTrainedModel, section: Mapping[str, Any]) -> None:
        """Convert the trained ``model`` in place to the storage a recipe's ``model`` section asks of its final
        model folder (nothing to do when it sets no storage field)."""
        for key, convert in self.storage_fields.items():
            if key in section:
                convert(model, section[key])

    def exportable(self, model: PreTrainedModel) -> nn.Module:
        """``model`` as a module that ``torch.onnx.export`` traces; :class:`HfnlpError` if it cannot be exported."""
        if self.onnx_module is None:
            raise HfnlpError(f"ONNX export does not cover {self.name} models")
        return self.onnx_module(model)

    def register(self) -> None:
        """Register with the Auto classes (for in-process loading) and for remote code (``auto_map``)."""
        AutoConfig.register(self.config_class.model_type, self.config_class, exist_ok=True)
        self.config_class.register_for_auto_class()
        for auto_name, model_class in self.auto_classes.items():
            getattr(transformers, auto_name).register(self.config_class, model_class, exist_ok=True)
            model_class.register_for_auto_class(auto_name)


def discover_families() -> dict[str, ModelFamily]:
    """Import every family sub-package of :mod:`hfnlp.models` and return ``{name: family}``."""
    import hfnlp.models as models_package

    families = {}
    for module_info in pkgutil.iter_modules(models_package.__path__):
        if not module_info.ispkg:
            continue
        module = importlib.import_module(f"{models_package.__name__}.{module_info.name}")
        family = getattr(module, "FAMILY", None)
        if isinstance(family, ModelFamily):
            families[family.name] = family
    return families
