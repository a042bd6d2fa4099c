"""Image captioning: a timm CNN encoder and an attention LSTM decoder, trained on every caption of every image.

The run: validated image/caption splits → the word tokenizer (trained once, reused on resume) → the
captioner with its pretrained encoder → (frozen encoder) feature maps computed once into a memory-mapped
file → teacher-forced training with ``transformers.Trainer``, BLEU/CIDEr-D/ROUGE-L with beam search on the
validation images after every evaluation → final scores on validation and test with beam search, sample
captions, curves, and the model folder (weights, tokenizer, image processor, generation and pipeline code).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from datasets import DatasetDict, concatenate_datasets
from transformers import (
    AutoImageProcessor,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    ViTImageProcessor,
)
from transformers.image_utils import PILImageResampling

from hfnlp.data.captions import CaptionDataConfig, all_captions, load_caption_data
from hfnlp.data.images import open_image
from hfnlp.errors import RecipeError
from hfnlp.metrics import load_metric
from hfnlp.models import FAMILIES
from hfnlp.models.backbones import channels_last
from hfnlp.models.captioner import CaptionerConfig, ImageCaptioner
from hfnlp.pipelines.image_captioning import TASK as PIPELINE_TASK
from hfnlp.pipelines.image_captioning import ImageCaptioningPipeline
from hfnlp.pipelines.loading import CAPTIONER
from hfnlp.recipe import Recipe
from hfnlp.tasks import register_task
from hfnlp.tasks.base import Task, timm_base_model
from hfnlp.tokenization.captions import CaptionTokenizerConfig, encode_captions, train_caption_tokenizer
from hfnlp.tokenization.text import check_saved_tokenizer, load_saved_tokenizer, save_tokenizer, texts_fingerprint
from hfnlp.training.arguments import autocast_dtype
from hfnlp.training.run import Evaluation, FitPlan, TaskData
from hfnlp.training.run_folder import EXAMPLE_IMAGE, FEATURES_DIR, SAMPLES, RunFolder
from hfnlp.training.trainer import HfnlpTrainer

logger = logging.getLogger(__name__)
CAPTION_METRICS = ("bleu", "cider", "rouge_l")
MAX_SAMPLE_CAPTIONS = 5  # captions shown in the model card
_RESAMPLING = {"bilinear": PILImageResampling.BILINEAR, "bicubic": PILImageResampling.BICUBIC}


@dataclass
class CaptionProcessors:
    """The captioner's two processors, both trained or resolved once per run and saved in its tokenizer folder."""

    tokenizer: PreTrainedTokenizerBase
    image_processor: ViTImageProcessor


class ImageCaptioning(Task):
    """Images → captions: a timm CNN encoder and an attention LSTM decoder, trained on every caption of every
    image, scored with beam search (BLEU, CIDEr-D, ROUGE-L) on the validation images after every evaluation."""

    name = "image-captioning"
    # transformers 5 has no image-to-text pipeline any more; image-text-to-text is its captioning task (and the tag of
    # AutoModelForImageTextToText models). The card's snippet uses the folder's own pipeline, never this tag.
    pipeline_tag = "image-text-to-text"
    auto_class = CAPTIONER.auto_class
    data_config = CaptionDataConfig
    tokenizer_config = CaptionTokenizerConfig
    set_by_run = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id")

    def check_recipe(self, recipe: Recipe) -> None:
        """The base checks, and one spelling of label smoothing: the model applies ``training.label_smoothing_factor``
        to its own loss (``config.label_smoothing``)."""
        super().check_recipe(recipe)
        if "label_smoothing" in recipe.model:
            raise RecipeError("model.label_smoothing is set from training.label_smoothing_factor; set that instead")

    def metric_names(self, recipe: Recipe) -> set[str]:
        """The caption scores every evaluation adds (see :class:`CaptionEvaluator`), and the evaluation loss."""
        return {*(f"bleu_{order}" for order in range(1, 5)), "cider", "rouge_l", "loss"}

    def load_data(self, recipe: Recipe) -> TaskData:
        data = load_caption_data(recipe.data, seed=recipe.seed)
        logger.info(
            "images per split: %s; skipped bad rows: %s", {k: len(v) for k, v in data.splits.items()}, data.skipped_rows
        )
        return TaskData(data.splits, counts={"skipped_rows": data.skipped_rows})

    def prepare_processor(self, recipe: Recipe, run: RunFolder, data: TaskData) -> CaptionProcessors:
        captions = list(all_captions(data.splits["train"]))
        fingerprint = texts_fingerprint(captions)
        if (run.tokenizer_dir / "tokenizer.json").exists():
            # Reused only if trained on these very captions: another vocabulary would silently scramble ids.
            check_saved_tokenizer(run.tokenizer_dir, recipe.tokenizer, train_texts_fingerprint=fingerprint)
            logger.info("reusing the tokenizer and image processor saved in %s", run.tokenizer_dir)
            return self.load_processor(recipe, run)
        tokenizer = train_caption_tokenizer(recipe.tokenizer, captions)
        save_tokenizer(tokenizer, recipe.tokenizer, run.tokenizer_dir, train_texts_fingerprint=fingerprint)
        logger.info("trained a caption vocabulary of %d words", len(tokenizer))
        encoder_name = recipe.model.get("encoder_name", CaptionerConfig.encoder_name)
        image_processor = caption_image_processor(encoder_name, recipe.data.image_size)
        image_processor.save_pretrained(run.tokenizer_dir)
        return CaptionProcessors(tokenizer, image_processor)

    def load_processor(self, recipe: Recipe, run: RunFolder) -> CaptionProcessors:
        return CaptionProcessors(
            load_saved_tokenizer(run.tokenizer_dir, recipe.tokenizer),
            AutoImageProcessor.from_pretrained(run.tokenizer_dir),
        )

    def build_model(self, recipe: Recipe, data: TaskData, processor: CaptionProcessors) -> PreTrainedModel:
        tokenizer = processor.tokenizer
        params = {key: value for key, value in recipe.model.items() if key != "type"}
        params.setdefault("max_caption_length", recipe.tokenizer.max_length)  # captions are trained up to that
        params["label_smoothing"] = recipe.training.label_smoothing_factor  # the model smooths its own loss
        config = CaptionerConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **params,
        )
        return channels_last(FAMILIES[recipe.model["type"]].build_model(config))

    def plan_fit(
        self, recipe: Recipe, run: RunFolder, data: TaskData, processor: CaptionProcessors, model: PreTrainedModel
    ) -> FitPlan:
        images = CaptionImages(data.splits, processor.image_processor)
        if recipe.data.cache_features and model.encoder_is_frozen:
            images.cache_features(model, run.file(FEATURES_DIR), autocast_dtype(recipe.training.mixed_precision))
        evaluator = CaptionEvaluator(
            images, data.splits, processor.tokenizer, batch_size=recipe.training.per_device_eval_batch_size
        )
        return FitPlan(
            splits=encode_captions(data.splits, processor.tokenizer, images.offsets),
            data_collator=CaptionCollator(processor.tokenizer, images),
            processing_class=processor.tokenizer,
            trainer_class=CaptioningTrainer,
            trainer_kwargs={"evaluator": evaluator},
        )

    def evaluate(self, trainer: Trainer, plan: FitPlan, data: TaskData) -> Evaluation:
        """Beam-search captions of the validation and test images, scored against all their references."""
        evaluator: CaptionEvaluator = plan.trainer_kwargs["evaluator"]
        results = {
            split: evaluator.evaluate(trainer.model, split) for split in ("validation", "test") if split in data.splits
        }
        test_scores = results["test"][0] if "test" in results else {}
        summary = {
            "validation": results["validation"][0] if "validation" in results else {},
            "num_beams": trainer.model.generation_config.num_beams,
            "cached_features": evaluator.images.features is not None,
        }
        return Evaluation({f"test_{k}": v for k, v in test_scores.items()}, summary, predictions=results)

    def write_reports(self, recipe: Recipe, run: RunFolder, evaluation: Evaluation, data: TaskData) -> None:
        """``samples.jsonl``: generated captions with their references."""
        write_samples(run.file(SAMPLES), evaluation.predictions, data.splits, recipe.data.max_samples)

    def card_examples(self, run: RunFolder, data: TaskData) -> list[str]:
        split = data.splits["test"] if "test" in data.splits else data.splits["validation"]
        open_image(split[0]["image"]).save(run.file(EXAMPLE_IMAGE))
        return [EXAMPLE_IMAGE]

    def complete_model_folder(self, model: PreTrainedModel, processor: CaptionProcessors, folder: Path) -> None:
        """Weights, config (``auto_map``, ``custom_pipelines``), model and pipeline code, ``generation_config.json``,
        tokenizer and image processor."""
        captioner = ImageCaptioningPipeline(
            model=model,
            tokenizer=processor.tokenizer,
            image_processor=processor.image_processor,
            task=PIPELINE_TASK,
            device=model.device,
        )
        captioner.save_pretrained(folder)

    def card_context(self, run_dir: Path, model_dir: Path, final: bool) -> dict[str, Any]:
        generation = json.loads((model_dir / "generation_config.json").read_text(encoding="utf-8"))
        samples = _samples(run_dir) if final else []
        return {
            "generation": generation,
            "samples": ([r for r in samples if r["split"] == "test"] or samples)[:MAX_SAMPLE_CAPTIONS],
        }

    def card_texts(self, run_dir: Path, examples: list[str]) -> list[str]:
        return [reference for row in _samples(run_dir) for reference in row["references"]]

    def base_model(self, config: dict[str, Any]) -> str | None:
        """timm's pretrained encoder, when the captioner's encoder started from it."""
        return timm_base_model(
            config["encoder_name"], config.get("encoder_pretrained", False), config.get("encoder_weights")
        )

    def given_splits(self, data: Any) -> set[str] | None:
        """A caption file or image folder may hold its own splits (Karpathy JSON, Flickr8k lists, a split column):
        known only once read."""
        return super().given_splits(data) if data.hub or data.builtin else None


def _samples(run_dir: Path) -> list[dict[str, Any]]:
    path = RunFolder(run_dir).file(SAMPLES)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def caption_image_processor(encoder_name: str, image_size: int | None) -> ViTImageProcessor:
    """The image processor (resize, rescale, normalise) from the encoder's pretrained config (timm's
    ``resolve_data_config``).

    A stock ``ViTImageProcessor`` is used: it resizes the whole image without cropping (a centre crop would cut
    off objects near the border, which captions mention), and loads without any remote code.
    """
    pretrained_cfg = timm.models.get_pretrained_cfg(encoder_name)
    if pretrained_cfg is None:
        raise RecipeError(f"model.encoder_name: unknown timm model {encoder_name!r} (see timm.list_models())")
    data_config = timm.data.resolve_data_config(pretrained_cfg=pretrained_cfg.to_dict())
    height, width = (image_size, image_size) if image_size else data_config["input_size"][1:]
    return ViTImageProcessor(
        size={"height": height, "width": width},
        image_mean=list(data_config["mean"]),
        image_std=list(data_config["std"]),
        resample=_RESAMPLING.get(data_config["interpolation"], PILImageResampling.BILINEAR),
    )


class CaptionImages:
    """The images of every split behind one index (train first), given to the model as pixel values or as
    cached encoder feature maps."""

    def __init__(self, splits: DatasetDict, image_processor: ViTImageProcessor) -> None:
        self.offsets: dict[str, int] = {}
        parts = []
        for split in ("train", "validation", "test"):
            if split in splits:
                self.offsets[split] = sum(len(part) for part in parts)
                parts.append(splits[split].select_columns(["image"]))
        self.table = concatenate_datasets(parts)
        self.image_processor = image_processor
        self.features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.table)

    def pixel_values(self, indices: Sequence[int]) -> torch.Tensor:
        """Preprocessed images, shape (len(indices), 3, height, width)."""
        images = [open_image(self.table[int(i)]["image"]) for i in indices]
        return self.image_processor(images=images, return_tensors="pt")["pixel_values"]

    def model_inputs(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """``encoder_features`` from the cache when there is one, else ``pixel_values``."""
        if self.features is not None:
            return {"encoder_features": torch.from_numpy(np.ascontiguousarray(self.features[np.asarray(indices)]))}
        return {"pixel_values": self.pixel_values(indices)}

    def cache_features(
        self, model: ImageCaptioner, folder: Path, autocast: torch.dtype | None = None, batch_size: int = 32
    ) -> None:
        """Compute every image's feature map once with the (frozen) encoder into a memory-mapped float16 file
        ``folder/<key>.npy``; a finished file with the same key (encoder, preprocessing, precision, images) is
        reused. ``autocast`` is the training's mixed precision (``bfloat16``, ``float16``) or None for float32: the
        decoder trains on features rounded to float16 either way, and bf16 runs the encoder 2.6× faster on a CPU
        with native bf16 (``scripts/bench_vision.py --speed``; its features are within 5% of float32's in norm)."""
        key = self._cache_key(model, autocast)
        path, finished = folder / f"{key}.npy", folder / f"{key}.json"
        if not finished.exists():
            folder.mkdir(parents=True, exist_ok=True)
            started, cache = time.time(), None
            model.eval()
            device_type = model.device.type
            with torch.inference_mode(), torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
                for start in range(0, len(self), batch_size):
                    indices = range(start, min(start + batch_size, len(self)))
                    maps = model.encode_images(self.pixel_values(indices).to(model.device))
                    regions = maps.flatten(2).transpose(1, 2).float().cpu().numpy().astype(np.float16)
                    if cache is None:
                        shape = (len(self), *regions.shape[1:])
                        cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=shape)
                    cache[start : start + len(indices)] = regions
            cache.flush()
            finished.write_text(json.dumps({"images": len(self), "shape": list(cache.shape)}))
            logger.info("cached %s feature maps in %s (%.0f s)", cache.shape, path, time.time() - started)
        self.features = np.load(path, mmap_mode="r")

    def _cache_key(self, model: ImageCaptioner, autocast: torch.dtype | None) -> str:
        digest = hashlib.sha256()
        settings = {k: getattr(model.config, k) for k in ("encoder_name", "encoder_out_index", "encoder_weights")}
        settings["encoder_pretrained"] = model.config.encoder_pretrained
        settings["autocast"] = str(autocast)
        digest.update(json.dumps(settings, sort_keys=True).encode())
        digest.update(self.image_processor.to_json_string().encode())
        for row in self.table:
            image = row["image"]
            digest.update(hashlib.sha256(image["bytes"]).digest() if image.get("bytes") else image["path"].encode())
        return digest.hexdigest()[:16]


class CaptionCollator:
    """Pads captions (labels = ids with padding as -100) and adds the images' pixel values or cached features."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, images: CaptionImages) -> None:
        self.tokenizer = tokenizer
        self.images = images

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer.pad({"input_ids": [row["input_ids"] for row in rows]}, return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return {**batch, "labels": labels, **self.images.model_inputs([row["image_index"] for row in rows])}


class CaptionEvaluator:
    """Captions the images of a split with the model's generation settings and scores them against all their
    references: BLEU-1..4, CIDEr-D and ROUGE-L from :mod:`hfnlp.metrics`."""

    def __init__(
        self, images: CaptionImages, splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, batch_size: int
    ) -> None:
        self.images = images
        self.references = {split: splits[split]["captions"] for split in splits if split != "train"}
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.metrics = [load_metric(name) for name in CAPTION_METRICS]

    def generate(self, model: ImageCaptioner, split: str) -> list[str]:
        """One caption per image of ``split``, in order."""
        offset, count = self.images.offsets[split], len(self.references[split])
        predictions = []
        for start in range(0, count, self.batch_size):
            indices = range(offset + start, offset + min(start + self.batch_size, count))
            inputs = {name: value.to(model.device) for name, value in self.images.model_inputs(indices).items()}
            predictions.extend(self.tokenizer.batch_decode(model.generate(**inputs), skip_special_tokens=True))
        return predictions

    def evaluate(self, model: ImageCaptioner, split: str) -> tuple[dict[str, float], list[str]]:
        """``(scores, predictions)`` for the images of ``split``."""
        predictions = self.generate(model, split)
        scores: dict[str, float] = {}
        for metric in self.metrics:
            computed = metric.compute(predictions=predictions, references=self.references[split])
            scores.update({name: float(value) for name, value in computed.items()})
        return scores, predictions


class CaptioningTrainer(HfnlpTrainer):
    """``Trainer`` with caption scores in every evaluation and an optional separate encoder learning rate.

    Evaluation adds ``eval_bleu_1..4``, ``eval_cider`` and ``eval_rouge_l`` (beam search on the validation
    images) to the teacher-forced ``eval_loss``, so ``metric_for_best_model: bleu_4`` picks the best checkpoint.
    """

    def __init__(self, *args: Any, evaluator: CaptionEvaluator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.evaluator = evaluator
        # image_index is read by the collator, not by forward(): keep every column.
        self.args.remove_unused_columns = False
        # The model computes its loss (targets shifted inside, the attention penalty added) and smooths the words
        # itself (config.label_smoothing); Trainer's smoother would drop that loss and misalign the targets.
        self.label_smoother = None

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        # Per-word logits of every caption are not needed (and large): only the loss, then generated captions.
        output = super().evaluation_loop(
            dataloader,
            description,
            prediction_loss_only=True,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        scores, _ = self.evaluator.evaluate(self.model, "validation")
        output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in scores.items()})
        return output

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """Trainer's optimizer, with the encoder's parameters in their own groups at ``encoder_learning_rate``."""
        model = self.model if model is None else model
        encoder_lr = model.config.encoder_learning_rate
        if self.optimizer is None and encoder_lr is not None and not model.encoder_is_frozen:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            decay = set(self.get_decay_parameter_names(model))
            groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
            for name, parameter in model.named_parameters():
                if parameter.requires_grad:
                    groups.setdefault((name.startswith("encoder."), name in decay), []).append(parameter)
            self.optimizer = optimizer_cls(
                [
                    {
                        "params": parameters,
                        "weight_decay": self.args.weight_decay if decays else 0.0,
                        **({"lr": encoder_lr} if is_encoder else {}),
                    }
                    for (is_encoder, decays), parameters in groups.items()
                ],
                **optimizer_kwargs,
            )
        return super().create_optimizer(model)


def write_samples(
    path: Path, results: dict[str, tuple[dict[str, float], list[str]]], splits: DatasetDict, limit: int
) -> None:
    """Write the first ``limit`` generated captions of each scored split with their references, as JSON lines."""
    with path.open("w", encoding="utf-8") as handle:
        for split, (_, predictions) in results.items():
            rows = splits[split].select(range(min(limit, len(predictions))))
            for index, (row, prediction) in enumerate(zip(rows, predictions, strict=False)):
                image = row["image"].get("path") or f"{split}[{index}]"
                record = {"split": split, "image": image, "caption": prediction, "references": row["captions"]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


register_task(ImageCaptioning())
