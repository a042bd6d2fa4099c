"""``hfnlp predict --input``: every format, one prediction per input line or row, numbered as the user counts, and
every mistake refused in one line before any work."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from hfnlp.cli import main
from tests.commands.conftest import assert_one_line_error

GOOD = "the food was great and fresh"


def predictions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_txt_input_gives_one_prediction_per_line_blank_lines_included(model_folder, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    # CRLF endings, a blank line, a whitespace-only line, a U+2028 inside a line, no final line feed
    source.write_bytes("good food\r\n\r\nbad\u2028cold order\n   \nlast one".encode())
    output = tmp_path / "preds.jsonl"
    assert main(["predict", str(model_folder), "--input", str(source), "--output", str(output)]) == 0
    rows = predictions(output)
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5]
    assert [row["text"] for row in rows] == ["good food", "", "bad\u2028cold order", "   ", "last one"]
    assert [row["label"] is None for row in rows] == [False, True, False, True, False]
    assert rows[1]["score"] is None and all(0 < rows[i]["score"] <= 1 for i in (0, 2, 4))
    assert f"wrote 5 predictions to {output}" in capsys.readouterr().out
    assert list(tmp_path.glob("*.tmp-*")) == []  # written through a temporary sibling, which is gone


def test_each_table_format_gives_one_prediction_per_row_in_order(model_folder, tmp_path, capsys):
    import pandas

    texts = ["good food", "", "line one\nline two of a quoted cell", "awful cold order"]
    frame = pandas.DataFrame({"id": ["a", "b", "c", "d"], "review": texts})
    files = {
        "csv": tmp_path / "in.csv",
        "tsv": tmp_path / "in.tsv",
        "jsonl": tmp_path / "in.jsonl",
        "json": tmp_path / "in.json",
        "parquet": tmp_path / "in.parquet",
    }
    frame.to_csv(files["csv"], index=False, quoting=csv.QUOTE_MINIMAL)
    frame.assign(review=[t.replace("\n", " ") for t in texts]).to_csv(files["tsv"], sep="\t", index=False)
    frame.to_json(files["jsonl"], orient="records", lines=True, force_ascii=False)
    frame.to_json(files["json"], orient="records", force_ascii=False)
    frame.to_parquet(files["parquet"])
    reference = None
    for kind, path in files.items():
        output = tmp_path / f"{kind}.jsonl"
        assert main(["predict", str(model_folder), "--input", str(path), "--text-column", "review", "--output",
                     str(output)]) == 0, capsys.readouterr().err  # fmt: skip
        rows = predictions(output)
        assert [row["row"] for row in rows] == [1, 2, 3, 4], kind
        expected = [t.replace("\n", " ") for t in texts] if kind == "tsv" else texts
        assert [row["text"] for row in rows] == expected, kind
        assert rows[1]["label"] is None and rows[1]["score"] is None, kind
        labels = [(row["label"], row["score"]) for i, row in enumerate(rows) if i != 2]
        reference = reference or labels
        assert labels == reference, kind  # the same texts get the same predictions whatever the format


def test_printed_predictions_of_command_line_texts(model_folder, capsys):
    assert main(["predict", str(model_folder), GOOD, ""]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["text"] for row in rows] == [GOOD, ""] and rows[1]["label"] is None
    assert rows[0]["label"] in ("negative", "positive") and "line" not in rows[0] and "row" not in rows[0]


def test_a_missing_text_column_names_the_columns_of_the_file(model_folder, tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text("title,body\na,b\n", encoding="utf-8")
    assert main(["predict", str(model_folder), "--input", str(source)]) == 2
    assert_one_line_error(capsys, "no column 'text'", "title, body", "--text-column")


def test_a_column_of_numbers_is_not_taken_for_texts(model_folder, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": 3}\n{"text": 4}\n', encoding="utf-8")
    assert main(["predict", str(model_folder), "--input", str(source)]) == 2
    assert_one_line_error(capsys, "holds int values", "row 1")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--output", "."], "is a folder"),
        (["--output", "no/such/folder/preds.jsonl"], "does not exist"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--input", "texts.docx"], "cannot tell the format"),
        (["--input", "missing.txt"], "input file not found"),
        (["--input", "empty.txt"], "no texts"),
        ([GOOD, "--input", "texts.txt"], "not both"),
    ],
)
def test_mistakes_are_refused_in_one_line_before_any_work(
    arguments, message, model_folder, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    Path("texts.txt").write_text(f"{GOOD}\n", encoding="utf-8")
    Path("texts.docx").write_text(f"{GOOD}\n", encoding="utf-8")
    Path("empty.txt").write_text("", encoding="utf-8")
    if "--input" not in arguments:
        arguments = [*arguments, "--input", "texts.txt"]
    assert main(["predict", str(model_folder), *arguments]) == 2
    assert_one_line_error(capsys, message)


def test_a_model_trained_on_several_columns_reads_them_all_joined_as_in_training(model_folder, tmp_path, capsys):
    import shutil

    import yaml

    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    # as a training run saves it with its model: the data section names the columns it joined
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"data": {"text_column": ["title", "body"]}}), encoding="utf-8")
    source = tmp_path / "in.csv"
    source.write_text('title,body\ngreat,"fresh food, fast"\nawful,\n,\n', encoding="utf-8")
    assert main(["predict", str(folder), "--input", str(source)]) == 0  # the trained columns, by default
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["text"] for row in rows] == ["great\nfresh food, fast", "awful", None]
    assert rows[2]["label"] is None  # both columns empty: nothing to classify
    assert main(["predict", str(folder), "great\nfresh food, fast"]) == 0
    (typed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert (typed["label"], typed["score"]) == (rows[0]["label"], rows[0]["score"])
    assert main(["predict", str(folder), "--input", str(source), "--text-column", "title"]) == 0  # the user's choice
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["text"] for row in rows] == ["great", "awful", ""] and rows[2]["label"] is None
    source.write_text("title,text\na,b\n", encoding="utf-8")  # not all the trained columns: the default column
    assert main(["predict", str(folder), "--input", str(source)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["text"] == "b"


def test_explain_adds_the_attributed_spans_of_each_text(model_folder, capsys):
    text = "the FOOD was great"
    assert main(["predict", str(model_folder), text, "", "--explain"]) == 0
    first, blank = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    spans = first["attributions"]
    assert [(span["text"], span["start"], span["end"]) for span in spans] == [
        ("the", 0, 3), ("FOOD", 4, 8), ("was", 9, 12), ("great", 13, 18)
    ]  # fmt: skip
    assert all(isinstance(span["score"], float) for span in spans) and any(span["score"] != 0 for span in spans)
    assert blank["label"] is None and blank["attributions"] == []


@pytest.mark.parametrize(
    "arguments",
    [
        ["--trust-remote-code", "--explain", GOOD, "bad"],
        [GOOD, "--trust-remote-code", "bad", "--explain"],
        [GOOD, "bad", "--explain", "--trust-remote-code"],
    ],
)
def test_options_may_come_before_between_or_after_the_texts(model_folder, capsys, arguments):
    assert main(["predict", str(model_folder), *arguments]) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == [GOOD, "bad"] and all("attributions" in row for row in rows)


def test_classify_in_batches_gives_the_pipelines_labels_and_scores(model_folder):
    """The batched fast path (ids straight from the Rust tokenizer, padded here) scores as the pipeline does text by
    text, whatever the lengths in a batch."""
    from hfnlp.pipelines.text_classification import classify, load_text_classifier
    from hfnlp.tokenization.text import padded_batch

    classifier = load_text_classifier(model_folder)
    texts = ["great", "the food was great and fresh and hot", "awful", "cold order, late, and the soup was stale", "ok"]
    batched = classify(classifier, texts, batch_size=4)
    for text, got in zip(texts, batched, strict=True):
        [expected] = classifier(text, truncation=True, top_k=1)
        assert got["label"] == expected["label"] and got["score"] == pytest.approx(expected["score"], abs=1e-6)
    tokenizer = classifier.tokenizer
    ids = [tokenizer(text)["input_ids"] for text in texts]
    reference = tokenizer(texts, padding=True, return_tensors="pt")
    ours = padded_batch(ids, tokenizer.pad_token_id)
    assert all(torch.equal(ours[key], reference[key]) for key in ("input_ids", "attention_mask"))
