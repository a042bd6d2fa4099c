"""The reading layer under every task's data: recipe source keys, split names, file formats, the Hub, the
bad-row policy, carving.

A task's reader turns its ``data`` section into raw splits through :func:`read_raw_splits` (a built-in set, a
Hub data set or local folder that ``datasets.load_dataset`` understands, or one file per split read by
:func:`read_table` or the task's own folder reader), validates them its own way (:func:`apply_bad_rows_policy`
for the rows it rejects), then carves the missing ``validation`` / ``test`` splits out of ``train``
(:meth:`DataSourceConfig.carve`).
"""

from __future__ import annotations

import csv
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, get_args, get_type_hints

import datasets
import pandas
from datasets import Dataset, DatasetDict

from hfnlp.errors import DataError

logger = logging.getLogger(__name__)

SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "val": "validation",
    "test": "test",
}
EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}


@dataclass
class DataSourceConfig:
    """The keys every task's ``data`` section shares: where the data comes from and how missing splits are carved.

    ``builtin`` names an embedded data set, ``hub`` a Hub data set (or a local folder that
    ``datasets.load_dataset`` understands) with ``hub_config`` its configuration; ``format`` is how a task reads
    its files (``auto`` tells it from the path); ``validation_ratio`` / ``test_ratio`` are the shares of train
    that become the splits a source does not define. A subclass lists its mutually exclusive source keys in
    ``SOURCES`` and its embedded data sets in ``BUILTINS``.
    """

    SOURCES: ClassVar[tuple[str, ...]] = ("builtin", "hub")
    BUILTINS: ClassVar[Mapping[str, Callable[..., Dataset]]] = {}

    builtin: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    format: str = "auto"
    validation_ratio: float = 0.1
    test_ratio: float = 0.1

    def __post_init__(self) -> None:
        given = [name for name in self.SOURCES if getattr(self, name)]
        if len(given) != 1:
            choices = f"{', '.join(self.SOURCES[:-1])} or {self.SOURCES[-1]}"
            raise DataError(f"data: give exactly one of {choices} (got {given or 'none'})")
        if self.builtin and self.builtin not in self.BUILTINS:
            raise DataError(f"data.builtin: unknown data set {self.builtin!r}; available: {', '.join(self.BUILTINS)}")

    def carve(self, splits: DatasetDict, seed: int, stratify_by_column: str | None = "label") -> DatasetDict:
        """:func:`carve_missing_splits` with this section's ratios."""
        return carve_missing_splits(
            splits,
            validation_ratio=self.validation_ratio,
            test_ratio=self.test_ratio,
            seed=seed,
            stratify_by_column=stratify_by_column,
        )


@dataclass
class SplitFilesConfig(DataSourceConfig):
    """A ``data`` section that can also name one file (or folder) per split: ``train_file`` and optionally
    ``validation_file`` / ``test_file``, which must be different files. A subclass narrows ``format`` to the
    formats it reads and names the one of a folder in ``FOLDER_FORMAT``."""

    SOURCES = ("builtin", "hub", "train_file")
    FOLDER_FORMAT: ClassVar[str]

    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        given = [(f"{split}_file", path.resolve()) for split, path in self.split_files().items()]
        for i, (name, path) in enumerate(given):
            for other, other_path in given[:i]:
                if path == other_path:
                    raise DataError(f"data.{name} and data.{other} are the same file ({path}): splits must not overlap")

    def split_files(self) -> dict[str, Path]:
        """The files the section names, by split."""
        files = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        return {split: Path(path) for split, path in files.items() if path}

    def file_format(self, path: Path) -> str:
        """The format to read ``path`` in: ``format``, or for ``auto`` ``FOLDER_FORMAT`` for a folder and otherwise
        the format its extension names, if ``format`` allows it."""
        if not path.exists():
            raise DataError(f"data file not found: {path}")
        if self.format != "auto":
            return self.format
        if path.is_dir():
            return self.FOLDER_FORMAT
        detected = EXTENSION_FORMATS.get(path.suffix.lower())
        if detected not in get_args(get_type_hints(type(self))["format"]):
            raise DataError(f"{path}: cannot tell the format from the extension; set data.format")
        return detected


def read_raw_splits(config: SplitFilesConfig, read_file: Callable[[str, Path], Dataset]) -> dict[str, Dataset]:
    """The splits a section names, not yet validated: the built-in set as train, the Hub's splits, or
    ``read_file(split, path)`` for each split file."""
    if config.builtin:
        return {"train": config.BUILTINS[config.builtin]()}
    if config.hub:
        return read_hub(config.hub, config.hub_config)
    return {split: read_file(split, path) for split, path in config.split_files().items()}


def read_table(
    path: Path,
    file_format: str,
    *,
    encoding: str = "utf-8",
    column_names: list[str] | None = None,
    as_text: bool = True,
) -> Dataset:
    """One csv / tsv / json / jsonl / parquet / text file through ``datasets.load_dataset``; errors name the file.

    ``utf-8`` also reads a file that starts with a byte-order mark, and a byte that is not UTF-8 is reported with
    its line. ``column_names`` are for a CSV / TSV without header. With ``as_text`` every CSV / TSV column is read
    as a string; without it the reader guesses column types.
    """
    if not path.is_file():
        raise DataError(f"{path}: expected a file for format {file_format!r}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if file_format != "parquet":
        _check_decodable(path, encoding)
    builder, kwargs = _builder_for(path, file_format, encoding, column_names, as_text)
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more fields than the header, then drops or shifts data.
            warnings.simplefilter("error", pandas.errors.ParserWarning)
            return datasets.load_dataset(builder, data_files={"data": str(path)}, split="data", **kwargs)
    except Exception as error:  # pandas/pyarrow parse errors carry the line; keep their message
        raise DataError(f"{path}: cannot be read as {file_format}: {_root_cause(error)}") from error


def _builder_for(
    path: Path, file_format: str, encoding: str, column_names: list[str] | None, as_text: bool
) -> tuple[str, dict[str, Any]]:
    encoding = "utf-8-sig" if _is_utf8(encoding) else encoding
    if file_format in ("csv", "tsv"):
        kwargs: dict[str, Any] = {"encoding": encoding, "index_col": False}
        if file_format == "tsv":
            # Titles and reviews contain quote characters: a TSV is never quoted.
            kwargs.update(sep="\t", quoting=3)
        if column_names:
            kwargs.update(column_names=column_names)
        if as_text:
            # No guessing turns "007" into 7, "0" into an int or "NA" into a gap.
            columns = column_names or _csv_header(path, encoding, kwargs.get("sep", ","))
            kwargs.update(
                keep_default_na=False, features=datasets.Features({name: datasets.Value("string") for name in columns})
            )
        return "csv", kwargs
    if file_format in ("json", "jsonl"):
        return "json", {"encoding": encoding}
    if file_format == "text":
        return "text", {"encoding": encoding}
    return "parquet", {}


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf-8-sig", "utf8")


def _csv_header(path: Path, encoding: str, separator: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as handle:
        header = next(csv.reader(handle, delimiter=separator), [])
    if len(set(header)) != len(header) or not all(header):
        raise DataError(f"{path}: the header {header} has empty or repeated column names")
    return header


def _check_decodable(path: Path, encoding: str) -> None:
    if not _is_utf8(encoding):
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


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return f"{type(error).__name__}: {error}"


def load_dataset_dict(path: str, name: str | None = None, *, data_dir: str | None = None) -> DatasetDict:
    """``datasets.load_dataset`` of a Hub name, a local folder or a builder (with ``data_dir``), every split."""
    try:
        return datasets.load_dataset(path, name, data_dir=data_dir)
    except Exception as error:  # datasets raises many types: connection, missing file, bad config, bad metadata
        raise DataError(f"data: cannot load {data_dir or path!r}: {error}") from error


def splits_by_name(
    named: Iterable[tuple[str, Dataset]], aliases: Mapping[str, str] = SPLIT_ALIASES
) -> dict[str, Dataset]:
    """Datasets under their canonical split name (``dev`` → ``validation``); several under one name are
    concatenated, names that are not splits of ours (``unsupervised``) are left out."""
    parts: dict[str, list[Dataset]] = {}
    for name, dataset in named:
        if name in aliases:
            parts.setdefault(aliases[name], []).append(dataset)
    return {split: datasets.concatenate_datasets(group) for split, group in parts.items()}


def read_hub(hub: str, hub_config: str | None = None) -> dict[str, Dataset]:
    """The canonical splits of a Hub data set (or a local folder ``datasets.load_dataset`` reads); train required."""
    loaded = load_dataset_dict(hub, hub_config)
    splits = splits_by_name(loaded.items())
    if "train" not in splits:
        raise DataError(f"data.hub: {hub!r} has no train split (splits: {', '.join(loaded)})")
    return splits


def apply_bad_rows_policy(
    where: str,
    problems: Sequence[str],
    policy: str,
    *,
    what: str = "bad row(s)",
    hint: str = "set data.bad_rows: skip to drop them",
) -> int:
    """With ``policy`` ``error`` raise naming the first problems of ``where`` (and ``hint``, how to skip them
    instead); with ``skip`` log them. Returns how many rows are skipped."""
    if problems and policy == "error":
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(f"{where}: {len(problems)} {what}: {shown} ({hint})")
    if problems:
        logger.warning("%s: skipped %d %s, e.g. %s", where, len(problems), what, problems[0])
    return len(problems)


def carve_missing_splits(
    splits: DatasetDict,
    *,
    validation_ratio: float,
    test_ratio: float,
    seed: int,
    stratify_by_column: str | None = "label",
) -> DatasetDict:
    """Carve the missing ``validation`` / ``test`` splits out of ``train``, stratified, with a fixed seed.

    Both are carved together (so an 80/10/10 split of one file takes 20% once, then halves it), which keeps
    the result independent of which split is missing.
    """
    missing = {
        name: ratio for name, ratio in (("validation", validation_ratio), ("test", test_ratio)) if name not in splits
    }
    if not missing:
        return splits
    total = sum(missing.values())
    if not 0 < total < 1:
        raise DataError(f"split ratios for {', '.join(missing)} must add up to between 0 and 1, got {total}")
    train = splits["train"]
    stratify = stratify_by_column if stratify_by_column in train.column_names else None
    if stratify:
        _check_stratifiable(train[stratify], train.features[stratify])
    held_out = train.train_test_split(test_size=total, seed=seed, stratify_by_column=stratify)
    result = DatasetDict({**splits, "train": held_out["train"]})
    if len(missing) == 1:
        result[next(iter(missing))] = held_out["test"]
        return result
    second = held_out["test"].train_test_split(test_size=test_ratio / total, seed=seed, stratify_by_column=stratify)
    result["validation"], result["test"] = second["train"], second["test"]
    return result


def _check_stratifiable(labels: list, feature: object) -> None:
    counts = Counter(labels)
    rare = [label for label, count in counts.items() if count < 2]
    if rare:
        names = [feature.int2str(label) if hasattr(feature, "int2str") else str(label) for label in rare]
        raise DataError(
            f"label(s) {', '.join(map(str, names))} have fewer than 2 rows in train, too few to carve stratified "
            "validation/test splits: add data, or give validation_file and test_file"
        )
