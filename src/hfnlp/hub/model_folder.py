"""The shareable model folder of a run: completed at the end of training, or rebuilt from ``checkpoint-N``.

A complete folder holds ``model.safetensors``, ``config.json`` (``auto_map``, labels), the modeling code for
``trust_remote_code``, the tokenizer and/or image processor, ``generation_config.json`` for the captioner, the
resolved ``recipe.yaml`` and ``README.md`` (the model card). Tasks save the model itself; this module adds
what makes it a Hub repo, and can build the same folder from any checkpoint of the run.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from transformers import AutoConfig, PreTrainedModel

from hfnlp.errors import HfnlpError
from hfnlp.hub.model_card import CardSource, write_model_card
from hfnlp.hub.push import push_model_folder
from hfnlp.models import FAMILIES, family_for
from hfnlp.recipe import Recipe
from hfnlp.tasks import get_task, load_recipe
from hfnlp.training.atomic import atomic_path
from hfnlp.training.run_folder import METRICS, MODEL_DIR, RECIPE, RunFolder

logger = logging.getLogger(__name__)


def model_card_writer(recipe: Recipe) -> Callable[[Path], None]:
    """The run's ``RunOptions.finish_model_folder``: write the card into the new model folder while it is still
    being built aside, so that it goes into ``<output_dir>/model`` together with the model it describes."""
    run = RunFolder(recipe.output_dir)
    repo_id = recipe.hub.repo_id if recipe.hub.push_to_hub else None

    def write(folder: Path) -> None:
        write_model_card(CardSource(run.path, folder, location=run.model_dir), repo_id=repo_id)

    return write


def finish_model_folder(recipe: Recipe) -> Path:
    """At the end of ``hfnlp train``: push ``<output_dir>/model`` (its card written by :func:`model_card_writer`)
    if the recipe asks.

    A failed push raises after the folder is complete, naming the command that pushes it later.
    """
    run = RunFolder(recipe.output_dir)
    hub = recipe.hub
    if hub.push_to_hub and not hub.repo_id:
        raise HfnlpError(f"hub.push_to_hub is true but hub.repo_id is not set; the model is saved in {run.model_dir}")
    if hub.push_to_hub:
        try:
            url = push_model_folder(run.model_dir, hub.repo_id, private=hub.private, revision=hub.revision)
        except HfnlpError as error:
            raise HfnlpError(
                f"{error}\nthe model is saved in {run.model_dir}; push it later with "
                f"`hfnlp push {run.path} --repo-id {hub.repo_id}`"
            ) from error
        logger.info("pushed %s to %s", run.model_dir, url)
    return run.model_dir


def locate_model_folder(path: str | Path) -> tuple[Path, CardSource | None]:
    """The model folder that ``path`` names (a run folder, a run's ``model/``, an export of ``hfnlp export``, or a
    stand-alone model folder) and, when it belongs to a run, where its card comes from."""
    path = Path(path)
    if (path / MODEL_DIR / "config.json").is_file():
        return path / MODEL_DIR, CardSource(path, path / MODEL_DIR)
    if not (path / "config.json").is_file():
        raise HfnlpError(f"{path} is neither a model folder (no config.json) nor a run folder (no model/config.json)")
    if path.parent.name == "export" and path.name.removeprefix("checkpoint-").isdigit():
        run, checkpoint = path.parent.parent, int(path.name.removeprefix("checkpoint-"))
    else:
        run, checkpoint = path.parent, None
    is_run = (run / RECIPE).is_file() and (run / METRICS).is_file()
    return path, CardSource(run, path, checkpoint) if is_run else None


def export_model_folder(
    run_dir: str | Path, checkpoint: int | None = None, output: str | Path | None = None, onnx: bool = False
) -> Path:
    """Build the complete model folder of a run: from ``checkpoint-N`` into ``output`` (default
    ``<run>/export/checkpoint-N``), or, without ``checkpoint``, the run's own ``model/`` (in place, or copied to
    ``output``). With ``onnx``, the text classifier is also exported to ``onnx/model.onnx`` (parity-checked).

    The checkpoint's weights are loaded and saved the way the run's task saves its final model, with the run's
    tokenizer / image processor, recipe and a card reporting that checkpoint's scores. The folder is built aside
    and put in place in one step (:func:`~hfnlp.training.atomic.atomic_path`): an interrupted export leaves the
    previous folder, or none, never half of one.
    """
    run = RunFolder(run_dir)
    if not run.recipe_path.is_file():
        raise HfnlpError(f"{run.path} is not a run folder (no recipe.yaml)")
    if checkpoint is None:
        if not (run.model_dir / "config.json").is_file():
            raise HfnlpError(f"{run.path} has no final model yet; export one of its checkpoints with --checkpoint N")
        source = None
        target = run.model_dir if output is None else _empty_target(Path(output))
    else:
        source = run.checkpoint_dir(checkpoint)
        if not (source / "config.json").is_file():
            raise HfnlpError(f"{source} not found; checkpoints of this run: {run.checkpoint_steps() or 'none'}")
        target = _empty_target(Path(output) if output is not None else run.export_dir(checkpoint))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as folder:
        if source is None:
            shutil.copytree(run.model_dir, folder)
        else:
            save_like_task(load_recipe(run.recipe_path), run, _load_checkpoint(source), folder)
            shutil.copy(run.recipe_path, folder / RECIPE)
        if onnx:
            result = get_task(load_recipe(run.recipe_path).task).export_onnx(folder)
            logger.info("ONNX graph of %s: max |logit difference| to PyTorch %.1e", target, result.max_abs_diff)
        write_model_card(CardSource(run.path, folder, checkpoint, location=target))
    return target


def save_like_task(recipe: Recipe, run: RunFolder, model: PreTrainedModel, folder: Path) -> None:
    """Save ``model`` with the run's processors into ``folder`` as the recipe's task saves its final model (in the
    storage the recipe asks of it, e.g. fastText's int8 tables: ``model`` is converted in place)."""
    task = get_task(recipe.task)
    folder.mkdir(parents=True, exist_ok=True)
    FAMILIES[recipe.model["type"]].convert_for_folder(model, recipe.model)
    model.save_pretrained(folder)
    task.complete_model_folder(model, task.load_processor(recipe, run), folder)


def _load_checkpoint(checkpoint_dir: Path) -> PreTrainedModel:
    model_type = AutoConfig.from_pretrained(checkpoint_dir).model_type
    family = family_for(model_type)
    if family is None:
        raise HfnlpError(f"{checkpoint_dir}: model type {model_type!r} is not an hfnlp family")
    return family.model_class.from_pretrained(checkpoint_dir)


def _empty_target(target: Path) -> Path:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise HfnlpError(f"{target} already exists and is not empty; choose another --output")
    return target
