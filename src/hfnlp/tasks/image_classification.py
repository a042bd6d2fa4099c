"""Image classification: fine-tune a pretrained timm backbone with a new head (or train it from scratch),
with augmentation, a larger learning rate for the head, and optionally a frozen backbone for the first epochs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from timm.data import Mixup
from timm.models import get_pretrained_cfg
from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from transformers import (
    TimmWrapperImageProcessor,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from hfnlp.data.augmentation import build_mixup, build_train_transform, mix_batch
from hfnlp.data.image_folders import ImageDataConfig, TransformedImages, load_image_classification
from hfnlp.errors import HfnlpError, RecipeError
from hfnlp.models.backbones import create_backbone
from hfnlp.models.image_classifier import ImageClassifierConfig, ImageClassifierForImageClassification
from hfnlp.recipe import Recipe, TaskSpec, register_task
from hfnlp.training.batching import LengthBucketingTrainer
from hfnlp.training.engine import RunFolder, RunOptions, fit, save_final_model, write_metrics
from hfnlp.training.reports import (
    classification_metrics,
    classification_scores,
    plot_training_curves,
    write_classification_report,
)

logger = logging.getLogger(__name__)
TASK = "image-classification"
_SET_BY_DATA = ("num_labels", "id2label", "label2id")
# The pretrained_cfg keys that timm's resolve_data_config reads: what the image processor needs.
_DATA_CONFIG_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def run_image_classification(recipe: Recipe, options: RunOptions) -> dict[str, Any]:
    """Train, evaluate on the test split, write reports and save the final model; return ``metrics.json``."""
    started = time.time()
    if recipe.training.group_by_length:
        raise RecipeError("training.group_by_length: images have no length to group batches by; set it to false")
    run = RunFolder(recipe.output_dir)
    # Under `accelerate launch` the main process prepares the folder first; the others then reopen it.
    with PartialState().main_process_first():
        resume_from = run.prepare(recipe, resume=options.resume)
    set_seed(recipe.seed)
    data = load_image_classification(recipe.data, seed=recipe.seed)
    logger.info(
        "splits: %s; skipped bad images: %s; ignored non-image files: %s",
        {k: len(v) for k, v in data.splits.items()},
        data.skipped_images,
        data.ignored_files,
    )
    config = image_classifier_config(recipe.model, data.label_names)
    model = build_image_model(config)
    processor = image_processor_for(config)
    train_transform = build_train_transform(recipe.data.augmentation, processor.data_config, processor.val_transforms)
    splits = {
        name: TransformedImages(split, train_transform if name == "train" else processor.val_transforms)
        for name, split in data.splits.items()
    }
    callbacks = list(options.callbacks)
    if config.freeze_backbone_epochs:
        callbacks.append(FreezeBackboneCallback(config.freeze_backbone_epochs))
    trainer = fit(
        recipe,
        run,
        model=model,
        splits=splits,
        resume_from=resume_from,
        data_collator=default_data_collator,
        compute_metrics=classification_metrics(len(data.label_names)),
        callbacks=callbacks,
        trainer_class=ImageClassificationTrainer,
        mixup=build_mixup(recipe.data.augmentation, len(data.label_names), recipe.training.label_smoothing_factor),
    )
    test = trainer.predict(splits["test"], metric_key_prefix="test")  # gathered from every process
    if trainer.is_world_process_zero():
        scores = classification_scores(np.argmax(test.predictions, axis=-1), test.label_ids, data.label_names)
        write_classification_report(run.path, scores, data.label_names)
        plot_training_curves(trainer.state.log_history, run.path / "curves.png")
    save_final_model(trainer, run)
    summary = write_metrics(run, trainer, test.metrics, started)
    summary.update(skipped_images=data.skipped_images, ignored_files=data.ignored_files)
    if trainer.is_world_process_zero():
        run.metrics_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def image_classifier_config(model_section: dict[str, Any], label_names: list[str]) -> ImageClassifierConfig:
    """The model config for the recipe's ``model`` section and the data's labels, with ``pretrained_cfg`` (image
    size, interpolation, crop, normalisation) taken from the backbone's pretrained config."""
    params = {key: value for key, value in model_section.items() if key != "type"}
    clashing = [key for key in _SET_BY_DATA if key in params]
    if clashing:
        raise RecipeError(f"model.{clashing[0]} is set from the data's labels; remove it from the recipe")
    try:
        config = ImageClassifierConfig(
            id2label=dict(enumerate(label_names)), label2id={name: i for i, name in enumerate(label_names)}, **params
        )
    except (TypeError, ValueError) as error:  # strict type checks and __post_init__ range checks
        raise RecipeError(f"model: {error}") from error
    config.pretrained_cfg = resolve_pretrained_cfg(config.architecture, config.image_size)
    return config


def resolve_pretrained_cfg(architecture: str, image_size: int | None = None) -> dict[str, Any]:
    """The data-config part of timm's pretrained config for ``architecture``, at ``image_size`` if given."""
    pretrained_cfg = get_pretrained_cfg(architecture)
    if pretrained_cfg is None:
        raise HfnlpError(f"unknown timm backbone {architecture!r} (see timm.list_models())")
    values = pretrained_cfg.to_dict()
    data_config = {key: values[key] for key in _DATA_CONFIG_KEYS if values.get(key) is not None}
    if image_size:
        data_config["input_size"] = (data_config.get("input_size", (3,))[0], image_size, image_size)
    return data_config


def build_image_model(config: ImageClassifierConfig) -> ImageClassifierForImageClassification:
    """A new classifier: the backbone's pretrained weights (``config.weights`` file, or timm Hub / packaged
    weights when ``config.pretrained``) or timm's own initialisation, and a new head with small weights
    (normal, std ``config.initializer_range``; zero bias), so training starts from near-uniform predictions."""
    model = ImageClassifierForImageClassification(config)
    backbone = create_backbone(
        config.architecture,
        pretrained=config.pretrained,
        weights=config.weights,
        num_classes=config.num_labels,
        **(config.model_args or {}),
    )
    model.timm_model.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        for parameter in head_parameters(model):
            if parameter.ndim > 1:
                parameter.normal_(0.0, config.initializer_range)
            else:
                parameter.zero_()
    return model


def image_processor_for(config: ImageClassifierConfig) -> TimmWrapperImageProcessor:
    """The image processor that ``pipeline`` loads from the saved ``config.json``: its ``val_transforms`` are
    the evaluation transform and its ``data_config`` feeds the training augmentation."""
    return TimmWrapperImageProcessor(pretrained_cfg=config.pretrained_cfg, architecture=config.architecture)


def head_parameters(model: ImageClassifierForImageClassification) -> list[torch.nn.Parameter]:
    """The new classification head's parameters."""
    return list(model.timm_model.get_classifier().parameters())


def fine_tuning_param_groups(
    model: ImageClassifierForImageClassification, learning_rate: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at ``learning_rate × config.head_lr_multiplier``, the backbone at
    ``learning_rate`` (scaled down layer by layer with ``config.layer_decay``); no weight decay on biases and
    norms (timm's grouping).

    Every parameter is included, frozen or not, so that unfreezing later needs no new optimizer.
    """
    config = model.config
    timm_model = model.timm_model
    no_decay = timm_model.no_weight_decay() if hasattr(timm_model, "no_weight_decay") else ()
    if config.layer_decay:
        groups = param_groups_layer_decay(
            timm_model, weight_decay=weight_decay, no_weight_decay_list=no_decay, layer_decay=config.layer_decay
        )
    else:
        groups = param_groups_weight_decay(timm_model, weight_decay=weight_decay, no_weight_decay_list=no_decay)
    head = {id(p) for p in head_parameters(model)}
    result = []
    for group in groups:
        for in_head in (False, True):
            params = [p for p in group["params"] if (id(p) in head) == in_head]
            if params:
                scale = config.head_lr_multiplier if in_head else group.get("lr_scale", 1.0)
                result.append({"params": params, "weight_decay": group["weight_decay"], "lr": learning_rate * scale})
    return result


def set_backbone_trainable(model: ImageClassifierForImageClassification, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze every parameter except the head's."""
    head = {id(p) for p in head_parameters(model)}
    for parameter in model.parameters():
        if id(parameter) not in head:
            parameter.requires_grad_(trainable)


class FreezeBackboneCallback(TrainerCallback):
    """Trains only the head for the first ``epochs`` epochs, then the whole model (also right after a resume)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.frozen: bool | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._apply(state, kwargs["model"])

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._apply(state, kwargs["model"])

    def _apply(self, state: TrainerState, model: ImageClassifierForImageClassification) -> None:
        frozen = math.floor((state.epoch or 0.0) + 1e-6) < self.epochs
        if frozen != self.frozen:
            set_backbone_trainable(model, not frozen)
            logger.info("backbone %s from epoch %.0f", "frozen" if frozen else "unfrozen", (state.epoch or 0.0) + 1)
            self.frozen = frozen


class ImageClassificationTrainer(LengthBucketingTrainer):
    """``Trainer`` with the fine-tuning parameter groups and, when given ``mixup``, mixup / cutmix applied to
    training batches (the model's loss takes the resulting soft targets)."""

    def __init__(self, *args: Any, mixup: Mixup | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mixup = mixup
        if mixup is not None:
            # the smoothing is already in mixup's soft targets; Trainer's smoother only takes class indices
            self.label_smoother = None

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """The optimizer of ``args.optim`` over :func:`fine_tuning_param_groups`."""
        if self.optimizer is None:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
            groups = fine_tuning_param_groups(self.model, self.args.learning_rate, self.args.weight_decay)
            self.optimizer_cls_and_kwargs = (optimizer_cls, {**optimizer_kwargs, "params": groups})
        return super().create_optimizer(model)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """Mix training batches (never evaluation ones) before the usual loss."""
        if self.mixup is not None and model.training:
            inputs = dict(inputs)
            inputs["pixel_values"], inputs["labels"] = mix_batch(self.mixup, inputs["pixel_values"], inputs["labels"])
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)


register_task(TaskSpec(name=TASK, data_config=ImageDataConfig, tokenizer_config=None, run=run_image_classification))
