"""The registry of model families: one sub-package of :mod:`hfnlp.models` per family.

Each family package exposes ``FAMILY = ModelFamily(...)`` in its ``__init__.py``; :func:`discover_families`
finds them all, so adding a family never means editing a central list.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

import transformers
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel


@dataclass(frozen=True)
class ModelFamily:
    """A model family: the recipe's ``model.type`` name, its config class, and its model classes.

    ``auto_classes`` maps a transformers Auto class name (e.g. ``"AutoModelForSequenceClassification"``)
    to the model class registered with it; the first entry is the family's main class.
    """

    name: str
    config_class: type[PretrainedConfig]
    auto_classes: dict[str, type[PreTrainedModel]] = field(default_factory=dict)

    @property
    def model_class(self) -> type[PreTrainedModel]:
        """The family's main model class (the first of ``auto_classes``)."""
        return next(iter(self.auto_classes.values()))

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
