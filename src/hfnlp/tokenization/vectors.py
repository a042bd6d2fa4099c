"""Pretrained word / character vectors: build an embedding matrix for a tokenizer's vocabulary.

Supported files:

* word2vec text format: a ``count dim`` header line, then ``token v1 ... v_dim`` per line;
* GloVe text format: the same without the header;
* NumPy ``.npy`` (one 2-D array) or ``.npz`` (one array, or one named ``vectors`` / ``embeddings``), with a
  separate vocabulary file giving each row's token: JSON ``{token: row}`` or one token per line.

Text files are streamed: only the lines of tokens in the vocabulary are parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hfnlp.data.files import read_lines
from hfnlp.errors import DataError

PAD_TOKEN = "[PAD]"
_NPZ_KEYS = ("vectors", "embeddings")


@dataclass(frozen=True)
class VectorCoverage:
    """How much of a vocabulary a vectors file covers; ``str()`` gives a one-line summary for logs."""

    found: int
    total: int
    dim: int
    source: str
    ratio: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratio", self.found / self.total if self.total else 0.0)

    def __str__(self) -> str:
        return f"{self.found:,} / {self.total:,} tokens ({self.ratio:.1%}) found in {self.source}"


def load_pretrained_vectors(
    path: str | Path,
    vocab: dict[str, int],
    *,
    vocab_path: str | Path | None = None,
    lowercase: bool = False,
) -> tuple[torch.Tensor, VectorCoverage]:
    """Build a ``(len(vocab), dim)`` float32 embedding matrix from a pretrained vectors file.

    Rows of tokens found in the file hold their vectors. The other rows are drawn from a normal distribution
    with mean 0 and the found vectors' standard deviation, using torch's global random generator (seed it for
    reproducible rows). The ``[PAD]`` row, if the vocabulary has one, is zero.

    Args:
        path: The vectors file (word2vec or GloVe text, ``.npy`` or ``.npz``).
        vocab: Token to row index, indices ``0 .. len(vocab) - 1``.
        vocab_path: For ``.npy`` / ``.npz`` only: the tokens of the array's rows (JSON ``{token: row}`` or
            one token per line).
        lowercase: Lowercase the file's tokens before looking them up (for a lowercased vocabulary); when
            several file tokens then coincide, the first one in the file wins, as for duplicate tokens.

    Returns:
        The embedding matrix and a :class:`VectorCoverage`.

    Raises:
        DataError: A missing, empty or malformed file (a vector of the wrong size names its line), a missing
            ``vocab_path`` for NumPy files, a vocabulary with out-of-range indices, or no token found at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pretrained vectors file not found: {path}")
    _check_vocab(vocab)
    if path.suffix in (".npy", ".npz"):
        found, dim = _read_numpy(path, vocab, vocab_path, lowercase)
    else:
        if vocab_path is not None:
            raise DataError(f"{path}: vocab_path is only for .npy / .npz files; text files name their tokens")
        found, dim = _read_text(path, vocab, lowercase)
    if not found:
        raise DataError(
            f"none of the {len(vocab):,} vocabulary tokens is in {path}: wrong file for this tokenizer"
            f"{'' if lowercase else ', or try lowercase=True'}?"
        )

    indices = torch.tensor(list(found), dtype=torch.long)
    rows = torch.from_numpy(np.stack(list(found.values())))
    # Scaling random rows like the found ones keeps unknown tokens from standing out by norm alone.
    std = rows.std().item() if rows.numel() > 1 else 1.0
    matrix = torch.randn(len(vocab), dim) * std
    matrix[indices] = rows
    if PAD_TOKEN in vocab:
        matrix[vocab[PAD_TOKEN]] = 0.0
    return matrix, VectorCoverage(found=len(found), total=len(vocab), dim=dim, source=path.name)


def _check_vocab(vocab: dict[str, int]) -> None:
    if not vocab:
        raise DataError("cannot load pretrained vectors for an empty vocabulary")
    for token, index in vocab.items():
        if not 0 <= index < len(vocab):
            raise DataError(f"vocabulary index of {token!r} is {index}; indices must be in [0, {len(vocab)})")


def _read_text(path: Path, vocab: dict[str, int], lowercase: bool) -> tuple[dict[int, np.ndarray], int]:
    found: dict[int, np.ndarray] = {}
    dim = declared_count = None
    vector_lines = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for line_number, line in enumerate(lines, start=1):
                token, _, values = line.rstrip("\r\n").partition(" ")
                if not token and not values.strip():
                    continue
                if line_number == 1 and _is_word2vec_header(token, values):
                    declared_count, dim = int(token), int(values)
                    continue
                vector_lines += 1
                index = vocab.get(token.lower() if lowercase else token)
                # Checking sizes only on the lines that are used keeps skipped lines unparsed (streaming).
                if index is None and dim is not None:
                    continue
                vector = _parse_vector(values, path, line_number)
                if dim is None:
                    dim = vector.size
                elif vector.size != dim:
                    raise DataError(
                        f"{path}:{line_number}: vector for {token!r} has {vector.size} values, expected {dim}"
                    )
                if index is not None and index not in found:
                    found[index] = vector
    except UnicodeDecodeError as error:
        message = f"{path}: not a UTF-8 text vectors file (binary word2vec is not supported): {error}"
        raise DataError(message) from error
    if dim is None or vector_lines == 0:
        raise DataError(f"{path}: empty file, no vectors in it")
    if declared_count is not None and declared_count != vector_lines:
        raise DataError(
            f"{path}: header says {declared_count:,} vectors, the file has {vector_lines:,} (truncated?)",
        )
    return found, dim


def _is_word2vec_header(first: str, rest: str) -> bool:
    fields = rest.split()
    return first.isdigit() and len(fields) == 1 and fields[0].isdigit()


def _parse_vector(values: str, path: Path, line_number: int) -> np.ndarray:
    try:
        vector = np.array(values.split(), dtype=np.float32)
    except ValueError as error:
        raise DataError(f"{path}:{line_number}: not a vector of numbers: {error}") from error
    if vector.size == 0:
        raise DataError(f"{path}:{line_number}: token without a vector")
    return vector


def _read_numpy(
    path: Path, vocab: dict[str, int], vocab_path: str | Path | None, lowercase: bool
) -> tuple[dict[int, np.ndarray], int]:
    if vocab_path is None:
        raise DataError(f"{path}: a NumPy vectors file needs vocab_path, the tokens of its rows")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                array = archive[_npz_key(path, archive.files)]
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: cannot read as a NumPy array without pickle: {error}") from error
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise DataError(
            f"{path}: expected a 2-D numeric array (rows x dim), got shape {array.shape}, {array.dtype}",
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{path}: empty array {array.shape}")

    found: dict[int, np.ndarray] = {}
    for token, row in _read_vocab_file(Path(vocab_path)):
        if not 0 <= row < array.shape[0]:
            raise DataError(
                f"{vocab_path}: token {token!r} has row {row}, but {path} has {array.shape[0]} rows",
            )
        index = vocab.get(token.lower() if lowercase else token)
        if index is not None and index not in found:
            found[index] = array[row].astype(np.float32)
    return found, array.shape[1]


def _npz_key(path: Path, keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in _NPZ_KEYS:
        if key in keys:
            return key
    raise DataError(f"{path}: holds arrays {keys}; expected one array, or one named {' or '.join(_NPZ_KEYS)}")


def _read_vocab_file(vocab_path: Path) -> list[tuple[str, int]]:
    """``(token, row)`` pairs in file order from a JSON ``{token: row}`` or a one-token-per-line file."""
    if not vocab_path.is_file():
        raise DataError(f"vocabulary file not found: {vocab_path}")
    if vocab_path.suffix != ".json":
        # Line feeds only: a token may be U+2028 or U+0085, which str.splitlines would take for line ends.
        return [(token, row) for row, token in enumerate(read_lines(vocab_path, what="vocabulary file"))]
    text = vocab_path.read_text(encoding="utf-8")
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{vocab_path}: not valid JSON: {error}") from error
    if not isinstance(mapping, dict) or not all(isinstance(row, int) for row in mapping.values()):
        raise DataError(f"{vocab_path}: expected a JSON object mapping each token to its row number")
    return list(mapping.items())
