"""Tasks: one module per task, each registering a :class:`~hfnlp.tasks.base.Task` with :func:`register_task`.

Task modules are found on first use of :func:`get_task`, so adding a task means adding a module, not editing a
list. Recipes are loaded here because their ``data`` / ``tokenizer`` sections and model families belong to tasks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub.errors import StrictDataclassError

from hfnlp.errors import RecipeError
from hfnlp.models import FAMILIES
from hfnlp.recipe import Recipe, apply_overrides, build_recipe, config_parameters, suggest
from hfnlp.recipe_yaml import read_recipe_file
from hfnlp.tasks.base import Task

_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` available to recipes under ``task: <task.name>``; returns it."""
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name``; a :class:`RecipeError` with a suggestion otherwise."""
    if name not in _TASKS:  # task modules register themselves when imported: import them all, once
        for module in pkgutil.iter_modules(__path__):
            if module.name != "base":
                importlib.import_module(f"{__name__}.{module.name}")
    if name not in _TASKS:
        raise RecipeError(
            f"unknown task {name!r}{suggest(str(name), _TASKS)}; valid tasks: {', '.join(sorted(_TASKS))}"
        )
    return _TASKS[name]


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a YAML recipe, apply ``key.sub=value`` overrides and validate every key and value."""
    return recipe_from_dict(apply_overrides(read_recipe_file(path), overrides), source=str(path))


def recipe_from_dict(raw: Mapping[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe given as plain data (sections, model family and its keys, task checks); build it."""
    if "task" not in raw:
        raise RecipeError(f"{source}: missing required key 'task'")
    if not isinstance(raw["task"], str):
        raise RecipeError(f"task: expected a task name such as 'text-classification', got {raw['task']!r}")
    task = get_task(raw["task"])
    recipe = build_recipe(raw, task.data_config, task.tokenizer_config, source)
    check_model_section(recipe.model, task)
    check_metric_for_best_model(recipe, task)
    task.check_recipe(recipe)
    return recipe


def check_metric_for_best_model(recipe: Recipe, task: Task) -> None:
    """Check that ``training.metric_for_best_model`` is a metric ``task`` reports (with or without Trainer's
    ``eval_`` prefix); without this a typo fails only after the first evaluation, an epoch later."""
    names = task.metric_names(recipe)
    training = recipe.training
    if names is None or training.eval_strategy == "no":  # not declared by the task, or never used
        return
    metric = training.metric_for_best_model
    if metric.removeprefix("eval_") not in names:
        raise RecipeError(
            f"training.metric_for_best_model: {metric!r} is not a metric of task {task.name!r}"
            f"{suggest(metric.removeprefix('eval_'), names)}; use one of: {', '.join(sorted(names))}"
        )


def check_model_section(section: Mapping[str, Any], task: Task) -> None:
    """Check that ``model.type`` is a family ``task`` trains and that every other key is one of its config's, with
    values its config accepts."""
    families = task.model_families()
    model_type = section.get("type")
    if not isinstance(model_type, str) or model_type not in families:
        fits_another = isinstance(model_type, str) and model_type in FAMILIES
        other = f" (a {model_type!r} model does not fit task {task.name!r})" if fits_another else ""
        raise RecipeError(
            f"model.type: {model_type!r} is not a model family of task {task.name!r}{other}"
            f"{suggest(str(model_type), families)}; valid types: {', '.join(sorted(families))}"
        )
    config_class = families[model_type].config_class
    valid = config_parameters(config_class)
    params = {key: value for key, value in section.items() if key != "type"}
    for key in params:
        if not isinstance(key, str) or key not in valid:
            raise RecipeError(f"unknown key 'model.{key}' for model type {model_type!r}{suggest(key, valid, 'model.')}")
    try:
        config_class(**params)
    except (TypeError, ValueError, StrictDataclassError) as error:  # the config's typed fields and range checks
        raise RecipeError(f"model ({model_type}): {' '.join(str(error).split())}") from error


__all__ = [
    "Task",
    "check_metric_for_best_model",
    "check_model_section",
    "get_task",
    "load_recipe",
    "recipe_from_dict",
    "register_task",
]
