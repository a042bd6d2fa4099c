"""Reading local files: one table file per split, text lines, format detection and encodings.

:func:`read_table` reads one csv / tsv / json / jsonl / parquet / text file through ``datasets.load_dataset``
(``EXTENSION_FORMATS`` maps file extensions to formats); :func:`read_lines` reads a text file line by line;
:func:`check_encoding` refuses an unknown ``data.encoding``. Errors name the file and, where it can be found,
the line: bytes that are not UTF-8, the first line that is not valid JSON, a file with no data rows.
"""

from __future__ import annotations

import codecs
import csv
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfnlp.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset

EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}


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
    # Imported here: datasets and pandas take a second and a half to import, which `hfnlp predict` on a .txt file
    # (read_lines) never needs.
    import datasets
    import pandas

    if not path.is_file():
        raise DataError(f"{path}: expected a file for format {file_format!r}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    check_encoding(encoding)
    try:
        if file_format != "parquet":
            _check_decodable(path, encoding)
        builder, kwargs = _builder_for(path, file_format, encoding, column_names, as_text)
        with warnings.catch_warnings():
            # pandas only warns when a row has more fields than the header, then drops or shifts data.
            warnings.simplefilter("error", pandas.errors.ParserWarning)
            return datasets.load_dataset(builder, data_files={"data": str(path)}, split="data", **kwargs)
    except DataError:
        raise
    except Exception as error:  # pandas/pyarrow parse errors carry the line; keep their message
        if file_format != "parquet" and _holds_no_rows(path, file_format, encoding, column_names):
            raise DataError(
                f"{path}: holds no data rows" + (" (only a header line)" if file_format in ("csv", "tsv") else "")
            ) from error
        if file_format in ("json", "jsonl"):
            bad_line = _first_bad_json_line(path, encoding)
            if bad_line:
                raise DataError(f"{path}, {bad_line}") from error
        raise DataError(f"{path}: cannot be read as {file_format}: {_root_cause(error)}") from error


def read_lines(path: Path, encoding: str = "utf-8", what: str = "file") -> list[str]:
    """The lines of a text file, split at line feeds only (a ``\r\n`` ending is removed, a byte-order mark
    skipped); errors name the file. ``str.splitlines`` would also split inside a line at U+2028, U+0085, form
    feeds and other separators that real texts contain."""
    check_encoding(encoding)
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if not path.is_file():
        raise DataError(f"{what} {path} is a folder, not a file")
    if _is_utf8(encoding):
        _check_decodable(path, encoding)
        encoding = "utf-8-sig"
    try:
        with path.open(encoding=encoding, newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not valid {encoding} text ({error.reason} at byte {error.start})") from error
    except OSError as error:
        raise DataError(f"{path}: cannot be read: {error.strerror or error}") from error
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the line feed that ends the last line
    return [line.removesuffix("\r") for line in lines]


def check_encoding(encoding: str) -> None:
    """Refuse an encoding name Python does not know (``data.encoding``)."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"data.encoding: unknown encoding {encoding!r} (e.g. utf-8, gbk, gb18030, latin-1)") from None


def _holds_no_rows(path: Path, file_format: str, encoding: str, column_names: list[str] | None) -> bool:
    lines = [line for line in read_lines(path, encoding) if line.strip()]
    if file_format in ("csv", "tsv"):
        return len(lines) <= (0 if column_names else 1)
    return not lines or (file_format == "json" and "".join(lines).replace(" ", "") == "[]")


def _first_bad_json_line(path: Path, encoding: str) -> str | None:
    """Where a JSON / JSON-lines file stops being valid JSON: ``line N: reason: 'start of the line'``."""
    lines = read_lines(path, encoding)
    text = "\n".join(lines)
    if text.lstrip().startswith("["):  # one JSON document: the decoder knows the line
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            return f"line {error.lineno}: not valid JSON ({error.msg}): {lines[error.lineno - 1][:80]!r}"
        return None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError as error:
                return (
                    f"line {number}: not a JSON object on one line ({error.msg} at column {error.colno}): {line[:80]!r}"
                )
    return None


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
            import datasets

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
    try:
        handle = path.open("rb")
    except OSError as error:
        raise DataError(f"{path}: cannot be read: {error.strerror or error}") from error
    with handle:
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
