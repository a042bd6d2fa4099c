"""Text-classification data: recipe section, readers for every supported layout, validation, splits.

Every reader returns a ``datasets.DatasetDict`` with a ``text`` column (str) and a ``label`` column
(``ClassLabel``), with ``train`` / ``validation`` / ``test`` splits; missing splits are carved from
train by ratio, stratified, with the recipe's seed.
"""

from __future__ import annotations

import csv
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import pandas
from datasets import ClassLabel, Dataset, DatasetDict

from hfnlp.data.builtin import BUILTIN_TEXT_DATASETS
from hfnlp.data.splits import SPLIT_ALIASES, carve_missing_splits
from hfnlp.errors import DataError

logger = logging.getLogger(__name__)

FileFormat = Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "text", "label_folders"]
_EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}


@dataclass
class TextDataConfig:
    """The ``data`` section of a text-classification recipe.

    Give exactly one source: ``builtin`` (an embedded data set), ``hub`` (a Hub name, or a local folder
    that ``datasets.load_dataset`` understands), or ``train_file`` (+ optional ``validation_file`` /
    ``test_file``; for ``label_folders`` these are folders with one sub-folder of ``.txt`` files per label).
    """

    builtin: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    format: FileFormat = "auto"
    encoding: str = "utf-8"
    column_names: list[str] | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    label_file: str | None = None
    validation_ratio: float = 0.1
    test_ratio: float = 0.1
    bad_rows: Literal["error", "skip"] = "error"

    def __post_init__(self) -> None:
        sources = [name for name in ("builtin", "hub", "train_file") if getattr(self, name)]
        if len(sources) != 1:
            raise DataError(f"data: give exactly one of builtin, hub or train_file (got {sources or 'none'})")
        if self.label_names and self.label_file:
            raise DataError("data: give label_names or label_file, not both")
        files = [(name, getattr(self, name)) for name in ("train_file", "validation_file", "test_file")]
        given = [(name, Path(path).resolve()) for name, path in files if path]
        for i, (name, path) in enumerate(given):
            for other, other_path in given[:i]:
                if path == other_path:
                    raise DataError(f"data.{name} and data.{other} are the same file ({path}): splits must not overlap")


@dataclass
class TextClassificationData:
    """Validated splits plus the label names and how many bad rows each split skipped."""

    splits: DatasetDict
    label_names: list[str]
    skipped_rows: dict[str, int] = field(default_factory=dict)


def load_text_classification(config: TextDataConfig, seed: int = 42) -> TextClassificationData:
    """Load, validate and split the data a recipe describes."""
    raw = _read_raw_splits(config)
    label_names = _resolve_label_names(config, raw)
    splits, skipped = {}, {}
    for split, dataset in raw.items():
        splits[split], skipped[split] = validate_text_split(dataset, config, label_names, split)
    splits = carve_missing_splits(
        DatasetDict(splits), validation_ratio=config.validation_ratio, test_ratio=config.test_ratio, seed=seed
    )
    return TextClassificationData(splits=splits, label_names=label_names, skipped_rows=skipped)


def _read_raw_splits(config: TextDataConfig) -> dict[str, Dataset]:
    if config.builtin:
        if config.builtin not in BUILTIN_TEXT_DATASETS:
            raise DataError(
                f"data.builtin: unknown data set {config.builtin!r}; available: {', '.join(BUILTIN_TEXT_DATASETS)}"
            )
        return {"train": BUILTIN_TEXT_DATASETS[config.builtin]()}
    if config.hub:
        return _read_hub(config)
    files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
    return {split: read_text_file(path, config) for split, path in files.items() if path}


def _read_hub(config: TextDataConfig) -> dict[str, Dataset]:
    try:
        loaded = datasets.load_dataset(config.hub, config.hub_config)
    except Exception as error:  # datasets raises many types: connection, missing file, bad config
        raise DataError(f"data.hub: cannot load {config.hub!r}: {error}") from error
    splits = {}
    for name, dataset in loaded.items():
        canonical = SPLIT_ALIASES.get(name)
        if canonical:
            splits[canonical] = dataset
    if "train" not in splits:
        raise DataError(f"data.hub: {config.hub!r} has no train split (splits: {', '.join(loaded)})")
    return splits


def read_text_file(path: str | Path, config: TextDataConfig) -> Dataset:
    """Read one split from ``path`` in the recipe's format, wrapping reader errors with the file name."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    file_format = config.format if config.format != "auto" else _detect_format(path)
    if file_format == "label_folders":
        return _read_label_folders(path, config)
    if not path.is_file():
        raise DataError(f"{path}: expected a file for format {file_format!r}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if file_format != "parquet":
        _check_decodable(path, config.encoding)
    builder, kwargs = _builder_for(file_format, config, path)
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more fields than the header, then drops or shifts data.
            warnings.simplefilter("error", pandas.errors.ParserWarning)
            dataset = datasets.load_dataset(builder, data_files={"data": str(path)}, split="data", **kwargs)
    except Exception as error:  # pandas/pyarrow parse errors carry the line; keep their message
        raise DataError(f"{path}: cannot be read as {file_format}: {_root_cause(error)}") from error
    if file_format == "text":
        dataset = dataset.rename_column("text", config.text_column) if config.text_column != "text" else dataset
    return dataset


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "label_folders"
    file_format = _EXTENSION_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise DataError(f"{path}: cannot tell the format from the extension; set data.format")
    return file_format


def _builder_for(file_format: str, config: TextDataConfig, path: Path) -> tuple[str, dict[str, Any]]:
    encoding = "utf-8-sig" if config.encoding.lower().replace("_", "-") == "utf-8" else config.encoding
    if file_format in ("csv", "tsv"):
        # Every column is read as text: no guessing turns "007" into 7, "0" into an int or "NA" into a gap.
        kwargs: dict[str, Any] = {"encoding": encoding, "index_col": False, "keep_default_na": False}
        if file_format == "tsv":
            # Titles and reviews contain quote characters: a TSV is never quoted.
            kwargs.update(sep="\t", quoting=3)
        columns = config.column_names or _csv_header(path, encoding, kwargs.get("sep", ","))
        if config.column_names:
            kwargs.update(column_names=config.column_names)
        kwargs["features"] = datasets.Features({name: datasets.Value("string") for name in columns})
        return "csv", kwargs
    if file_format in ("json", "jsonl"):
        return "json", {"encoding": encoding}
    if file_format == "text":
        return "text", {"encoding": encoding}
    return "parquet", {}


def _csv_header(path: Path, encoding: str, separator: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as handle:
        header = next(csv.reader(handle, delimiter=separator), [])
    if len(set(header)) != len(header) or not all(header):
        raise DataError(f"{path}: the header {header} has empty or repeated column names")
    return header


def _check_decodable(path: Path, encoding: str) -> None:
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf-8-sig", "utf8"):
        return
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{path}, line {line_number}: bytes that are not valid UTF-8 ({error.reason} at column "
                    f"{error.start + 1}); set data.encoding (e.g. gbk) if the whole file uses another encoding"
                ) from error


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
    if problems and config.bad_rows == "error":
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(
            f"{split} split: {len(problems)} bad row(s): {shown} "
            "(bad_rows=skip drops them: data.bad_rows in a recipe, --bad-rows on the command line)"
        )
    if problems:
        logger.warning("%s split: skipped %d bad row(s), e.g. %s", split, len(problems), problems[0])
    features = datasets.Features({"text": datasets.Value("string"), "label": ClassLabel(names=list(label_names))})
    clean = Dataset.from_dict({"text": [texts[i] for i in keep], "label": labels}, features=features)
    if len(clean) == 0:
        raise DataError(f"{split} split: no usable rows")
    return clean, len(problems)


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


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return f"{type(error).__name__}: {error}"
