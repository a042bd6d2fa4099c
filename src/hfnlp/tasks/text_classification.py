"""Text classification: sentiment of reviews, topic of news titles, with RNN / CNN / fastText-style models."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from datasets import Column, DatasetDict
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from hfnlp.data.text import TextDataConfig, load_text_classification
from hfnlp.errors import RecipeError
from hfnlp.models import FAMILIES
from hfnlp.recipe import Recipe
from hfnlp.tasks import register_task
from hfnlp.tasks.base import ClassificationTask
from hfnlp.tokenization.text import (
    TextTokenizerConfig,
    char_pipeline,
    cut_to_token_budget,
    ids_encoder,
    load_saved_tokenizer,
    save_tokenizer,
    texts_fingerprint,
    token_budget,
    train_tokenizer,
)
from hfnlp.tokenization.vectors import load_pretrained_vectors
from hfnlp.training.run import FitPlan, TaskData
from hfnlp.training.run_folder import RunFolder

logger = logging.getLogger(__name__)
MAX_EXAMPLE_CHARS = 300  # long reviews (IMDb) are cut so that the card's snippet stays readable
NUM_EXAMPLES = 3


class TextClassification(ClassificationTask):
    """Texts → one label each; any family registered for sequence classification (TextRNN, TextCNN, fastText)."""

    name = "text-classification"
    pipeline_tag = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    data_config = TextDataConfig
    tokenizer_config = TextTokenizerConfig
    set_by_run = ("vocab_size", "pad_token_id", "num_labels", "id2label", "label2id")

    def load_data(self, recipe: Recipe) -> TaskData:
        data = load_text_classification(recipe.data, seed=recipe.seed)
        logger.info("splits: %s; skipped bad rows: %s", {k: len(v) for k, v in data.splits.items()}, data.skipped_rows)
        return TaskData(data.splits, data.label_names, {"skipped_rows": data.skipped_rows})

    def prepare_processor(self, recipe: Recipe, run: RunFolder, data: TaskData) -> PreTrainedTokenizerBase:
        return tokenizer_for_run(run, recipe.tokenizer, data.splits["train"]["text"])

    def load_processor(self, recipe: Recipe, run: RunFolder) -> PreTrainedTokenizerBase:
        return load_saved_tokenizer(run.tokenizer_dir, recipe.tokenizer)

    def build_model(self, recipe: Recipe, data: TaskData, processor: PreTrainedTokenizerBase) -> PreTrainedModel:
        return build_text_model(recipe, processor, data.label_names)

    def plan_fit(
        self,
        recipe: Recipe,
        run: RunFolder,
        data: TaskData,
        processor: PreTrainedTokenizerBase,
        model: PreTrainedModel,
    ) -> FitPlan:
        encoded = encode_splits(data.splits, processor, recipe.tokenizer.max_length)
        if hasattr(model, "learn_from_training_data"):  # e.g. fastText's n-gram vocabulary and TF-IDF weights
            model.learn_from_training_data(list(encoded["train"]["input_ids"]))
        return FitPlan(
            splits=encoded,
            data_collator=DataCollatorWithPadding(processor),
            processing_class=processor,
            compute_metrics=self.compute_metrics(data),
        )

    def card_examples(self, run: RunFolder, data: TaskData) -> list[str]:
        return [text[:MAX_EXAMPLE_CHARS] for text in data.splits["test"]["text"][:NUM_EXAMPLES]]

    def export_onnx(self, model_dir: Path) -> Any:
        from hfnlp.models.onnx_export import export_onnx

        return export_onnx(model_dir)


def tokenizer_for_run(
    run: RunFolder, config: TextTokenizerConfig, train_texts: Sequence[str] | Column
) -> PreTrainedTokenizerBase:
    """The run's tokenizer: trained once and saved in the run folder with a fingerprint of ``train_texts``; loaded
    from there on resume or re-run, but only if the training texts are still the ones it was trained on."""
    fingerprint = texts_fingerprint(train_texts)
    if run.tokenizer_dir.exists():
        tokenizer = load_saved_tokenizer(run.tokenizer_dir, config, train_texts_fingerprint=fingerprint)
        logger.info("reusing the tokenizer saved in %s (same settings and training texts)", run.tokenizer_dir)
        return tokenizer
    tokenizer = train_tokenizer(config, train_texts, num_texts=len(train_texts))
    save_tokenizer(tokenizer, config, run.tokenizer_dir, train_texts_fingerprint=fingerprint)
    logger.info("trained a %s tokenizer with %d tokens", config.level, len(tokenizer))
    return tokenizer


def encode_splits(splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> DatasetDict:
    """Tokenize every split (truncated to ``max_length``, not padded) and add a ``length`` column.

    The ids are those of ``tokenizer(texts, truncation=True, max_length=max_length)``: a char-level tokenizer gets them
    by table lookup (:mod:`hfnlp.tokenization.char_level`), others batched through ``datasets.map``.
    """
    pipeline = char_pipeline(tokenizer)
    if pipeline is not None:
        return pipeline.encode_splits(splits, tokenizer, max_length=max_length, max_chars=token_budget(max_length))

    encode_ids = ids_encoder(tokenizer, max_length)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = cut_to_token_budget(batch["text"], max_length)
        if encode_ids is None:
            encoded = tokenizer(texts, truncation=True, max_length=max_length)
        else:
            ids = encode_ids(texts)
            encoded = {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return splits.map(encode, batched=True, batch_size=2000, remove_columns=["text"], desc="tokenizing")


def build_text_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> PreTrainedModel:
    """A new model of the recipe's family, sized for the tokenizer and labels, as its config describes.

    Pretrained vectors named by ``tokenizer.pretrained_vectors`` are copied into the embedding.
    """
    params = {key: value for key, value in recipe.model.items() if key != "type"}
    family = FAMILIES[recipe.model["type"]]
    vectors = None
    if recipe.tokenizer.pretrained_vectors:
        vectors, coverage = load_pretrained_vectors(
            recipe.tokenizer.pretrained_vectors,
            tokenizer.get_vocab(),
            vocab_path=recipe.tokenizer.pretrained_vectors_vocab,
            lowercase=recipe.tokenizer.lowercase,
        )
        logger.info("pretrained vectors: %s", coverage)
        if params.setdefault("embedding_dim", vectors.shape[1]) != vectors.shape[1]:
            raise RecipeError(
                f"model.embedding_dim is {params['embedding_dim']} but the pretrained vectors have {vectors.shape[1]}"
            )
    config = family.config_class(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        **params,
    )
    model = family.build_model(config)
    if vectors is not None:
        with torch.no_grad():
            model.get_input_embeddings().weight.copy_(vectors)
    return model


register_task(TextClassification())
