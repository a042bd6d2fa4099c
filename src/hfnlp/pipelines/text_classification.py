"""Batched text-classification inference over a saved model folder, through ``transformers.pipeline``, and the
input files of ``hfnlp predict`` / ``hfnlp evaluate``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from datasets import ClassLabel, Dataset
from transformers import Pipeline, pipeline

import hfnlp.models  # noqa: F401  (registers hfnlp's families with the Auto classes)
from hfnlp.data.files import EXTENSION_FORMATS, read_lines, read_table
from hfnlp.data.reading import label_index
from hfnlp.errors import DataError, HfnlpError
from hfnlp.pipelines.loading import TEXT_CLASSIFIER, check_model_folder, loading_errors, resolve_model_folder
from hfnlp.tokenization.text import cut_to_token_budget, load_saved_tokenizer

INPUT_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet")


def load_text_classifier(model: str | Path, trust_remote_code: bool = False) -> Pipeline:
    """A ``text-classification`` pipeline for a saved hfnlp model folder, a run folder, or a Hub id.

    Raises:
        HfnlpError: The folder is missing, incomplete or damaged, or holds no hfnlp text classifier.
    """
    folder = resolve_model_folder(model)
    check_model_folder(folder, TEXT_CLASSIFIER, trust_remote_code)
    with loading_errors(folder):
        return pipeline(
            "text-classification",
            model=str(folder),
            tokenizer=None if trust_remote_code else load_saved_tokenizer(folder),
            trust_remote_code=trust_remote_code,
            device=0 if torch.cuda.is_available() else -1,
        )


def classify(classifier: Pipeline, texts: Sequence[str | None], batch_size: int = 64) -> list[dict[str, Any] | None]:
    """``{"label", "score"}`` (top label, softmax score) for each of ``texts``, in input order; ``None`` for an empty,
    whitespace-only or missing text, which holds nothing to classify."""
    present = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
    results: list[dict[str, Any] | None] = [None] * len(texts)
    if present:
        cut = cut_to_token_budget([texts[i] for i in present], classifier.tokenizer.model_max_length)
        outputs = classifier(cut, batch_size=batch_size, truncation=True, top_k=1)
        for i, output in zip(present, outputs, strict=True):
            results[i] = output[0] if isinstance(output, list) else output
    return results


def read_input_texts(path: Path, text_column: str = "text") -> tuple[str, list[str | None]]:
    """The texts of a prediction input file and what numbers them, counted from 1 as a user counts:

    - ``("line", texts)`` for ``.txt``: one text a line, split at line feeds only (a ``\\r\\n`` ending removed, a
      U+2028 inside a line kept), blank lines kept as empty texts so that text N is line N;
    - ``("row", texts)`` for ``.csv`` / ``.tsv`` / ``.json`` / ``.jsonl`` / ``.parquet``: the ``text_column`` of
      each data row (a header is not a row); a missing cell is ``None``.
    """
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise HfnlpError(f"{path}: cannot tell the format from the extension; use one of {', '.join(INPUT_SUFFIXES)}")
    if not path.is_file():
        raise HfnlpError(f"input file not found: {path}")
    if suffix == ".txt":
        return "line", read_lines(path, what="input file")
    table = read_table(path, EXTENSION_FORMATS[suffix])
    if text_column not in table.column_names:
        raise HfnlpError(
            f"{path}: no column {text_column!r}; its columns are {', '.join(table.column_names)} (choose with "
            "--text-column)"
        )
    texts = list(table[text_column])
    wrong = [row for row, text in enumerate(texts, start=1) if text is not None and not isinstance(text, str)]
    if wrong:
        example = texts[wrong[0] - 1]
        raise HfnlpError(
            f"{path}: column {text_column!r} holds {type(example).__name__} values, not texts (row {wrong[0]}: "
            f"{example!r}); choose the text column with --text-column"
        )
    return "row", texts


def check_labels_known(dataset: Dataset, label_column: str, label_names: Sequence[str], source: str) -> None:
    """Refuse labelled data whose label column is missing or holds labels the model does not know (names, or ids
    outside ``0..len(label_names)-1``), naming each unknown label with how many rows carry it."""
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
