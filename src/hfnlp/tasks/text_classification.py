"""Text classification: sentiment of reviews, topic of news titles, with RNN / CNN / fastText-style models.

The tokenizer keys a recipe leaves out are filled from the train split by :mod:`hfnlp.tasks.text_defaults`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import Column, Dataset, DatasetDict
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from hfnlp.data.text import TextDataConfig, load_text_classification
from hfnlp.errors import RecipeError
from hfnlp.models import FAMILIES
from hfnlp.pipelines.loading import TEXT_CLASSIFIER
from hfnlp.recipe import Recipe
from hfnlp.tasks import register_task
from hfnlp.tasks.base import ClassificationTask
from hfnlp.tasks.text_defaults import (
    UNITS,
    data_aware_defaults,
    max_length_from_tokenizer,
    record_filled_recipe,
    reuse_saved_tokenizer_values,
    truncation_warning,
)
from hfnlp.tokenization.text import (
    FALLBACK_DEFAULTS,
    MEASURED_LENGTH,
    TextTokenizerConfig,
    char_pipeline,
    cut_to_token_budget,
    ids_encoder,
    load_saved_tokenizer,
    measuring_budget,
    save_tokenizer,
    texts_fingerprint,
    token_budget,
    token_lengths,
    train_tokenizer,
)
from hfnlp.tokenization.vectors import load_pretrained_vectors
from hfnlp.training.batching import TokenIdsCollator
from hfnlp.training.run import FitPlan, RunOptions, TaskData
from hfnlp.training.run_folder import RunFolder

logger = logging.getLogger(__name__)
MAX_EXAMPLE_CHARS = 300  # long reviews (IMDb) are cut so that the card's snippet stays readable
NUM_EXAMPLES = 3
_UNTRUNCATED = "hfnlp_untruncated_length"  # a column of the measured split while it is encoded, then removed


class TextClassification(ClassificationTask):
    """Texts → one label each; any family registered for sequence classification (TextRNN, TextCNN, fastText)."""

    name = "text-classification"
    pipeline_tag = "text-classification"
    auto_class = TEXT_CLASSIFIER.auto_class
    data_config = TextDataConfig
    tokenizer_config = TextTokenizerConfig
    set_by_run = ("vocab_size", "pad_token_id", "num_labels", "id2label", "label2id")

    def run(self, recipe: Recipe, options: RunOptions) -> dict[str, Any]:
        reuse_saved_tokenizer_values(recipe, RunFolder(recipe.output_dir), resume=options.resume)
        return super().run(recipe, options)

    def load_data(self, recipe: Recipe) -> TaskData:
        data = load_text_classification(recipe.data, seed=recipe.seed)
        logger.info("splits: %s; skipped bad rows: %s", {k: len(v) for k, v in data.splits.items()}, data.skipped_rows)
        return TaskData(data.splits, data.label_names, {"skipped_rows": data.skipped_rows})

    def prepare_processor(self, recipe: Recipe, run: RunFolder, data: TaskData) -> PreTrainedTokenizerBase:
        train = data.splits["train"]
        filled = data_aware_defaults(recipe.tokenizer, train, data.label_names or [], seed=recipe.seed)
        recipe.tokenizer = dataclasses.replace(recipe.tokenizer, **{key: value for key, (value, _) in filled.items()})
        tokenizer = tokenizer_for_run(run, recipe.tokenizer, train["text"])
        if recipe.tokenizer.max_length is None:  # a level the profile does not count in: the tokenizer's own lengths
            filled["max_length"] = max_length_from_tokenizer(tokenizer, train["text"], str(recipe.tokenizer.level))
            recipe.tokenizer.max_length = tokenizer.model_max_length = filled["max_length"][0]
        for key, (value, reason) in filled.items():
            logger.info("tokenizer.%s: %s, chosen from the train split: %s", key, value, reason)
        if filled:
            record_filled_recipe(run, recipe)
        return tokenizer

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
        config = recipe.tokenizer.resolved()
        encoded, train_lengths = encode_splits_measured(data.splits, processor, config.max_length)
        specials = processor.num_special_tokens_to_add()
        if warning := truncation_warning(train_lengths, config.max_length, UNITS[config.level], specials):
            logger.warning(warning)
        collator = token_ids_collator(processor)
        if hasattr(model, "learn_from_training_data"):  # e.g. fastText's n-gram vocabulary and TF-IDF weights
            train_ids = list(encoded["train"]["input_ids"])
            special = set(processor.all_special_ids)
            tokens = processor.convert_ids_to_tokens(list(range(len(processor))))
            model.learn_from_training_data(
                train_ids,
                labels=list(encoded["train"]["label"]),
                vocabulary=[None if i in special else token for i, token in enumerate(tokens)],
            )
            if isinstance(collator, TokenIdsCollator) and (bags := model.text_bags(train_ids)) is not None:
                encoded["train"] = with_bags(encoded["train"], *bags)
        if isinstance(collator, TokenIdsCollator):
            # It builds the masks itself: an all-ones column would be read from Arrow into lists at every batch,
            # then dropped (measured: 2.9 against 1.7 ms a batch of 512 titles).
            encoded = encoded.remove_columns("attention_mask")
        return FitPlan(
            splits=encoded,
            data_collator=collator,
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
    logger.info("trained a %s tokenizer with %d tokens", config.resolved().level, len(tokenizer))
    return tokenizer


def encode_splits(splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int | None) -> DatasetDict:
    """Tokenize every split (truncated to ``max_length``, not padded) and add a ``length`` column.

    The ids are those of ``tokenizer(texts, truncation=True, max_length=max_length)``: a char-level tokenizer gets them
    by table lookup (:mod:`hfnlp.tokenization.char_level`), others batched through ``datasets.map``. ``max_length``
    None: the fallback of :data:`~hfnlp.tokenization.text.FALLBACK_DEFAULTS`.
    """
    return encode_splits_measured(splits, tokenizer, max_length, measured=None)[0]


def encode_splits_measured(
    splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int | None, measured: str | None = "train"
) -> tuple[DatasetDict, np.ndarray]:
    """:func:`encode_splits`, and how many tokens each text of split ``measured`` has untruncated (special tokens left
    out), in row order (an empty array if ``measured`` is None), from the same tokenization where it can.

    Lengths are counted on texts cut to :func:`~hfnlp.tokenization.text.measuring_budget` characters, so that a
    runaway row costs no more than that. The measured split is tokenized untruncated, then cut to ``max_length``
    tokens: the ids of truncation unless its first ``max_length`` tokens span more than ``token_budget(max_length)``
    characters. A tokenizer that adds special tokens tokenizes it a second time, to count.
    """
    max_length = FALLBACK_DEFAULTS["max_length"] if max_length is None else max_length
    pipeline = char_pipeline(tokenizer)
    if pipeline is not None:
        measure = None if measured is None else (measured, measuring_budget(max_length))
        encoded, lengths = pipeline.encode_splits(
            splits, tokenizer, max_length=max_length, max_chars=token_budget(max_length), measure=measure
        )
        return encoded, np.zeros(0, dtype=np.int64) if lengths is None else lengths

    encode_ids = ids_encoder(tokenizer, max_length)
    # Untruncated ids cut to max_length tokens are the truncated ids, and count the tokens too: one tokenization.
    encode_whole = ids_encoder(tokenizer, None) if not tokenizer.num_special_tokens_to_add() else None
    kept = slice(None, max_length) if tokenizer.truncation_side == "right" else slice(-max_length, None)
    measured_chars = max(max_length, MEASURED_LENGTH)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = cut_to_token_budget(batch["text"], max_length)
        if encode_ids is None:
            encoded = tokenizer(texts, truncation=True, max_length=max_length)
        else:
            ids = encode_ids(texts)
            encoded = {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    def encode_and_measure(batch: dict[str, list]) -> dict[str, list]:
        texts = cut_to_token_budget(batch["text"], measured_chars)
        if encode_whole is None:
            encoded = encode(batch)
            encoded[_UNTRUNCATED] = token_lengths(tokenizer, texts).tolist()
            return encoded
        whole = encode_whole(texts)
        ids = [row[kept] for row in whole]
        return {
            "input_ids": ids,
            "attention_mask": [[1] * len(row) for row in ids],
            "length": [len(row) for row in ids],
            _UNTRUNCATED: [len(row) for row in whole],
        }

    options = {"batched": True, "batch_size": 2000, "remove_columns": ["text"], "desc": "tokenizing"}
    encoded = DatasetDict(
        {
            name: split.map(encode_and_measure if name == measured else encode, **options)
            for name, split in splits.items()
        }
    )
    if measured is None:
        return encoded, np.zeros(0, dtype=np.int64)
    lengths = np.asarray(encoded[measured][_UNTRUNCATED][:], dtype=np.int64)
    encoded[measured] = encoded[measured].remove_columns([_UNTRUNCATED])
    return encoded, lengths


def with_bags(split: Dataset, lengths: torch.Tensor, features: torch.Tensor, counts: torch.Tensor) -> Dataset:
    """``split`` with each text's bag (``FastTextForSequenceClassification.text_bags``: ``lengths`` features per
    text, then all features and counts) as the list columns ``bag_features`` and ``bag_counts``.

    A bag model's training then reads each text's distinct n-grams and their counts instead of finding them again
    in every epoch (measured on THUCNews: a fifth of a training step went to hashing, looking up and counting them).
    """
    offsets = pa.array(np.concatenate([[0], lengths.numpy().cumsum()]), type=pa.int32())
    for name, values in (("bag_features", features), ("bag_counts", counts)):
        split = split.add_column(name, pa.ListArray.from_arrays(offsets, pa.array(values.numpy(), type=pa.int32())))
    return split


def token_ids_collator(tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict]], dict]:
    """The training batches' collator: :class:`~hfnlp.training.batching.TokenIdsCollator` for hfnlp's own tokenizers
    (rows of ids and an all-ones mask, padded on the right), ``DataCollatorWithPadding`` for any other."""
    if ids_encoder(tokenizer, None) is not None and tokenizer.padding_side == "right":
        return TokenIdsCollator(tokenizer.pad_token_id)
    return DataCollatorWithPadding(tokenizer)


def build_text_model(recipe: Recipe, tokenizer: PreTrainedTokenizerBase, label_names: list[str]) -> PreTrainedModel:
    """A new model of the recipe's family, sized for the tokenizer and labels, as its config describes.

    Pretrained vectors named by ``tokenizer.pretrained_vectors`` are copied into the embedding.
    """
    family = FAMILIES[recipe.model["type"]]
    params = family.training_parameters(recipe.model)  # the final folder's storage is applied when it is written
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
