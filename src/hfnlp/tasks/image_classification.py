"""Image classification: fine-tune a pretrained timm backbone with a new head (or train it from scratch),
with augmentation, a larger learning rate for the head, and optionally a frozen backbone for the first epochs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.data import Mixup
from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from transformers import (
    PreTrainedModel,
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
from hfnlp.data.images import open_image
from hfnlp.errors import RecipeError
from hfnlp.models import FAMILIES
from hfnlp.models.backbones import channels_last
from hfnlp.models.image_classifier import (
    CODE_FILES,
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    head_parameters,
    image_classifier_config,
    timm_wrapper_config,
)
from hfnlp.pipelines.loading import IMAGE_CLASSIFIER
from hfnlp.recipe import Recipe
from hfnlp.tasks import register_task
from hfnlp.tasks.base import ClassificationTask, timm_base_model
from hfnlp.training.atomic import write_text
from hfnlp.training.run import FitPlan, TaskData
from hfnlp.training.run_folder import EXAMPLE_IMAGE, RunFolder
from hfnlp.training.trainer import HfnlpTrainer

logger = logging.getLogger(__name__)


class ImageClassification(ClassificationTask):
    """Images → one label each: a pretrained timm backbone fine-tuned with a new head (or trained from scratch)."""

    name = "image-classification"
    pipeline_tag = "image-classification"
    auto_class = IMAGE_CLASSIFIER.auto_class
    data_config = ImageDataConfig

    def check_recipe(self, recipe: Recipe) -> None:
        super().check_recipe(recipe)
        if recipe.training.group_by_length:
            raise RecipeError("training.group_by_length: images have no length to group batches by; set it to false")

    def base_model(self, config: dict[str, Any]) -> str | None:
        """timm's pretrained backbone, when the model was fine-tuned from it."""
        return timm_base_model(config["architecture"], config.get("pretrained", False), config.get("weights"))

    def load_data(self, recipe: Recipe) -> TaskData:
        data = load_image_classification(recipe.data, seed=recipe.seed)
        counts = {"skipped_images": data.skipped_images, "ignored_files": data.ignored_files}
        logger.info("splits: %s; %s", {k: len(v) for k, v in data.splits.items()}, counts)
        return TaskData(data.splits, data.label_names, counts)

    def build_model(self, recipe: Recipe, data: TaskData, processor: None) -> PreTrainedModel:
        params = {key: value for key, value in recipe.model.items() if key != "type"}
        config = image_classifier_config(params, data.label_names)
        return channels_last(FAMILIES[recipe.model["type"]].build_model(config))

    def plan_fit(
        self, recipe: Recipe, run: RunFolder, data: TaskData, processor: None, model: PreTrainedModel
    ) -> FitPlan:
        image_processor = image_processor_for(model.config)
        augmentation = recipe.data.augmentation
        train_transform = build_train_transform(
            augmentation, image_processor.data_config, image_processor.val_transforms
        )
        splits = {
            name: TransformedImages(split, train_transform if name == "train" else image_processor.val_transforms)
            for name, split in data.splits.items()
        }
        freeze_epochs = model.config.freeze_backbone_epochs
        num_labels = len(data.label_names)
        return FitPlan(
            splits=splits,
            data_collator=default_data_collator,
            compute_metrics=self.compute_metrics(data),
            trainer_class=ImageClassificationTrainer,
            callbacks=[FreezeBackboneCallback(freeze_epochs)] if freeze_epochs else [],
            trainer_kwargs={
                "mixup": build_mixup(augmentation, num_labels, recipe.training.label_smoothing_factor),
            },
        )

    def complete_model_folder(self, model: PreTrainedModel, processor: None, folder: Path) -> None:
        """Make the saved folder a stock transformers ``timm_wrapper`` one (see
        :mod:`hfnlp.models.image_classifier.folder`): ``config.json`` rewritten, hfnlp's code files removed."""
        super().complete_model_folder(model, processor, folder)
        write_text(folder / "config.json", timm_wrapper_config(model.config).to_json_string(use_diff=True))
        for name in CODE_FILES:
            (folder / name).unlink(missing_ok=True)

    def card_examples(self, run: RunFolder, data: TaskData) -> list[str]:
        """The first test image, saved as ``example.png`` in the run folder (the card copies it into the model
        folder, so that the snippet, and a Hub widget, have a picture to run on)."""
        split = data.splits["test"] if "test" in data.splits else data.splits["validation"]
        open_image(split[0]["image"]).save(run.file(EXAMPLE_IMAGE))
        return [EXAMPLE_IMAGE]

    def card_texts(self, run_dir: Path, examples: list[str]) -> list[str]:
        """None: an image classifier's inputs have no language (its label names are not a language claim)."""
        return []

    def augmented_examples(
        self, recipe: Recipe, count: int, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, Any]]:
        """``count`` random training images after the recipe's augmentation (mixup / cutmix included), as the model
        sees them: ``(pixel_values, targets, label_names, data_config)``; targets are class probabilities."""
        set_seed(seed)
        data = load_image_classification(recipe.data, seed=recipe.seed, validate=False)
        train = data.splits["train"]
        params = {key: value for key, value in recipe.model.items() if key != "type"}
        processor = image_processor_for(image_classifier_config(params, data.label_names))
        augmentation = recipe.data.augmentation
        transform = build_train_transform(augmentation, processor.data_config, processor.val_transforms)
        rows = np.random.default_rng(seed).choice(len(train), size=count, replace=count > len(train))
        examples = TransformedImages(train.select(rows), transform)
        pixel_values = torch.stack([examples[i]["pixel_values"] for i in range(len(examples))])
        labels = torch.tensor(train.select(rows)["label"])
        targets = torch.nn.functional.one_hot(labels, len(data.label_names)).float()
        mixup = build_mixup(augmentation, len(data.label_names), recipe.training.label_smoothing_factor)
        if mixup is not None:
            pixel_values, targets = mix_batch(mixup, pixel_values, labels)
        return pixel_values, targets, data.label_names, processor.data_config


def image_processor_for(config: ImageClassifierConfig) -> TimmWrapperImageProcessor:
    """The image processor that ``pipeline`` loads from the saved ``config.json``: its ``val_transforms`` are
    the evaluation transform and its ``data_config`` feeds the training augmentation."""
    return TimmWrapperImageProcessor(pretrained_cfg=config.pretrained_cfg, architecture=config.architecture)


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


@dataclass(frozen=True)
class SoftTargetCrossEntropy:
    """The image classifier's loss, as Trainer's ``compute_loss_func``: cross-entropy against class indices (batch,),
    smoothed by ``label_smoothing``, or against class probabilities (batch, num_labels), which is what mixup / cutmix
    make (with the smoothing already in them).

    Summed and divided by ``num_items_in_batch`` when Trainer gives it (the images of the whole accumulated batch,
    which is what Trainer expects of a ``compute_loss_func``), else averaged over the batch.
    """

    label_smoothing: float = 0.0

    def __call__(
        self, outputs: Any, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        logits = outputs["logits"]
        labels = labels.to(logits.device)
        smoothing = self.label_smoothing if labels.ndim == 1 else 0.0
        if num_items_in_batch is None:
            return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=smoothing)
        total = torch.nn.functional.cross_entropy(logits, labels, reduction="sum", label_smoothing=smoothing)
        return total / num_items_in_batch


class ImageClassificationTrainer(HfnlpTrainer):
    """``Trainer`` with the fine-tuning parameter groups, the :class:`SoftTargetCrossEntropy` loss and, when given
    ``mixup``, mixup / cutmix applied to training batches."""

    def __init__(self, *args: Any, mixup: Mixup | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mixup = mixup
        # The model's own loss would read soft targets as multi-label ones; this loss also does the smoothing that
        # Trainer's label smoother (class indices only) would.
        self.compute_loss_func = SoftTargetCrossEntropy(self.args.label_smoothing_factor)
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
        """Mix training batches (never evaluation ones) before the loss."""
        if self.mixup is not None and model.training:
            inputs = dict(inputs)
            inputs["pixel_values"], inputs["labels"] = mix_batch(self.mixup, inputs["pixel_values"], inputs["labels"])
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)


register_task(ImageClassification())
