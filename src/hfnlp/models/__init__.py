"""Model families. Each sub-package is one family (``configuration_x.py`` + ``modeling_x.py``).

Importing this package registers every family with the transformers Auto classes.
"""

from hfnlp.models.registry import ModelFamily, discover_families

FAMILIES: dict[str, ModelFamily] = discover_families()
MODEL_TYPES = {name: family.config_class for name, family in FAMILIES.items()}

for _family in FAMILIES.values():
    _family.register()


def families_loaded_by(auto_class: str) -> dict[str, ModelFamily]:
    """The families registered with the transformers Auto class ``auto_class`` (a task's models), by ``model.type``."""
    return {name: family for name, family in FAMILIES.items() if auto_class in family.auto_classes}


def family_for(model_type: str) -> ModelFamily | None:
    """The family whose config has ``model_type`` (as in a saved ``config.json``), or ``None``."""
    return next((family for family in FAMILIES.values() if family.config_class.model_type == model_type), None)


__all__ = ["FAMILIES", "MODEL_TYPES", "ModelFamily", "families_loaded_by", "family_for"]
