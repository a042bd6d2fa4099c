"""Describing a file nobody described: :func:`guess_data_section` finds the text and label columns of a file."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from hfnlp.data.reading import as_label_id
from hfnlp.data.text import TextDataConfig, read_text_file
from hfnlp.errors import DataError

_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")

LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "y")
GUESS_SAMPLE_ROWS = 5000  # rows read to guess the columns of a file
# A label column has at least this many rows per distinct value on average: an id or a free-text column does not.
MIN_ROWS_PER_LABEL = 5


def guess_data_section(
    train_file: str,
    *,
    validation_file: str | None = None,
    test_file: str | None = None,
    text_columns: Sequence[str] = (),
    label_column: str | None = None,
    label_file: str | None = None,
    file_format: str = "auto",
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    bad_rows: str = "error",
) -> tuple[dict[str, Any], list[str]]:
    """The ``data`` section for files described only as far as the user did, and why each guessed key was chosen
    (by dotted key, e.g. ``data.text_column``).

    The text column (unless given) is the column of strings (mostly not numbers) with the longest mean length; the
    label column (unless given) one of the others with at most one distinct value per MIN_ROWS_PER_LABEL rows,
    preferring the names in LABEL_COLUMN_NAMES, then the fewest distinct values. A CSV / TSV whose first row holds
    a number is read as header-less. A folder is read as ``label_folders``.
    """
    section: dict[str, Any] = {"train_file": train_file}
    section.update({k: v for k, v in (("validation_file", validation_file), ("test_file", test_file)) if v})
    if label_file:
        section["label_file"] = label_file
    if encoding != "utf-8":
        section["encoding"] = encoding
    if bad_rows != "error":
        section["bad_rows"] = bad_rows
    if len(text_columns) > 1:
        raise DataError(
            f"several text columns ({', '.join(text_columns)}): the data layer reads one text column "
            "(data.text_column); joining them needs a data.text_columns key in TextDataConfig"
        )
    config = TextDataConfig(**section, format=file_format, column_names=list(column_names) if column_names else None)
    resolved = config.file_format(Path(train_file))
    section["format"] = resolved
    if resolved == "label_folders":
        return section, {"data.format": "a folder: one sub-folder of .txt files per label"}
    guessed: dict[str, str] = {}
    generated = resolved in ("csv", "tsv") and not column_names and _first_row_is_data(Path(train_file), resolved)
    if generated:
        column_names = [f"column_{i + 1}" for i in range(len(_first_row(Path(train_file), resolved)))]
        guessed["data.column_names"] = "the first row holds a number: a file without header"
    config = TextDataConfig(**section, column_names=list(column_names) if column_names else None)
    full = read_text_file(train_file, config)
    table = full.select(range(min(len(full), GUESS_SAMPLE_ROWS)))
    text_column = text_columns[0] if text_columns else _guess_text_column(table, train_file, guessed)
    label_column = label_column or _guess_label_column(table, text_column, train_file, guessed)
    for column in (text_column, label_column):
        if column not in table.column_names:
            raise DataError(f"{train_file}: no column {column!r}; columns are {', '.join(table.column_names)}")
    if not label_file:
        ids = {as_label_id(value) for value in full.select_columns([label_column])[:][label_column] if value != ""}
        if None not in ids and sorted(ids) != list(range(len(ids))):
            # AG News' 1..4: as ids they would make a class 0 without rows, which the data layer refuses
            section["label_names"] = [str(i) for i in sorted(ids)]
            guessed["data.label_names"] = f"the label ids {_id_range(sorted(ids))} do not run 0..{len(ids) - 1}"
    if generated:  # name the chosen columns text and label
        renamed = {text_column: "text", label_column: "label"}
        column_names = [renamed.get(name, name) for name in column_names]
        text_column, label_column = "text", "label"
    if column_names:
        section["column_names"] = list(column_names)
    section["text_column"] = text_column
    section["label_column"] = label_column
    return section, guessed


def _id_range(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) if len(ids) <= 5 else f"{ids[0]}, {ids[1]}, … {ids[-1]}"


def _first_row(path: Path, file_format: str) -> list[str]:
    # Only numbers matter here, which any ASCII-compatible encoding reads alike; the data layer checks the rest.
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        if file_format == "tsv":  # the data layer reads a TSV unquoted
            return handle.readline().rstrip("\r\n").split("\t")
        return next(csv.reader(handle), [])


def _first_row_is_data(path: Path, file_format: str) -> bool:
    """A header names columns; a number in the first row (THUCNews' ``title<TAB>3``) is a value."""
    return any(_NUMBER.fullmatch(cell.strip()) for cell in _first_row(path, file_format))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) or (isinstance(value, str) and bool(_NUMBER.fullmatch(value.strip())))


def _guess_text_column(table: datasets.Dataset, path: str, guessed: dict[str, str]) -> str:
    lengths = {}
    for column in table.column_names:
        values = [value for value in table[column] if value not in (None, "")]
        if values and all(isinstance(v, str) for v in values) and sum(map(_is_number, values)) < len(values) / 2:
            lengths[column] = sum(map(len, values)) / len(values)
    if not lengths:
        raise DataError(
            f"{path}: no text-like column (strings that are mostly not numbers); columns are "
            f"{', '.join(table.column_names)}; give --text-column"
        )
    # A column named like a label ("sentiment": positive / negative) is text only when nothing else is.
    others = {c: n for c, n in lengths.items() if c.lower() not in LABEL_COLUMN_NAMES} or lengths
    chosen = max(others, key=others.__getitem__)
    guessed["data.text_column"] = f"guessed: the longest mean length, {others[chosen]:.0f} characters"
    return chosen


def _guess_label_column(table: datasets.Dataset, text_column: str, path: str, guessed: dict[str, str]) -> str:
    limit = max(2, len(table) // MIN_ROWS_PER_LABEL)
    candidates = {}
    for column in table.column_names:
        if column == text_column:
            continue
        distinct = len({str(value) for value in table[column] if value not in (None, "")})
        if 2 <= distinct <= limit:
            candidates[column] = distinct
    if not candidates:
        raise DataError(
            f"{path}: no label-like column (2 to {limit} distinct values in {len(table):,} rows) besides "
            f"{text_column!r}; columns are {', '.join(table.column_names)}; give --label-column"
        )
    chosen = min(candidates, key=lambda c: (c.lower() not in LABEL_COLUMN_NAMES, candidates[c]))
    named = "named like a label, " if chosen.lower() in LABEL_COLUMN_NAMES else ""
    guessed["data.label_column"] = f"guessed: {named}{candidates[chosen]} distinct values"
    return chosen
