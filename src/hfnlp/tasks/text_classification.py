"""Text classification: sentiment of reviews, topic of news titles, with RNN / CNN / fastText-style models."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from datasets import DatasetDict
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase, set_seed

from hfnlp.data.text import TextDataConfig, load_text_classification
from hfnlp.errors import RecipeError
from hfnlp.models import FAMILIES
from hfnlp.models.initialization import initialize_weights
from hfnlp.recipe import Recipe, TaskSpec, register_task
from hfnlp.tokenization.text import (
    TextTokenizerConfig,
    char_pipeline,
    cut_to_token_budget,
    ids_encoder,
    load_saved_tokenizer,
    save_tokenizer,
    token_budget,
    train_tokenizer,
)
from hfnlp.tokenization.vectors import load_pretrained_vectors
from hfnlp.training.engine import RunFolder, RunOptions, fit, save_final_model, write_metrics
from hfnlp.training.reports import (
    classification_metrics,
    classification_scores,
    plot_training_curves,
    write_classification_report,
)

logger = logging.getLogger(__name__)
TASK = "text-classification"
_SET_BY_TOKENIZER = ("vocab_size", "pad_token_id", "num_labels", "id2label", "label2id")


def run_text_classification(recipe: Recipe, options: RunOptions) -> dict[str, Any]:
    """Train, evaluate on the test split, write reports and save the final model; return ``metrics.json``."""
    started = time.time()
    run = RunFolder(recipe.output_dir)
    # Under `accelerate launch` the main process prepares the folder and trains the tokenizer; the others wait,
    # then find and reuse what it wrote.
    with PartialState().main_process_first():
        resume_from = run.prepare(recipe, resume=options.resume)
        set_seed(recipe.seed)
        data = load_text_classification(recipe.data, seed=recipe.seed)
        tokenizer = tokenizer_for_run(run, recipe.tokenizer, data.splits["train"]["text"])
    logger.info("splits: %s; skipped bad rows: %s", {k: len(v) for k, v in data.splits.items()}, data.skipped_rows)
    encoded = encode_splits(data.splits, tokenizer, recipe.tokenizer.max_length)
    model = build_text_model(recipe, tokenizer, data.label_names)
    if hasattr(model, "learn_from_training_data"):  # e.g. fastText's n-gram vocabulary and TF-IDF weights
        model.learn_from_training_data(list(encoded["train"]["input_ids"]))
    trainer = fit(
        recipe,
        run,
        model=model,
        splits=encoded,
        resume_from=resume_from,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=classification_metrics(len(data.label_names)),
        callbacks=options.callbacks,
    )
    test = trainer.predict(encoded["test"], metric_key_prefix="test")  # gathered from every process
    if trainer.is_world_process_zero():
        scores = classification_scores(np.argmax(test.predictions, axis=-1), test.label_ids, data.label_names)
        write_classification_report(run.path, scores, data.label_names)
        plot_training_curves(trainer.state.log_history, run.path / "curves.png")
    save_final_model(trainer, run)
    summary = write_metrics(run, trainer, test.metrics, started)
    summary["skipped_rows"] = data.skipped_rows
    return summary


def tokenizer_for_run(run: RunFolder, config: TextTokenizerConfig, train_texts: list[str]) -> PreTrainedTokenizerBase:
    """The run's tokenizer: loaded from the run folder if it exists (resume), else trained once and saved."""
    if run.tokenizer_dir.exists():
        logger.info("reusing the tokenizer saved in %s", run.tokenizer_dir)
        return load_saved_tokenizer(run.tokenizer_dir, config)
    tokenizer = train_tokenizer(config, train_texts, num_texts=len(train_texts))
    save_tokenizer(tokenizer, config, run.tokenizer_dir)
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
    """A freshly initialised model of the recipe's family, sized for the tokenizer and labels.

    Pretrained vectors named by ``tokenizer.pretrained_vectors`` are copied into the embedding.
    """
    params = {key: value for key, value in recipe.model.items() if key != "type"}
    clashing = [key for key in _SET_BY_TOKENIZER if key in params]
    if clashing:
        raise RecipeError(f"model.{clashing[0]} is set from the tokenizer and labels; remove it from the recipe")
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
    model = family.model_class(config)
    initialize_weights(model, config.initializer, include_embeddings=config.initialize_embeddings)
    if vectors is not None:
        with torch.no_grad():
            model.get_input_embeddings().weight.copy_(vectors)
    return model


register_task(
    TaskSpec(name=TASK, data_config=TextDataConfig, tokenizer_config=TextTokenizerConfig, run=run_text_classification)
)
