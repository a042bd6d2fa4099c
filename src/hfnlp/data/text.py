"""Text-classification data: recipe section, readers for every supported layout, validation, splits.

Every reader returns a ``datasets.DatasetDict`` with a ``text`` column (str) and a ``label`` column
(``ClassLabel``), with ``train`` / ``validation`` / ``test`` splits; missing splits are carved from
train by ratio, stratified, with the recipe's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
from datasets import ClassLabel, Dataset, DatasetDict

from hfnlp.data.builtin import BUILTIN_TEXT_DATASETS
from hfnlp.data.reading import SplitFilesConfig, apply_bad_rows_policy, read_raw_splits, read_table
from hfnlp.errors import DataError

FileFormat = Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "text", "label_folders"]


@dataclass
class TextDataConfig(SplitFilesConfig):
    """The ``data`` section of a text-classification recipe.

    Give exactly one source: ``builtin`` (an embedded data set), ``hub`` (a Hub name, or a local folder
    that ``datasets.load_dataset`` understands), or ``train_file`` (+ optional ``validation_file`` /
    ``test_file``; for ``label_folders`` these are folders with one sub-folder of ``.txt`` files per label).
    ``column_names`` name the columns of a CSV / TSV without header; ``label_names`` or ``label_file`` (one
    name a line) fix the classes and their order; ``bad_rows: skip`` drops and counts unusable rows.
    """

    FOLDER_FORMAT = "label_folders"
    BUILTINS = BUILTIN_TEXT_DATASETS

    format: FileFormat = "auto"
    encoding: str = "utf-8"
    column_names: list[str] | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    label_file: str | None = None
    bad_rows: Literal["error", "skip"] = "error"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.label_names and self.label_file:
            raise DataError("data: give label_names or label_file, not both")


@dataclass
class TextClassificationData:
    """Validated splits plus the label names and how many bad rows each split skipped."""

    splits: DatasetDict
    label_names: list[str]
    skipped_rows: dict[str, int] = field(default_factory=dict)


def load_text_classification(config: TextDataConfig, seed: int = 42) -> TextClassificationData:
    """Load, validate and split the data a recipe describes."""
    raw = read_raw_splits(config, lambda _split, path: read_text_file(path, config))
    label_names = _resolve_label_names(config, raw)
    splits, skipped = {}, {}
    for split, dataset in raw.items():
        splits[split], skipped[split] = validate_text_split(dataset, config, label_names, split)
    splits = config.carve(DatasetDict(splits), seed)
    return TextClassificationData(splits=splits, label_names=label_names, skipped_rows=skipped)


def read_text_file(path: str | Path, config: TextDataConfig) -> Dataset:
    """Read one split from ``path`` in the recipe's format, wrapping reader errors with the file name."""
    path = Path(path)
    file_format = config.file_format(path)
    if file_format == "label_folders":
        return _read_label_folders(path, config)
    dataset = read_table(path, file_format, encoding=config.encoding, column_names=config.column_names)
    if file_format == "text" and config.text_column != "text":
        dataset = dataset.rename_column("text", config.text_column)
    return dataset


def _read_label_folders(root: Path, config: TextDataConfig) -> Dataset:
    if not root.is_dir():
        raise DataError(f"{root}: format label_folders expects a folder with one sub-folder per label")
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
            labels.append(folder.name)
    if not texts:
        raise DataError(f"{root}: no .txt files found in its label sub-folders")
    return Dataset.from_dict({config.text_column: texts, config.label_column: labels})


def _label_names_from_config(config: TextDataConfig) -> list[str] | None:
    if config.label_names:
        return [str(name) for name in config.label_names]
    if config.label_file:
        path = Path(config.label_file)
        if not path.is_file():
            raise DataError(f"data.label_file not found: {path}")
        names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        if len(set(names)) != len(names):
            raise DataError(f"{path}: duplicate label names")
        return names
    return None


def _resolve_label_names(config: TextDataConfig, raw: dict[str, Dataset]) -> list[str]:
    names = _label_names_from_config(config)
    if names is not None:
        return names
    train = raw["train"]
    feature = train.features.get(config.label_column)
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    if config.label_column not in train.column_names:
        return []  # validate_text_split reports the missing column with the file's columns
    column = train[config.label_column]
    _refuse_mixed_label_kinds(column, config.label_column)
    values = {value for value in column if value not in (None, "")}
    if values and all(_as_label_id(v) is not None for v in values):
        return [str(i) for i in range(max(_as_label_id(v) for v in values) + 1)]
    return sorted(str(v) for v in values)


def _label_kind(value: Any) -> str:
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return "booleans"
    if _as_label_id(value) is not None:
        return "integer ids"
    try:
        float(value)
        return "decimal numbers"
    except (TypeError, ValueError):
        return "names"


def _refuse_mixed_label_kinds(column: Sequence[Any], name: str) -> None:
    """Labels inferred from the data must be of one kind: ``1`` next to ``1.0`` or ``positive`` is almost always an
    export accident (a spreadsheet turning ids into decimals), and guessing would silently create extra classes."""
    examples: dict[str, dict[str, int]] = {}
    for row, value in enumerate(column, start=1):
        if value not in (None, ""):
            kind = examples.setdefault(_label_kind(value), {})
            if len(kind) < 3:
                kind.setdefault(str(value), row)
    if len(examples) > 1:
        found = "; ".join(
            f"{kind}: " + ", ".join(f"{value!r} (row {row})" for value, row in values.items())
            for kind, values in examples.items()
        )
        raise DataError(
            f"train split: the label column {name!r} mixes {' and '.join(examples)} ({found}); write every label "
            "the same way, or list the classes in data.label_names or data.label_file"
        )


def validate_text_split(
    dataset: Dataset, config: TextDataConfig, label_names: Sequence[str], split: str
) -> tuple[Dataset, int]:
    """Check columns, texts and labels of one split; return it as ``text`` + ``label`` and the skip count.

    With ``bad_rows: error`` the first problems are raised naming split, row and value; with ``skip``
    the bad rows are dropped and counted.
    """
    for column in (config.text_column, config.label_column):
        if column not in dataset.column_names:
            raise DataError(
                f"{split} split: no column {column!r}; columns are {', '.join(dataset.column_names)}"
                + (" (a header-less file needs data.column_names)" if not config.column_names else "")
            )
    label_feature = dataset.features[config.label_column]
    label_ids = {name: i for i, name in enumerate(label_names)}
    texts, raw_labels = dataset[config.text_column], dataset[config.label_column]
    if isinstance(label_feature, ClassLabel):
        raw_labels = [label_feature.int2str(v) if v is not None and v >= 0 else None for v in raw_labels]
    problems, keep, labels = [], [], []
    for row, (text, label) in enumerate(zip(texts, raw_labels, strict=True)):
        label_id = _label_id(label, label_ids, len(label_names))
        problem = _text_problem(text) or (_label_problem(label, label_names) if label_id is None else None)
        if problem:
            problems.append(f"row {row + 1}: {problem}")
            continue
        keep.append(row)
        labels.append(label_id)
    skipped = apply_bad_rows_policy(
        f"{split} split",
        problems,
        config.bad_rows,
        hint="bad_rows=skip drops them: data.bad_rows in a recipe, --bad-rows on the command line",
    )
    features = datasets.Features({"text": datasets.Value("string"), "label": ClassLabel(names=list(label_names))})
    clean = Dataset.from_dict({"text": [texts[i] for i in keep], "label": labels}, features=features)
    if len(clean) == 0:
        raise DataError(f"{split} split: no usable rows")
    return clean, skipped


def _text_problem(text: Any) -> str | None:
    if text is None:
        return "text is missing"
    if not isinstance(text, str):
        return f"text is {type(text).__name__} {text!r}, not a string"
    if not text.strip():
        return "text is empty or whitespace only"
    return None


def _as_label_id(label: Any) -> int | None:
    """``label`` as an integer id if it is one (an int, or a decimal integer written as text)."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int):
        return label
    if isinstance(label, str) and label.strip().isdecimal():
        return int(label)
    return None


def _label_id(label: Any, label_ids: dict[str, int], num_labels: int) -> int | None:
    if isinstance(label, str) and label.strip() in label_ids:
        return label_ids[label.strip()]
    label_id = _as_label_id(label)
    return label_id if label_id is not None and 0 <= label_id < num_labels else None


def _label_problem(label: Any, label_names: Sequence[str]) -> str:
    if label is None or label == "":
        return "label is missing"
    if isinstance(label, int | float) and not isinstance(label, bool):
        if _as_label_id(label) is not None:
            return f"label id {label} outside 0..{len(label_names) - 1}"
        return f"label {label!r} is not an integer id or a label name"
    return f"unknown label {label!r} (labels: {', '.join(label_names)})"
