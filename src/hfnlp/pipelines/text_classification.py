"""Batched text-classification inference over a saved model folder, through ``transformers.pipeline``, and the
input files of ``hfnlp predict`` / ``hfnlp evaluate``.

``hfnlp predict`` loads what :func:`classify` needs with :func:`load_text_model` (no pipeline around it), imports
datasets (with pandas) only for a table file or labelled data, and checks a model folder without importing every
task (measured: 2 s for hfnlp.tasks, datasets included, once the model is loaded): one text predicted in 5.5 s
instead of 7.8-8.2 s. Skipping the pipeline itself saves nothing measurable: transformers' model loading imports
torchvision and ``torch._dynamo`` as its pipelines do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

import hfnlp.models  # noqa: F401  (registers hfnlp's families with the Auto classes)
from hfnlp.data.files import EXTENSION_FORMATS, read_lines, read_table
from hfnlp.errors import DataError, HfnlpError
from hfnlp.explain.attribution import explain_text
from hfnlp.pipelines.loading import TEXT_CLASSIFIER, check_model_folder, loading_errors, resolve_model_folder
from hfnlp.tokenization.text import cut_to_token_budget, ids_encoder, load_saved_tokenizer, padded_batch

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import Pipeline

INPUT_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class TextClassifier:
    """A loaded text classifier: what :func:`classify` reads of a pipeline (a ``text-classification`` pipeline
    works in its place)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def load_text_model(model: str | Path, trust_remote_code: bool = False) -> TextClassifier:
    """The model (in eval mode, on the GPU if there is one) and tokenizer of a saved hfnlp model folder, a run folder,
    or a Hub id, without a pipeline around them.

    Raises:
        HfnlpError: The folder is missing, incomplete or damaged, or holds no hfnlp text classifier.
    """
    folder = resolve_model_folder(model)
    check_model_folder(folder, TEXT_CLASSIFIER, trust_remote_code)
    with loading_errors(folder):
        if trust_remote_code:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        else:
            tokenizer = load_saved_tokenizer(folder)
        loaded = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=trust_remote_code)
    return TextClassifier(loaded.to("cuda" if torch.cuda.is_available() else "cpu").eval(), tokenizer)


def load_text_classifier(model: str | Path, trust_remote_code: bool = False) -> Pipeline:
    """A ``text-classification`` pipeline for a saved hfnlp model folder, a run folder, or a Hub id: the model and
    tokenizer of :func:`load_text_model`, and ``explain=True`` besides the pipeline's own arguments
    (:class:`ExplainingTextClassificationPipeline`).

    Raises:
        HfnlpError: The folder is missing, incomplete or damaged, or holds no hfnlp text classifier.
    """
    from transformers import pipeline

    from hfnlp.pipelines.explaining import ExplainingTextClassificationPipeline

    loaded = load_text_model(model, trust_remote_code)
    return pipeline(
        "text-classification",
        model=loaded.model,
        tokenizer=loaded.tokenizer,
        device=loaded.model.device,
        pipeline_class=ExplainingTextClassificationPipeline,
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """transformers' text-classification pipeline's softmax (NumPy, float32, less the row maximum), so that
    :func:`classify` gives its scores to the bit."""
    exp = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def classify(
    classifier: TextClassifier | Pipeline, texts: Sequence[str | None], batch_size: int = 64, explain: bool = False
) -> list[dict[str, Any] | None]:
    """``{"label", "score"}`` (top label, softmax score) for each of ``texts``, in input order; ``None`` for an empty,
    whitespace-only or missing text, which holds nothing to classify. With ``explain``, each also carries
    ``"attributions"``: the label's spans of the text (:func:`hfnlp.explain.explain`).

    What the pipeline computes (``classifier(texts, truncation=True, top_k=1)``), a batch at a time: the tokenizer
    encodes the whole batch in one call and the scores are taken from the batch's logits at once, where the
    pipeline's per-text pre- and post-processing took 85% of the time of a bag model (4,300 THUCNews titles/s)."""
    present = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
    results: list[dict[str, Any] | None] = [None] * len(texts)
    if not present:
        return results
    tokenizer, model = classifier.tokenizer, classifier.model
    encode = batch_encoder(tokenizer)
    labels = model.config.id2label
    for start in range(0, len(present), batch_size):
        batch = encode([texts[i] for i in present[start : start + batch_size]])
        with torch.inference_mode():
            logits = model(**{key: value.to(model.device) for key, value in batch.items()}).logits
        # The pipeline's own softmax (NumPy, float32), so that the scores are the ones pipeline(...) gives, to the bit.
        probabilities = softmax(logits.float().cpu().numpy())
        for i, row in zip(present[start : start + batch_size], probabilities, strict=True):
            results[i] = {"label": labels[int(row.argmax())], "score": row.max().item()}
    if explain:
        for i in present:
            results[i]["attributions"] = explain_text(model, tokenizer, texts[i], results[i]["label"]).spans
    return results


def batch_encoder(tokenizer: Any) -> Callable[[Sequence[str]], dict[str, torch.Tensor]]:
    """A function encoding a batch of texts as the text-classification pipeline does (cut to the token budget,
    ``truncation=True``, padded to the longest), as tensors: for :func:`classify` and ``hfnlp serve``.

    Straight from the Rust tokenizer where it can (no offsets, no per-text ``BatchEncoding``): half of a bag model's
    time went to transformers' per-text conversion."""
    max_length = tokenizer.model_max_length if tokenizer.model_max_length < 1e9 else None  # 1e30: "no limit"
    encode_ids = ids_encoder(tokenizer, max_length) if tokenizer.padding_side == "right" else None

    def encode(texts: Sequence[str]) -> dict[str, torch.Tensor]:
        cut = cut_to_token_budget(texts, tokenizer.model_max_length)
        if encode_ids is not None:
            return padded_batch(encode_ids(cut), tokenizer.pad_token_id)
        return dict(tokenizer(cut, truncation=True, padding=True, return_tensors="pt"))

    return encode


def read_input_texts(
    path: Path, text_columns: Sequence[str] | None = None, trained_columns: Sequence[str] = ()
) -> tuple[str, list[str | None]]:
    """The texts of a prediction input file and what numbers them, counted from 1 as a user counts:

    - ``("line", texts)`` for ``.txt``: one text a line, split at line feeds only (a ``\\r\\n`` ending removed, a
      U+2028 inside a line kept), blank lines kept as empty texts so that text N is line N;
    - ``("row", texts)`` for ``.csv`` / ``.tsv`` / ``.json`` / ``.jsonl`` / ``.parquet``: the ``text_columns`` of
      each data row (a header is not a row), joined as training joins them (:func:`~hfnlp.data.text.
      join_text_columns`); a missing cell is ``None``. Without ``text_columns``: the model's ``trained_columns``
      when the table has them all (a model trained on title + description reads both), else ``text``.
    """
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise HfnlpError(f"{path}: cannot tell the format from the extension; use one of {', '.join(INPUT_SUFFIXES)}")
    if not path.is_file():
        raise HfnlpError(f"input file not found: {path}")
    if suffix == ".txt":
        return "line", read_lines(path, what="input file")
    table = read_table(path, EXTENSION_FORMATS[suffix])
    if text_columns is None:
        trained = [column for column in trained_columns if column in table.column_names]
        text_columns = trained if trained and len(trained) == len(trained_columns) else ["text"]
    for text_column in text_columns:
        if text_column not in table.column_names:
            raise HfnlpError(
                f"{path}: no column {text_column!r}; its columns are {', '.join(table.column_names)} (choose with "
                "--text-column)"
            )
        values = table[text_column]
        wrong = [row for row, text in enumerate(values, start=1) if text is not None and not isinstance(text, str)]
        if wrong:
            example = values[wrong[0] - 1]
            raise HfnlpError(
                f"{path}: column {text_column!r} holds {type(example).__name__} values, not texts (row {wrong[0]}: "
                f"{example!r}); choose the text column with --text-column"
            )
    from hfnlp.data.text import join_text_columns  # imports datasets, which a table file has needed already

    texts, _ = join_text_columns({column: list(table[column]) for column in text_columns})
    return "row", texts


def trained_text_columns(model: str | Path) -> list[str]:
    """The text columns the model in folder, run folder or Hub id ``model`` was trained on, as the ``recipe.yaml``
    saved with it names them; empty when it does not say."""
    recipe = resolve_model_folder(model) / "recipe.yaml"
    try:
        saved = yaml.safe_load(recipe.read_text(encoding="utf-8")) if recipe.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    column = ((saved or {}).get("data") or {}).get("text_column") if isinstance(saved, dict) else None
    columns = [column] if isinstance(column, str) else column
    return [str(name) for name in columns] if isinstance(columns, list) else []


def check_labels_known(dataset: Dataset, label_column: str, label_names: Sequence[str], source: str) -> None:
    """Refuse labelled data whose label column is missing or holds labels the model does not know (names, or ids
    outside ``0..len(label_names)-1``), naming each unknown label with how many rows carry it."""
    from datasets import ClassLabel

    from hfnlp.data.reading import label_index

    if label_column not in dataset.column_names:
        raise DataError(
            f"{source}: no label column {label_column!r}; its columns are {', '.join(dataset.column_names)} (name it "
            "with --label-column; a file without a header: --column-names text,label)"
        )
    labels = dataset[label_column]
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):  # stored as ids into the file's own names
        labels = [feature.int2str(label) if label is not None and label >= 0 else None for label in labels]
    label_ids = {name: i for i, name in enumerate(label_names)}
    unknown = Counter(
        str(label).strip() for label in labels if label not in (None, "") and label_index(label, label_ids) is None
    )
    if unknown:
        named = ", ".join(
            f"{label!r} ({count} row{'s' if count > 1 else ''})" for label, count in unknown.most_common(10)
        )
        more = f", … {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise DataError(
            f"{source}: label(s) the model does not know: {named}{more}; the model's labels are "
            f"{', '.join(label_names)}"
        )
