"""Text-classification data: recipe section, readers for every supported layout, validation, splits.

Every reader returns a ``datasets.DatasetDict`` with a ``text`` column (str) and a ``label`` column
(``ClassLabel``), with ``train`` / ``validation`` / ``test`` splits; missing splits are carved from
train by ratio, stratified, with the recipe's seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
from datasets import ClassLabel, Dataset, DatasetDict

from hfnlp.data.builtin import BUILTIN_TEXT_DATASETS
from hfnlp.data.files import check_encoding, read_table
from hfnlp.data.reading import (
    SplitFilesConfig,
    apply_bad_rows_policy,
    as_label_id,
    check_classes,
    checked_label_names,
    infer_label_names,
    label_index,
    read_label_file,
    read_raw_splits,
)
from hfnlp.errors import DataError

FileFormat = Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "text", "label_folders"]


@dataclass
class TextDataConfig(SplitFilesConfig):
    """The ``data`` section of a text-classification recipe.

    Give exactly one source: ``builtin`` (an embedded data set), ``hub`` (a Hub name, or a local folder
    that ``datasets.load_dataset`` understands), or ``train_file`` (+ optional ``validation_file`` /
    ``test_file``; for ``label_folders`` these are folders with one sub-folder of ``.txt`` files per label).
    ``column_names`` name the columns of a CSV / TSV without header; ``text_column`` may list several columns
    (``[title, description]``): a row's text is then their non-empty values joined with a line break;
    ``columns_by_split`` overrides ``text_column`` / ``label_column`` for a split whose file names them differently
    (with a name or a list); ``label_names`` or
    ``label_file`` (one name a line) fix the classes and their order; ``bad_rows: skip`` drops and counts
    unusable rows.
    """

    FOLDER_FORMAT = "label_folders"
    BUILTINS = BUILTIN_TEXT_DATASETS
    MULTI_COLUMN_KEYS = ("text_column",)

    format: FileFormat = "auto"
    encoding: str = "utf-8"
    column_names: list[str] | None = None
    text_column: str | list[str] = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    label_file: str | None = None
    bad_rows: Literal["error", "skip"] = "error"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_encoding(self.encoding)
        if self.label_names and self.label_file:
            raise DataError("data: give label_names or label_file, not both")


@dataclass
class TextClassificationData:
    """Validated splits plus the label names and how many bad rows each split skipped."""

    splits: DatasetDict
    label_names: list[str]
    skipped_rows: dict[str, int] = field(default_factory=dict)


COLUMN_KEYS = ("text_column", "label_column")


def load_text_classification(config: TextDataConfig, seed: int = 42) -> TextClassificationData:
    """Load, validate and split the data a recipe describes.

    Before any training the classes are checked: integer ids inferred from train must be ``0..K-1``, train must
    have rows of every class and at least two classes (see :func:`hfnlp.data.reading.check_classes`).
    """
    raw = read_raw_splits(config, lambda split, path: read_text_file(path, config, split))
    config.check_columns({split: dataset.column_names for split, dataset in raw.items()}, COLUMN_KEYS)
    label_names, declared_by = _resolve_label_names(config, raw)
    splits, skipped = {}, {}
    for split, dataset in raw.items():
        splits[split], skipped[split] = validate_text_split(dataset, config, label_names, split)
    check_classes(label_names, {split: dataset["label"] for split, dataset in splits.items()}, declared_by)
    splits = config.carve(DatasetDict(splits), seed)
    return TextClassificationData(splits=splits, label_names=label_names, skipped_rows=skipped)


def read_text_file(path: str | Path, config: TextDataConfig, split: str = "train") -> Dataset:
    """Read one split from ``path`` in the recipe's format, wrapping reader errors with the file name."""
    path = Path(path)
    file_format = config.file_format(path)
    if file_format == "label_folders":
        return _read_label_folders(path, config, split)
    dataset = read_table(path, file_format, encoding=config.encoding, column_names=config.column_names)
    if file_format == "text":
        text_column = _single_text_column(config, split, file_format)
        if text_column != "text":
            dataset = dataset.rename_column("text", text_column)
    return dataset


def _single_text_column(config: TextDataConfig, split: str, file_format: str) -> str:
    """The one text column of a format that has one text per row (``text``, ``label_folders``)."""
    names = config.columns("text_column", split)
    if len(names) > 1:
        raise DataError(
            f"data.text_column: format {file_format} has one text per row, not columns {', '.join(names)} "
            "to join; name one column"
        )
    return names[0]


def _read_label_folders(root: Path, config: TextDataConfig, split: str) -> Dataset:
    if not root.is_dir():
        raise DataError(f"{root}: format label_folders expects a folder with one sub-folder per label")
    text_column = _single_text_column(config, split, "label_folders")
    wanted = _label_names_from_config(config)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if wanted is not None:
        folders = [p for p in folders if p.name in wanted]
        missing = sorted(set(wanted) - {p.name for p in folders})
        if missing:
            raise DataError(f"{root}: no sub-folder for label(s) {', '.join(missing)}")
    texts, labels = [], []
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            try:
                texts.append(file.read_text(encoding=config.encoding))
            except UnicodeDecodeError as error:
                raise DataError(f"{file}: not valid {config.encoding} text ({error.reason})") from error
            except OSError as error:
                raise DataError(f"{file}: cannot be read: {error.strerror or error}") from error
            labels.append(folder.name)
    if not texts:
        raise DataError(f"{root}: no .txt files found in its label sub-folders")
    return Dataset.from_dict({text_column: texts, config.column("label_column", split): labels})


def _label_names_from_config(config: TextDataConfig) -> list[str] | None:
    if config.label_names:
        return checked_label_names(config.label_names, "data.label_names")
    if config.label_file:
        return read_label_file(Path(config.label_file))
    return None


def _resolve_label_names(config: TextDataConfig, raw: dict[str, Dataset]) -> tuple[list[str], str]:
    """The classes in id order, and where they come from (for messages)."""
    names = _label_names_from_config(config)
    if names is not None:
        return names, "data.label_names" if config.label_names else f"data.label_file ({config.label_file})"
    train = raw["train"]
    label_column = config.column("label_column", "train")
    feature = train.features[label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names), "the data set's class list"
    return infer_label_names(train[label_column], label_column), "the train labels"


def validate_text_split(
    dataset: Dataset, config: TextDataConfig, label_names: Sequence[str], split: str, *, skip_hint: str = ""
) -> tuple[Dataset, int]:
    """Check columns, texts and labels of one split; return it as ``text`` + ``label`` and the skip count.

    With several text columns a row's text is their non-empty values joined with a line break (see
    :func:`join_text_columns`). With ``bad_rows: error`` the first problems are raised naming split, row and value,
    and ``skip_hint`` (by default: the recipe key) says how to skip them; with ``skip`` the bad rows are dropped and
    counted.
    """
    config.check_columns({split: dataset.column_names}, COLUMN_KEYS)
    text_columns, label_column = config.columns("text_column", split), config.column("label_column", split)
    label_feature = dataset.features[label_column]
    label_ids = {name: i for i, name in enumerate(label_names)}
    # dataset[:] reads whole columns at once; iterating dataset[name] goes through datasets' row formatter
    texts, text_problems = join_text_columns(dataset.select_columns(text_columns)[:])
    raw_labels = dataset[label_column]
    if isinstance(label_feature, ClassLabel):
        raw_labels = [label_feature.int2str(v) if v is not None and v >= 0 else None for v in raw_labels]
    problems, keep, labels = [], [], []
    for row, (text, label) in enumerate(zip(texts, raw_labels, strict=True)):
        label_id = label_index(label, label_ids)
        problem = text_problems.get(row) or _text_problem(text)
        problem = problem or (_label_problem(label, label_names) if label_id is None else None)
        if problem:
            problems.append(f"row {row + 1}: {problem}")
            continue
        keep.append(row)
        labels.append(label_id)
    skipped = apply_bad_rows_policy(f"{split} split", problems, config.bad_rows, hint=skip_hint)
    features = datasets.Features({"text": datasets.Value("string"), "label": ClassLabel(names=list(label_names))})
    clean = Dataset.from_dict({"text": [texts[i] for i in keep], "label": labels}, features=features)
    if len(clean) == 0:
        raise DataError(f"{split} split: no usable rows" + ("" if len(dataset) else " (it has none)"))
    return clean, skipped


def join_text_columns(columns: Mapping[str, Sequence[Any]]) -> tuple[list[Any], dict[int, str]]:
    """The text of each row from its text columns, and the problem of each row (by index) whose columns give none.

    One column: its values as they are (:func:`validate_text_split` checks them). Several: the non-empty values (not
    None, not white space only) joined with ``"\\n"``; a row whose columns are all empty, or that holds a value
    that is not a string in any of them, has None as text and its problem listed.
    """
    if len(columns) == 1:
        return list(next(iter(columns.values()))), {}
    names = list(columns)  # in the order the recipe lists them
    texts: list[Any] = []
    problems: dict[int, str] = {}
    for row, values in enumerate(zip(*columns.values(), strict=True)):
        wrong = [(name, value) for name, value in zip(names, values, strict=True) if not isinstance(value, str | None)]
        parts = [value for value in values if isinstance(value, str) and value.strip()]
        if wrong:
            problems[row] = (
                f"text column {wrong[0][0]!r} holds {type(wrong[0][1]).__name__} {wrong[0][1]!r}, not a string"
            )
        elif not parts:
            problems[row] = f"text is missing (text columns {', '.join(names)} are all empty)"
        texts.append(None if row in problems else "\n".join(parts))
    return texts, problems


def _text_problem(text: Any) -> str | None:
    if text is None:
        return "text is missing"
    if not isinstance(text, str):
        return f"text is {type(text).__name__} {text!r}, not a string"
    if not text.strip():
        return "text is empty or whitespace only"
    return None


def _label_problem(label: Any, label_names: Sequence[str]) -> str:
    if label is None or label == "":
        return "label is missing"
    if isinstance(label, int | float) and not isinstance(label, bool):
        if as_label_id(label) is not None:
            return f"label id {label} outside 0..{len(label_names) - 1}"
        return f"label {label!r} is not an integer id or a label name"
    return f"unknown label {label!r} (labels: {', '.join(label_names)})"
