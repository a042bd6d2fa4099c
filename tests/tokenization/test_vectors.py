"""Pretrained vectors: word2vec / GloVe text and NumPy formats, coverage, padding row, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hfnlp.errors import DataError
from hfnlp.tokenization.vectors import VectorCoverage, load_pretrained_vectors

VOCAB = {"[PAD]": 0, "[UNK]": 1, "apple": 2, "banana": 3, "cherry": 4}
VECTORS = {"apple": [0.5, -1.0, 2.0], "banana": [1.5, 0.25, -0.75], "durian": [9.0, 9.0, 9.0]}
TENCENT = Path("/work/shared/data/embeddings/tencent_char_200d.txt")


def write_text(path: Path, vectors: dict[str, list[float]], header: bool) -> Path:
    lines = [f"{len(vectors)} {len(next(iter(vectors.values())))}"] if header else []
    lines += [" ".join([token, *map(str, vector)]) for token, vector in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "header"), [("w2v.txt", True), ("glove.6B.3d.txt", False)])
def test_text_formats_fill_found_rows_and_report_coverage(tmp_path: Path, name: str, header: bool) -> None:
    torch.manual_seed(0)
    matrix, coverage = load_pretrained_vectors(write_text(tmp_path / name, VECTORS, header), VOCAB)

    assert matrix.shape == (5, 3) and matrix.dtype == torch.float32
    assert torch.equal(matrix[2], torch.tensor(VECTORS["apple"]))
    assert torch.equal(matrix[3], torch.tensor(VECTORS["banana"]))
    assert torch.count_nonzero(matrix[0]) == 0
    assert torch.count_nonzero(matrix[1]) == 3 and torch.count_nonzero(matrix[4]) == 3
    assert (coverage.found, coverage.total, coverage.dim) == (2, 5, 3)
    assert coverage.ratio == pytest.approx(0.4)
    assert str(coverage) == f"2 / 5 tokens (40.0%) found in {name}"


def test_missing_rows_are_random_with_the_found_vectors_scale(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    vocab = {f"w{i}": i for i in range(400)}
    found = {f"w{i}": (generator.standard_normal(50) * 7.0).tolist() for i in range(0, 400, 2)}
    torch.manual_seed(0)
    matrix, coverage = load_pretrained_vectors(write_text(tmp_path / "v.txt", found, header=True), vocab)

    assert coverage.found == 200 and coverage.ratio == 0.5
    missing = matrix[1::2]
    assert missing.std().item() == pytest.approx(matrix[0::2].std().item(), rel=0.1)
    assert abs(missing.mean().item()) < 0.5
    assert torch.unique(missing, dim=0).shape[0] == 200


def test_coverage_summary_uses_thousands_separators() -> None:
    coverage = VectorCoverage(found=4512, total=5000, dim=200, source="tencent_char_200d.txt")
    assert str(coverage) == "4,512 / 5,000 tokens (90.2%) found in tencent_char_200d.txt"
    assert coverage.ratio == pytest.approx(0.9024)


def test_lines_of_tokens_outside_the_vocabulary_are_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("apple 1 2 3\nunused this line is not a vector at all\nbanana 4 5 6\n", encoding="utf-8")
    matrix, coverage = load_pretrained_vectors(path, VOCAB)
    assert coverage.found == 2
    assert torch.equal(matrix[3], torch.tensor([4.0, 5.0, 6.0]))


def test_lowercase_and_first_occurrence_wins(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("Apple 1 1\napple 2 2\nBANANA 3 3\n", encoding="utf-8")

    matrix, coverage = load_pretrained_vectors(path, VOCAB)
    assert coverage.found == 1 and torch.equal(matrix[2], torch.tensor([2.0, 2.0]))

    matrix, coverage = load_pretrained_vectors(path, VOCAB, lowercase=True)
    assert coverage.found == 2
    assert torch.equal(matrix[2], torch.tensor([1.0, 1.0]))
    assert torch.equal(matrix[3], torch.tensor([3.0, 3.0]))


@pytest.mark.parametrize("vocab_format", ["json", "txt"])
def test_npy_with_vocab_file(tmp_path: Path, vocab_format: str) -> None:
    tokens = ["durian", "banana", "apple"]
    array = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.save(tmp_path / "vectors.npy", array)
    vocab_path = tmp_path / f"vocab.{vocab_format}"
    if vocab_format == "json":
        vocab_path.write_text(json.dumps({token: row for row, token in enumerate(tokens)}), encoding="utf-8")
    else:
        vocab_path.write_text("\n".join(tokens) + "\n", encoding="utf-8")

    matrix, coverage = load_pretrained_vectors(tmp_path / "vectors.npy", VOCAB, vocab_path=vocab_path)

    assert matrix.dtype == torch.float32 and matrix.shape == (5, 4)
    assert torch.equal(matrix[2], torch.tensor([8.0, 9.0, 10.0, 11.0]))
    assert torch.equal(matrix[3], torch.tensor([4.0, 5.0, 6.0, 7.0]))
    assert torch.count_nonzero(matrix[0]) == 0
    assert (coverage.found, coverage.dim, coverage.source) == (2, 4, "vectors.npy")


def test_npz_picks_the_vectors_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", vectors=np.ones((2, 3)), counts=np.array([5, 7]))
    (tmp_path / "vocab.txt").write_text("apple\ncherry\n", encoding="utf-8")
    matrix, coverage = load_pretrained_vectors(tmp_path / "v.npz", VOCAB, vocab_path=tmp_path / "vocab.txt")
    assert coverage.found == 2 and torch.equal(matrix[4], torch.ones(3))

    np.savez(tmp_path / "ambiguous.npz", a=np.ones((2, 3)), b=np.ones((2, 3)))
    with pytest.raises(DataError, match="expected one array, or one named vectors or embeddings"):
        load_pretrained_vectors(tmp_path / "ambiguous.npz", VOCAB, vocab_path=tmp_path / "vocab.txt")


def test_pickled_numpy_files_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "evil.npy", np.array([{"apple": [1, 2]}], dtype=object), allow_pickle=True)
    (tmp_path / "vocab.txt").write_text("apple\n", encoding="utf-8")
    with pytest.raises(DataError, match="without pickle"):
        load_pretrained_vectors(tmp_path / "evil.npy", VOCAB, vocab_path=tmp_path / "vocab.txt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("apple 1 2 3\nbanana 1 2\n", r"v\.txt:2: vector for 'banana' has 2 values, expected 3"),
        ("2 3\napple 1 2 3\nbanana 1 2 3 4\n", r"v\.txt:3: vector for 'banana' has 4 values, expected 3"),
        ("apple 1 two 3\n", r"v\.txt:1: not a vector of numbers"),
        ("3 2\napple 1 2\nbanana 3 4\n", "header says 3 vectors, the file has 2"),
        ("", "empty file"),
        ("0 300\n", "empty file"),
        ("durian 1 2\n", "none of the 5 vocabulary tokens is in"),
    ],
)
def test_malformed_text_files_raise_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_pretrained_vectors(path, VOCAB)


def test_other_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="pretrained vectors file not found: .*nope.txt"):
        load_pretrained_vectors(tmp_path / "nope.txt", VOCAB)

    np.save(tmp_path / "v.npy", np.ones((2, 3)))
    with pytest.raises(DataError, match="needs vocab_path"):
        load_pretrained_vectors(tmp_path / "v.npy", VOCAB)
    (tmp_path / "vocab.txt").write_text("apple\nbanana\ncherry\n", encoding="utf-8")
    with pytest.raises(DataError, match="token 'cherry' has row 2, but .* has 2 rows"):
        load_pretrained_vectors(tmp_path / "v.npy", VOCAB, vocab_path=tmp_path / "vocab.txt")

    binary = tmp_path / "GoogleNews.bin"
    binary.write_bytes(b"2 3\napple \xff\xfe\x00\x01")
    with pytest.raises(DataError, match="not a UTF-8 text vectors file"):
        load_pretrained_vectors(binary, VOCAB)

    write_text(tmp_path / "ok.txt", VECTORS, header=False)
    with pytest.raises(DataError, match="indices must be in \\[0, 2\\)"):
        load_pretrained_vectors(tmp_path / "ok.txt", {"apple": 0, "banana": 5})


@pytest.mark.integration
@pytest.mark.skipif(not TENCENT.is_file(), reason=f"{TENCENT} not available")
def test_real_tencent_character_vectors() -> None:
    characters = ["中", "的", "是", "国"]
    vocab = {"[PAD]": 0, "[UNK]": 1, **{char: i + 2 for i, char in enumerate(characters)}, "☃☃": 6}

    matrix, coverage = load_pretrained_vectors(TENCENT, vocab)

    assert matrix.shape == (7, 200)
    assert (coverage.found, coverage.total, coverage.dim) == (4, 7, 200)
    assert str(coverage) == "4 / 7 tokens (57.1%) found in tencent_char_200d.txt"
    with TENCENT.open(encoding="utf-8") as lines:
        expected = next(line for line in lines if line.startswith("的 ")).split()[1:]
    assert torch.equal(matrix[vocab["的"]], torch.tensor([float(value) for value in expected]))
    assert torch.count_nonzero(matrix[0]) == 0
