"""Describing a file nobody described: :func:`guess_data_section` finds the text and label columns of a file."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from hfnlp.data.reading import as_label_id
from hfnlp.data.text import TextDataConfig, read_text_file
from hfnlp.errors import DataError

_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
_LETTER = re.compile(r"[^\W\d_]")
# Scripts written without spaces between words: Thai, kana, Han ideographs (with extensions and compatibility forms).
_UNSPACED_SCRIPT = re.compile(
    "[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)

LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "y")
GUESS_SAMPLE_ROWS = 5000  # rows read to guess the columns of a file
# A label column has at least this many rows per distinct value on average: an id or a free-text column does not.
MIN_ROWS_PER_LABEL = 5
# A prose column (a text column candidate) has at least this share of distinct values among its sampled values, and
# at least this share of values that read as prose (two words with letters, or a letter of an unspaced script).
PROSE_MIN_DISTINCT_SHARE = 0.5
PROSE_MIN_WORDY_SHARE = 0.5
# Every prose column whose mean length is at least this share of the longest one's is a text column: AG News' titles
# (42 characters) join its descriptions (192: 22%), a 10-character heading of 76-character reviews (13%) does not.
TEXT_MIN_LENGTH_SHARE = 0.15


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

    The text columns (unless given) are the prose columns (see :func:`_guess_text_columns`) whose mean length is at
    least TEXT_MIN_LENGTH_SHARE of the longest one's, in file order; ``text_column`` is then their list (the data
    layer joins their values with line breaks), or the name when there is one. The label column (unless given) is
    one of the others with at most one distinct value per MIN_ROWS_PER_LABEL rows, preferring the names in
    LABEL_COLUMN_NAMES, then the fewest distinct values. A CSV / TSV whose first row holds a number is read as
    header-less. A folder is read as ``label_folders``.
    """
    section: dict[str, Any] = {"train_file": train_file}
    section.update({k: v for k, v in (("validation_file", validation_file), ("test_file", test_file)) if v})
    if label_file:
        section["label_file"] = label_file
    if encoding != "utf-8":
        section["encoding"] = encoding
    if bad_rows != "error":
        section["bad_rows"] = bad_rows
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
    # Rows spread over the file: one sorted by label (all negatives first) shows every class in the sample.
    picked = np.random.default_rng(0).choice(len(full), size=min(len(full), GUESS_SAMPLE_ROWS), replace=False)
    table = full.select(np.sort(picked))
    for column in (*text_columns, *([label_column] if label_column else [])):  # what the user named, before guessing
        if column not in table.column_names:
            raise DataError(f"{train_file}: no column {column!r}; columns are {', '.join(table.column_names)}")
    texts = list(text_columns) or _guess_text_columns(table, label_column, train_file, guessed)
    label_column = label_column or _guess_label_column(table, texts, train_file, guessed)
    if label_column in texts:
        raise DataError(f"{train_file}: column {label_column!r} cannot be both a text column and the label column")
    if not label_file:
        ids = {as_label_id(value) for value in full.select_columns([label_column])[:][label_column] if value != ""}
        if None not in ids and sorted(ids) != list(range(len(ids))):
            # AG News' 1..4: as ids they would make a class 0 without rows, which the data layer refuses
            section["label_names"] = [str(i) for i in sorted(ids)]
            guessed["data.label_names"] = f"the label ids {_id_range(sorted(ids))} do not run 0..{len(ids) - 1}"
    if generated:  # name the chosen columns text (text_1, text_2, ... when several) and label
        renamed = {name: "text" if len(texts) == 1 else f"text_{i + 1}" for i, name in enumerate(texts)}
        renamed[label_column] = "label"
        column_names = [renamed.get(name, name) for name in column_names]
        texts, label_column = [renamed[name] for name in texts], "label"
    if column_names:
        section["column_names"] = list(column_names)
    section["text_column"] = texts[0] if len(texts) == 1 else texts
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


def _reads_as_prose(value: str) -> bool:
    """Two white-space separated words with a letter, or a letter of a script written without spaces: not an id, a
    code, a URL, a date or a single category word."""
    return sum(1 for word in value.split() if _LETTER.search(word)) >= 2 or bool(_UNSPACED_SCRIPT.search(value))


def _guess_text_columns(
    table: datasets.Dataset, label_column: str | None, path: str, guessed: dict[str, str]
) -> list[str]:
    """The text columns of a sample of a file, in file order.

    A string column is a column of strings that are mostly (at least half) not numbers, other than the label column
    (a column named like a label, e.g. "sentiment", counts only when no other does). A prose column is a string
    column with at least PROSE_MIN_DISTINCT_SHARE distinct values (not a category) of which at least
    PROSE_MIN_WORDY_SHARE read as prose (:func:`_reads_as_prose`: not ids, codes, URLs or dates). The text columns
    are the prose columns whose mean length is at least TEXT_MIN_LENGTH_SHARE of the longest prose column's; without
    a prose column, the string column with the longest mean length.
    """
    lengths, prose_columns = {}, set()
    for column in table.column_names:
        if column == label_column:
            continue
        values = [value for value in table[column] if value not in (None, "")]
        if values and all(isinstance(v, str) for v in values) and sum(map(_is_number, values)) < len(values) / 2:
            lengths[column] = sum(map(len, values)) / len(values)
            distinct = len(set(values)) >= PROSE_MIN_DISTINCT_SHARE * len(values)
            if distinct and sum(map(_reads_as_prose, values)) >= PROSE_MIN_WORDY_SHARE * len(values):
                prose_columns.add(column)
    if not lengths:
        raise DataError(
            f"{path}: no text-like column (strings that are mostly not numbers); columns are "
            f"{', '.join(table.column_names)}; give --text-column"
        )
    # A column named like a label ("sentiment": positive / negative) is text only when nothing else is.
    others = {c: n for c, n in lengths.items() if c.lower() not in LABEL_COLUMN_NAMES} or lengths
    prose = {c: n for c, n in others.items() if c in prose_columns}
    if not prose:
        chosen = max(others, key=others.__getitem__)
        guessed["data.text_column"] = (
            f"guessed: the longest mean length, {others[chosen]:.0f} characters; no column holds mostly distinct, "
            "word-like values"
        )
        return [chosen]
    kind = "columns of mostly distinct, word-like values (not ids, codes, dates or categories)"
    longest = max(prose.values())
    chosen = [c for c in table.column_names if c in prose and prose[c] >= TEXT_MIN_LENGTH_SHARE * longest]
    share = f"{TEXT_MIN_LENGTH_SHARE:.0%}"
    if len(chosen) == 1:
        left_out = "" if len(prose) == 1 else f"; no other reaches {share} of it"
        guessed["data.text_column"] = (
            f"guessed: the longest mean length, {longest:.0f} characters, among the {kind}{left_out}"
        )
        return chosen
    means = ", ".join(f"{c} {prose[c]:.0f}" for c in chosen)
    guessed["data.text_column"] = (
        f"guessed: {', '.join(chosen)}: the {kind} with a mean length of at least {share} of the longest's "
        f"({means} characters); a row's text joins them, one per line"
    )
    return chosen


def _guess_label_column(
    table: datasets.Dataset, text_columns: Sequence[str], path: str, guessed: dict[str, str]
) -> str:
    limit = max(2, len(table) // MIN_ROWS_PER_LABEL)
    candidates, single = {}, {}
    for column in table.column_names:
        if column in text_columns:
            continue
        values = {str(value) for value in table[column] if value not in (None, "")}
        if 2 <= len(values) <= limit:
            candidates[column] = len(values)
        elif len(values) == 1 and column.lower() in LABEL_COLUMN_NAMES:
            single[column] = values.pop()
    if not candidates and single:  # the label column is there, with one class: say so rather than "no column"
        column, value = next(iter(single.items()))
        raise DataError(
            f"{path}: column {column!r} holds one label ({value!r}) in all {len(table):,} rows; a classifier needs "
            "rows of two classes or more"
        )
    if not candidates:
        raise DataError(
            f"{path}: no label-like column (2 to {limit} distinct values in {len(table):,} rows) besides "
            f"{', '.join(map(repr, text_columns))}; columns are {', '.join(table.column_names)}; give --label-column"
        )
    chosen = min(candidates, key=lambda c: (c.lower() not in LABEL_COLUMN_NAMES, candidates[c]))
    named = "named like a label, " if chosen.lower() in LABEL_COLUMN_NAMES else ""
    guessed["data.label_column"] = f"guessed: {named}{candidates[chosen]} distinct values"
    return chosen
