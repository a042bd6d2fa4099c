"""The reading layer under every task's data: recipe source keys, split names, the Hub, the bad-row policy,
class labels.

A task's reader turns its ``data`` section into raw splits through :func:`read_raw_splits` (a built-in set, a
Hub data set or local folder that ``datasets.load_dataset`` understands, or one file per split read by
:func:`hfnlp.data.files.read_table` or the task's own folder reader), validates them its own way
(:func:`apply_bad_rows_policy` for the rows it rejects, the label helpers for its classes), then carves the
missing ``validation`` / ``test`` splits out of ``train`` (:meth:`DataSourceConfig.carve`, see
:mod:`hfnlp.data.carving`). Reading local files lives in :mod:`hfnlp.data.files`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, get_args, get_type_hints

import datasets
from datasets import Dataset, DatasetDict, concatenate_datasets

from hfnlp.data.carving import carve_missing_splits
from hfnlp.data.files import EXTENSION_FORMATS, read_lines
from hfnlp.errors import DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "val": "validation",
    "test": "test",
}


@dataclass
class DataSourceConfig:
    """The keys every task's ``data`` section shares: where the data comes from and how missing splits are carved.

    ``builtin`` names an embedded data set, ``hub`` a Hub data set (or a local folder that
    ``datasets.load_dataset`` understands) with ``hub_config`` its configuration; ``format`` is how a task reads
    its files (``auto`` tells it from the path); ``validation_ratio`` / ``test_ratio`` are the shares of train
    that become the splits a source does not define. ``train_on_validation`` adds the validation rows to train
    once the splits are made: the final refit of a recipe already chosen on validation (``hfnlp train --data``
    does it), when the validation scores no longer have to mean anything. A subclass lists its mutually exclusive
    source keys in ``SOURCES`` and its embedded data sets in ``BUILTINS``.
    """

    SOURCES: ClassVar[tuple[str, ...]] = ("builtin", "hub")
    BUILTINS: ClassVar[Mapping[str, Callable[..., Dataset]]] = {}

    builtin: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    format: str = "auto"
    validation_ratio: float = 0.1
    test_ratio: float = 0.1
    train_on_validation: bool = False

    def __post_init__(self) -> None:
        given = [name for name in self.SOURCES if getattr(self, name)]
        if len(given) != 1:
            choices = f"{', '.join(self.SOURCES[:-1])} or {self.SOURCES[-1]}"
            raise DataError(f"data: give exactly one of {choices} (got {given or 'none'})")
        if self.builtin and self.builtin not in self.BUILTINS:
            raise DataError(f"data.builtin: unknown data set {self.builtin!r}; available: {', '.join(self.BUILTINS)}")

    def carve(self, splits: DatasetDict, seed: int, stratify_by_column: str | None = "label") -> DatasetDict:
        """:func:`carve_missing_splits` with this section's ratios; then, with ``train_on_validation``, train holds
        the validation rows too (the validation split stays, for code that expects it)."""
        splits = carve_missing_splits(
            splits,
            validation_ratio=self.validation_ratio,
            test_ratio=self.test_ratio,
            seed=seed,
            stratify_by_column=stratify_by_column,
        )
        if self.train_on_validation:
            train = concatenate_datasets([splits["train"], splits["validation"].cast(splits["train"].features)])
            splits = DatasetDict({**splits, "train": train})
        return splits


@dataclass
class SplitFilesConfig(DataSourceConfig):
    """A ``data`` section that can also name one file (or folder) per split: ``train_file`` and optionally
    ``validation_file`` / ``test_file``, which must be different files. A subclass narrows ``format`` to the
    formats it reads, names the one of a folder in ``FOLDER_FORMAT`` and declares its ``*_column`` keys.

    ``columns_by_split`` overrides column keys for one split whose files name a column differently, e.g.
    ``{validation: {text_column: content}}`` when only the validation file calls its text column ``content``.
    A key listed in ``MULTI_COLUMN_KEYS`` may name a list of columns instead of one (there and in the overrides).
    """

    SOURCES = ("builtin", "hub", "train_file")
    FOLDER_FORMAT: ClassVar[str]
    MULTI_COLUMN_KEYS: ClassVar[tuple[str, ...]] = ()

    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    columns_by_split: dict[str, dict[str, str | list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        given = [(f"{split}_file", path.resolve()) for split, path in self.split_files().items()]
        for i, (name, path) in enumerate(given):
            for other, other_path in given[:i]:
                if path == other_path:
                    raise DataError(f"data.{name} and data.{other} are the same file ({path}): splits must not overlap")
        keys = [name for name in get_type_hints(type(self)) if name.endswith("_column")]
        for key in self.MULTI_COLUMN_KEYS:
            setattr(self, key, self._checked_column(key, getattr(self, key), f"data.{key}"))
        for split, columns in self.columns_by_split.items():
            if split not in SPLITS:
                raise DataError(f"data.columns_by_split: {split!r} is not a split; use {', '.join(SPLITS)}")
            for key in columns:
                if key not in keys:
                    raise DataError(
                        f"data.columns_by_split.{split}: {key!r} is not a column key; use {', '.join(keys)}"
                    )
                columns[key] = self._checked_column(key, columns[key], f"data.columns_by_split.{split}.{key}")

    def _checked_column(self, key: str, value: Any, where: str) -> str | list[str]:
        """``value`` as ``key`` may give it: a column name, or for a MULTI_COLUMN_KEYS key a list of distinct ones."""
        if isinstance(value, str):
            return value
        multi = key in self.MULTI_COLUMN_KEYS
        if not multi or not isinstance(value, list | tuple) or not all(isinstance(name, str) for name in value):
            expected = "a column name or a list of column names" if multi else "a column name"
            raise DataError(f"{where}: expected {expected}, got {value!r}")
        if not value:
            raise DataError(f"{where}: the list names no column; give at least one")
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise DataError(f"{where}: column(s) {', '.join(map(repr, repeated))} listed more than once")
        return list(value)

    def column(self, key: str, split: str) -> Any:
        """The column that ``key`` (e.g. ``text_column``) names in ``split``: its ``columns_by_split`` entry, or
        the section's value; for a MULTI_COLUMN_KEYS key it may be a list of columns (see :meth:`columns`)."""
        return self.columns_by_split.get(split, {}).get(key, getattr(self, key))

    def columns(self, key: str, split: str) -> list[str]:
        """The columns that ``key`` names in ``split``, as a list (of one for a key that names a single column)."""
        value = self.column(key, split)
        return [value] if isinstance(value, str) else list(value)

    def check_columns(self, columns: Mapping[str, Sequence[str]], keys: Sequence[str], where: str = "") -> None:
        """Refuse splits that lack a column ``keys`` name, naming every split's columns and the fix.

        ``columns`` are the column names of each split; ``where`` says where they come from (a file, the Hub).
        """
        missing: dict[str, dict[str, list[str]]] = {}
        for split, names in columns.items():
            for key in keys:
                absent = [name for name in self.columns(key, split) if name not in names]
                if absent:
                    missing.setdefault(split, {})[key] = absent
        if not missing:
            return
        lacks = "; ".join(
            f"{split} split: no column {' or '.join(repr(name) for absent in lacking.values() for name in absent)}; "
            "columns are " + ", ".join(columns[split])
            for split, lacking in missing.items()
        )
        others = [f"{split} split: {', '.join(names)}" for split, names in columns.items() if split not in missing]
        lacks += f" (columns of {'; '.join(others)})" if others else ""
        raise DataError(f"{where + ': ' if where else ''}{lacks}; {self._column_fix(columns, missing)}")

    def _column_fix(self, columns: Mapping[str, Sequence[str]], missing: Mapping[str, Mapping[str, list[str]]]) -> str:
        train = columns.get("train")
        if train is None or "train" in missing:
            header_less = self.format in ("auto", "csv", "tsv") and not getattr(self, "column_names", True)
            split, lacking = next(iter(missing.items()))
            listed = any(not isinstance(self.column(key, split), str) for key in lacking)
            names = "columns' names" if listed else "column's name"
            return f"set data.{' / data.'.join(lacking)} to the {names}" + (
                " (a file without a header line needs data.column_names instead)" if header_less else ""
            )
        fixes = {}
        for split, lacking in missing.items():
            # The split's own name for a column is the one train does not have.
            own = [name for name in columns[split] if name not in train]
            fix = own[0] if len(own) == 1 and sum(map(len, lacking.values())) == 1 else "..."
            fixes[split] = {}
            for key, absent in lacking.items():
                value = self.column(key, split)
                names = [fix if name in absent else name for name in self.columns(key, split)]
                fixes[split][key] = fix if isinstance(value, str) else f"[{', '.join(names)}]"
        shown = ", ".join(
            f"{split}: {{{', '.join(f'{key}: {name}' for key, name in keys.items())}}}" for split, keys in fixes.items()
        )
        return f"if the files name the column differently, set data.columns_by_split: {{{shown}}}"

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
    where: str, problems: Sequence[str], policy: str, *, what: str = "bad row(s)", key: str = "bad_rows", hint: str = ""
) -> int:
    """With ``policy`` ``error`` raise naming the first problems of ``where`` and how to skip them instead (``hint``,
    or by default the recipe key ``data.<key>``); with ``skip`` log them. Returns how many rows are skipped."""
    if problems and policy == "error":
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        hint = hint or f"to drop them instead, set data.{key}: skip in the recipe, or add --set data.{key}=skip"
        raise DataError(f"{where}: {len(problems)} {what}: {shown} ({hint})")
    if problems:
        logger.warning("%s: skipped %d %s, e.g. %s", where, len(problems), what, problems[0])
    return len(problems)


def as_label_id(label: Any) -> int | None:
    """``label`` as an integer id if it is one (an int, or a decimal integer written as text)."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int):
        return label
    if isinstance(label, str) and label.strip().isdecimal():
        return int(label)
    return None


def label_index(label: Any, label_ids: Mapping[str, int]) -> int | None:
    """The class of a raw label: a name of ``label_ids`` (an integer counts as its decimal name, as it would read
    from a CSV), else an integer id below ``len(label_ids)``; None if it is neither."""
    if isinstance(label, str | int) and not isinstance(label, bool) and str(label).strip() in label_ids:
        return label_ids[str(label).strip()]
    label_id = as_label_id(label)
    return label_id if label_id is not None and 0 <= label_id < len(label_ids) else None


def checked_label_names(names: Sequence[Any], where: str) -> list[str]:
    """Declared class names (``data.label_names`` or a label file) as strings; refuse blank and repeated names,
    which would silently merge classes or shift every later id."""
    names = [str(name).strip() for name in names]
    if "" in names:
        raise DataError(f"{where}: class {names.index('')} has an empty name; give every class a name")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{where}: repeated class name(s) {', '.join(map(repr, repeated))}; name each class once")
    return names


def read_label_file(path: Path) -> list[str]:
    """Class names from ``data.label_file``, one a line in id order (line 1 is class 0); trailing blank lines are
    ignored, a blank line between names is refused (skipping it would shift the ids of every later class)."""
    lines = read_lines(path, what="data.label_file")
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if blank:
        raise DataError(f"{path}, line {blank[0]}: blank line between class names (line N names class N-1); remove it")
    if not lines:
        raise DataError(f"{path}: the label file names no class")
    return checked_label_names(lines, str(path))


def infer_label_names(column: Sequence[Any], name: str) -> list[str]:
    """The classes of a train label column when the recipe declares none.

    The labels must be of one kind (see :func:`_refuse_mixed_label_kinds`). Integer ids must be exactly
    ``0..K-1``: ids 0 and 1000000 would otherwise make a 1,000,001-class model. Names are sorted.
    """
    _refuse_mixed_label_kinds(column, name)
    values = {value for value in column if value not in (None, "")}
    ids = sorted({as_label_id(v) for v in values})
    if not values or None in ids:
        return sorted({str(v).strip() for v in values})
    if ids != list(range(len(ids))):
        names = [str(i) for i in ids]
        listed = f"[{', '.join(repr(n) for n in names)}]" if len(names) <= 20 else f"the {len(names)} ids in id order"
        raise DataError(
            f"train split: the label column {name!r} holds the integer ids {_some(names)}, not 0..{len(ids) - 1} "
            f"without gaps (a model has one output per id from 0 to the largest); to use them as the names of "
            f"{len(ids)} classes, set data.label_names: {listed}, or renumber the labels 0..{len(ids) - 1}"
        )
    return [str(i) for i in ids]


def _some(values: Sequence[str], shown: int = 10) -> str:
    return ", ".join(values[:shown]) + (f", … ({len(values)} in all)" if len(values) > shown else "")


def _label_kind(value: Any) -> str:
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return "booleans"
    if as_label_id(value) is not None:
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


def check_classes(label_names: Sequence[str], labels_by_split: Mapping[str, Sequence[int]], declared_by: str) -> None:
    """Refuse a class set a classifier cannot learn, before training: fewer than two classes, or a class with no
    train row (its output could never be learnt: usually a typo in the class list or a wrong file). A class
    absent from a validation or test file is only logged. ``declared_by`` names where the classes come from."""
    present = {split: set(labels) for split, labels in labels_by_split.items()}
    if len(label_names) < 2 or len(present["train"]) < 2:
        found = ", ".join(label_names[i] for i in sorted(present["train"])) or "none"
        raise DataError(
            f"train split: a classifier needs at least two classes with rows; {declared_by} gives "
            f"{len(label_names)} class(es) and train has rows of: {found}"
        )
    for split, ids in present.items():
        absent = [name for i, name in enumerate(label_names) if i not in ids]
        if absent and split == "train":
            raise DataError(
                f"train split: no rows for class(es) {_some(absent)} of {declared_by}; add train rows for them, or "
                "remove them from the class list (check for typos and for the right train file)"
            )
        if absent:
            logger.warning(
                "%s split: no rows for class(es) %s; its per-class scores will be empty", split, _some(absent)
            )
